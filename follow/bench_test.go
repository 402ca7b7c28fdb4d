package follow

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/lockstep/lockstep/internal/sample"
)

func BenchmarkDecoder(b *testing.B) {
	data := sample.Records(100_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d := NewDecoder(bytes.NewReader(data), DecoderOptions{})
		n := 0
		for d.Next() {
			n++
		}
		if d.Err() != nil || n != 100_000 {
			b.Fatalf("n=%d err=%v", n, d.Err())
		}
	}
}

// The keys applied at the cursor must stay cheap when a bulk update gives
// every record one order value (PROTOCOL 5.1): compare the two.
func BenchmarkFollower_DistinctOrders(b *testing.B) { benchFollower(b, sample.Records(200_000)) }

func BenchmarkFollower_BulkUpdateOneOrder(b *testing.B) {
	data := sample.Records(200_000)
	data = regexp.MustCompile(`"updated_at":\d+`).ReplaceAll(data, []byte(`"updated_at":1700000000000`))
	benchFollower(b, data)
}

func benchFollower(b *testing.B, data []byte) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	defer srv.Close()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := New(Config{URL: srv.URL + "/"})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		if err := f.Run(context.Background(), func(ev Event) error {
			if ev.Kind == EventRecord {
				n++
			}
			return nil
		}); err != nil || n != 200_000 {
			b.Fatalf("n=%d err=%v", n, err)
		}
	}
}
