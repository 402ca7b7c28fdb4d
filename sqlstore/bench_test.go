package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
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

// benchLag follows a 100,000-record table into the store at dsn while the
// endpoint serves 1,000 changes a second for 5 s, committing every 200ms as
// sync --follow does into a database, and reports the lag from a change's
// being served to the end of the commit that holds it.
func benchLag(b *testing.B, dsn func(i int) string) {
	const table, rate, seconds = 100_000, 1000, 5
	var lags []time.Duration
	for i := range b.N {
		srv := followtest.NewServer(benchRecords(table)...)
		ctx, cancel := context.WithCancel(context.Background())
		store, err := sqlstore.Open(ctx, dsn(i), srv.URL+"/", sqlstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		served := map[int64]time.Time{} // order value → when appended
		loaded := make(chan struct{})
		var once sync.Once
		first := int64(1700000000000 + table)
		e, err := replica.New(ctx, replica.Config{
			Follow: follow.Config{URL: srv.URL + "/", Follow: true, Idle: time.Second}, Store: store, MaxDelete: 1,
			CommitEvery: 200 * time.Millisecond,
			Committed: func(c replica.Commit) {
				now := time.Now()
				cur, _ := strconv.ParseInt(string(c.Cursor), 10, 64)
				if cur >= first-1 {
					once.Do(func() { close(loaded) })
				}
				mu.Lock()
				for o, t := range served {
					if o <= cur {
						lags = append(lags, now.Sub(t))
						delete(served, o)
					}
				}
				mu.Unlock()
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		<-loaded
		b.ResetTimer()
		order := first
		tick := time.NewTicker(10 * time.Millisecond)
		for range 100 * seconds {
			<-tick.C
			var recs []string
			mu.Lock()
			for range rate / 100 {
				order++
				k := order % table
				recs = append(recs, fmt.Sprintf(`{"id":%d,"updated_at":%d,"deleted_at":null,"name":"host-%07d","ip":"10.9.9.9","port":1}`, k, order, k))
				served[order] = time.Now()
			}
			mu.Unlock()
			srv.Append(recs...)
		}
		tick.Stop()
		time.Sleep(time.Second)
		cancel()
		<-done
		store.Close()
		srv.Close()
		mu.Lock()
		if len(served) > 0 {
			b.Fatalf("%d changes never committed", len(served))
		}
		mu.Unlock()
	}
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-lag-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-lag-ms")
	b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "max-lag-ms")
}

func BenchmarkFollowLagSQLite(b *testing.B) {
	dir := b.TempDir()
	benchLag(b, func(i int) string { return fmt.Sprintf("sqlite:%s?table=t", filepath.Join(dir, fmt.Sprint(i, ".db"))) })
}

func BenchmarkFollowLagPostgres(b *testing.B) {
	if postgres == nil {
		b.Skip("no PostgreSQL")
	}
	benchLag(b, func(i int) string { return fmt.Sprintf("%s&table=lag%d_%d", postgres.DSN, time.Now().UnixNano(), i) })
}
