package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/follow/followtest"
	"github.com/lockstep/lockstep/replica"
	"github.com/lockstep/lockstep/sqlstore"
)

// benchRecords is a table of n records of about 100 bytes.
func benchRecords(n int) []string {
	recs := make([]string, n)
	for i := range recs {
		recs[i] = fmt.Sprintf(`{"id":%d,"updated_at":%d,"deleted_at":null,"name":"host-%07d","ip":"10.%d.%d.%d","port":%d}`,
			i+1, 1700000000000+i, i, i>>16&255, i>>8&255, i&255, 1024+i%50000)
	}
	return recs
}

// benchLoad syncs n records from empty into the store at dsn, b.N times.
func benchLoad(b *testing.B, n int, dsn func(i int) string) {
	srv := followtest.NewUnstartedServer(benchRecords(n)...)
	srv.Finite = true
	srv.Start()
	defer srv.Close()
	b.ResetTimer()
	for i := range b.N {
		ctx := context.Background()
		store, err := sqlstore.Open(ctx, dsn(i), srv.URL+"/", sqlstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		e, err := replica.New(ctx, replica.Config{Follow: follow.Config{URL: srv.URL + "/", Idle: time.Second}, Store: store, MaxDelete: 1})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Run(ctx); err != nil {
			b.Fatal(err)
		}
		store.Close()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkLoadSQLite(b *testing.B) {
	dir := b.TempDir()
	benchLoad(b, 100_000, func(i int) string { return fmt.Sprintf("sqlite:%s?table=t", filepath.Join(dir, fmt.Sprint(i, ".db"))) })
}

func BenchmarkLoadPostgres(b *testing.B) {
	if postgres == nil {
		b.Skip("no PostgreSQL")
	}
	benchLoad(b, 100_000, func(i int) string { return fmt.Sprintf("%s&table=load%d_%d", postgres.DSN, time.Now().UnixNano(), i) })
}
