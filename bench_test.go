package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/lockstep/lockstep/endpoint"
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

// BenchmarkTailLatency measures the time from a change reaching the
// endpoint to its line on tail's stdout, on loopback, against the
// transport's own floor: a plain HTTP client reading the same endless
// response line by line. It reports the p50 and p99 of both.
func BenchmarkTailLatency(b *testing.B) {
	const changes = 2000
	for _, reader := range []string{"transport", "tail"} {
		b.Run(reader, func(b *testing.B) {
			for b.Loop() {
				lags := tailLags(b, reader, changes)
				slices.Sort(lags)
				b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// tailLags appends changes to an endless endpoint one at a time and times
// each from Append to its line read from the reader's output.
func tailLags(b *testing.B, reader string, changes int) []time.Duration {
	src := endpoint.New(endpoint.Options{})
	srv := httptest.NewServer(src)
	defer srv.Close()
	defer src.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var lines *bufio.Reader
	switch reader {
	case "transport":
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/0", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		lines = bufio.NewReader(resp.Body)
	case "tail":
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			var errOut bytes.Buffer
			err := newApp(pw, &errOut).RunContext(ctx, []string{"lockstep", "tail", srv.URL + "/"})
			pw.Close()
			if err != nil {
				err = fmt.Errorf("%w: %s", err, errOut.String())
			}
			done <- err
		}()
		defer func() {
			cancel()
			go io.Copy(io.Discard, pr)
			if err := <-done; err != nil {
				b.Error(err)
			}
		}()
		lines = bufio.NewReader(pr)
	}
	lags := make([]time.Duration, 0, changes)
	for i := range changes {
		rec := fmt.Appendf(nil, `{"id":%d,"updated_at":%d,"deleted_at":null,"name":"host-%07d"}`, i%500, 1700000000000+i, i)
		start := time.Now()
		if err := src.Append(rec); err != nil {
			b.Fatal(err)
		}
		line, err := lines.ReadBytes('\n')
		if err != nil {
			b.Fatalf("change %d: %v", i, err)
		}
		lags = append(lags, time.Since(start))
		if !bytes.Contains(line, rec[:bytes.IndexByte(rec, ',')]) {
			b.Fatalf("change %d: read %q", i, line)
		}
		time.Sleep(200 * time.Microsecond)
	}
	return lags
}
