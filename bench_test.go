package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lockstep/lockstep/internal/sample"
)

func finiteServer(data []byte) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(data)
	}))
}

// BenchmarkTailOnce drains 1,000,000 records through tail --once into
// io.Discard, as `lockstep tail --once URL > /dev/null` does.
func BenchmarkTailOnce(b *testing.B) {
	data := sample.Records(1_000_000)
	srv := finiteServer(data)
	defer srv.Close()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var errOut bytes.Buffer
		if err := newApp(io.Discard, &errOut).RunContext(context.Background(), []string{"lockstep", "tail", "--once", srv.URL + "/"}); err != nil {
			b.Fatal(err, errOut.String())
		}
	}
	b.ReportMetric(float64(b.N)*1e6/b.Elapsed().Seconds(), "records/s")
}
