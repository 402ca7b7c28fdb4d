package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchRecords is n records of about 100 bytes with distinct keys, the
// shape of the benchmark.
func benchRecords(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"updated_at":%d,"deleted_at":null,"name":"host-%07d","ip":"10.%d.%d.%d","port":%d}`+"\n",
			i, 1700000000000+i, i, i>>16&255, i>>8&255, i&255, 1024+i%50000)
	}
	return b.Bytes()
}

func finiteServer(data []byte) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(data)
	}))
}

// BenchmarkTailOnce drains 1,000,000 records through tail --once into
// io.Discard, as `lockstep tail --once URL > /dev/null` does.
func BenchmarkTailOnce(b *testing.B) {
	data := benchRecords(1_000_000)
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
