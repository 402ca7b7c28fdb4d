package check_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep/lockstep/check"
	"github.com/lockstep/lockstep/follow"
)

// rows are served by finite, below: ids 1 to 4 at 10, 20, 20, 30.
var rows = []struct{ id, order int }{{1, 10}, {2, 20}, {3, 20}, {4, 30}}

// finite serves rows at or above the cursor (the last path segment) with
// the given comparison, one per line, plus whatever extra adds.
func finite(keep func(order, cursor int) bool, extra func(cursor int) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cursor, _ := strconv.Atoi(path.Base(r.URL.Path))
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, row := range rows {
			if cursor == 0 || keep(row.order, cursor) {
				fmt.Fprintf(w, `{"id":%d,"updated_at":%d,"deleted_at":null}`+"\n", row.id, row.order)
			}
		}
		if extra != nil {
			fmt.Fprint(w, extra(cursor))
		}
	}
}

func inclusive(order, cursor int) bool { return order >= cursor }

func TestRun_Verdicts(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	tests := []struct {
		name    string
		handler http.Handler
		probe   string
		want    check.Status
	}{
		{"inclusive", finite(inclusive, nil), "inclusive", check.Pass},
		{"exclusive since", finite(func(o, c int) bool { return o > c }, nil), "inclusive", check.Fail},
		// The second read at the middle cursor shows a change below what
		// the first had already sent.
		{"late change", finite(inclusive, func(cursor int) string {
			mu.Lock()
			defer mu.Unlock()
			if seen[cursor]++; cursor == 20 && seen[cursor] == 2 {
				return `{"id":9,"updated_at":25,"deleted_at":null}` + "\n"
			}
			return ""
		}), "agreement", check.Fail},
		{"order kinds mixed", finite(inclusive, func(int) string { return `{"id":5,"updated_at":"40","deleted_at":null}` + "\n" }), "fields", check.Fail},
		{"deleted field missing", finite(inclusive, func(int) string { return `{"id":5,"updated_at":40}` + "\n" }), "fields", check.Warn},
		{"html", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintln(w, `{"id":1,"updated_at":1,"deleted_at":null}`)
		}), "content-type", check.Fail},
		{"503 with Retry-After", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "5")
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}), "retry-after", check.Info},
		{"410 at cursor 0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "gone", http.StatusGone)
		}), "status", check.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			report, err := check.Run(context.Background(), check.Options{
				Config:  follow.Config{URL: srv.URL + "/servers/", Idle: 100 * time.Millisecond},
				Timeout: 5 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range report.Results {
				if r.Probe == tt.probe {
					if r.Status != tt.want {
						t.Errorf("%s: %s %s, want %s", tt.probe, r.Status, r.Seen, tt.want)
					}
					return
				}
			}
			t.Errorf("no %s probe in %+v", tt.probe, report.Results)
		})
	}
}

func TestRun_BoundsBytesAndTime(t *testing.T) {
	// An endless response that never stops sending records.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 1; r.Context().Err() == nil; i++ {
			fmt.Fprintf(w, `{"id":%d,"updated_at":%d,"deleted_at":null}`+"\n", i, i)
		}
	}))
	defer srv.Close()
	start := time.Now()
	report, err := check.Run(context.Background(), check.Options{
		Config:   follow.Config{URL: srv.URL + "/servers/", Idle: 100 * time.Millisecond},
		Timeout:  3 * time.Second,
		MaxBytes: 64 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("took %s with a 3s timeout", d)
	}
	for _, r := range report.Results {
		if r.Probe == "endless" && r.Status != check.Info {
			t.Errorf("endless: %s %s, want INFO (stopped at the cap)", r.Status, r.Seen)
		}
	}
}

// Counts read as the rest of lockstep's output: 1,500 records, 1 record.
func TestRun_CountsReadable(t *testing.T) {
	for _, n := range []int{1500, 1} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cursor, _ := strconv.Atoi(path.Base(r.URL.Path))
			w.Header().Set("Content-Type", "application/x-ndjson")
			for i := max(cursor, 1); i <= n; i++ {
				fmt.Fprintf(w, `{"id":%d,"updated_at":%d,"deleted_at":null}`+"\n", i, i)
			}
		}))
		report, err := check.Run(context.Background(), check.Options{
			Config:  follow.Config{URL: srv.URL + "/servers/", Idle: 100 * time.Millisecond},
			Timeout: 5 * time.Second,
		})
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := map[int]map[string]string{
			1500: {"status": ": 1,500 records", "records": "1,500 records, each", "endless": "after 1,500 records", "agreement": "(750 and 750 records)"},
			1:    {"status": ": 1 record through", "records": "1 record, each", "endless": "after 1 record"},
		}[n]
		for _, r := range report.Results {
			if w, ok := want[r.Probe]; ok && !strings.Contains(r.Seen, w) {
				t.Errorf("%d records: %s: %q, want %q in it", n, r.Probe, r.Seen, w)
			}
		}
	}
}

// result finds a probe's result.
func result(t *testing.T, report *check.Report, probe string) check.Result {
	t.Helper()
	for _, r := range report.Results {
		if r.Probe == probe {
			return r
		}
	}
	t.Fatalf("no %s probe in %+v", probe, report.Results)
	return check.Result{}
}

func run(t *testing.T, h http.Handler, timeout time.Duration) *check.Report {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	report, err := check.Run(context.Background(), check.Options{
		Config:  follow.Config{URL: srv.URL + "/servers/", Idle: 100 * time.Millisecond},
		Timeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return report
}

// A 503 with Retry-After is waited out, as a follower would, when the
// time allows, and the probes run on the answer that follows.
func TestRun_RetryAfterWaited(t *testing.T) {
	var mu sync.Mutex
	busy := 1
	inner := finite(inclusive, nil)
	report := run(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if busy > 0 {
			busy--
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		inner(w, r)
	}), 10*time.Second)
	if s := result(t, report, "status"); s.Status != check.Pass {
		t.Errorf("status: %s %s, want PASS after the wait", s.Status, s.Seen)
	}
	if ra := result(t, report, "retry-after"); ra.Status != check.Info || !strings.Contains(ra.Seen, "waited 1s") || !strings.Contains(ra.Seen, "then 200") {
		t.Errorf("retry-after: %s %s, want INFO saying it waited, then got 200", ra.Status, ra.Seen)
	}
	// A wait longer than the time left is not waited, and said so.
	report = run(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}), 2*time.Second)
	if s := result(t, report, "status"); s.Status != check.Fail || !strings.Contains(s.Fix, "--timeout") {
		t.Errorf("status: %s %s; fix: %s", s.Status, s.Seen, s.Fix)
	}
	if ra := result(t, report, "retry-after"); !strings.Contains(ra.Seen, "not waited") {
		t.Errorf("retry-after: %s %s", ra.Status, ra.Seen)
	}
}

// An endpoint that answers a cursor above 0 with nothing at all loses the
// changes after a cursor; it is not one whose since is exclusive.
func TestRun_NothingAtAMiddleCursor(t *testing.T) {
	empty := finite(func(order, cursor int) bool { return false }, nil)
	inc := result(t, run(t, empty, 5*time.Second), "inclusive")
	if inc.Status != check.Fail || strings.Contains(inc.Seen, "exclusive") || !strings.Contains(inc.Seen, "no records") {
		t.Errorf("finite, empty at the cursor: %s %s", inc.Status, inc.Seen)
	}
	// Open and silent at the cursor: it sends only new changes, or is
	// slow; not exclusive either.
	endless := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		if path.Base(r.URL.Path) == "0" {
			for _, row := range rows {
				fmt.Fprintf(w, `{"id":%d,"updated_at":%d,"deleted_at":null}`+"\n", row.id, row.order)
			}
		}
		for {
			fmt.Fprint(w, "\n")
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	inc = result(t, run(t, endless, 3*time.Second), "inclusive")
	if inc.Status == check.Pass || strings.Contains(inc.Seen, "exclusive") || !strings.Contains(inc.Seen, "no records") {
		t.Errorf("endless, silent at the cursor: %s %s", inc.Status, inc.Seen)
	}
	// Records above the cursor missing, those at it sent: not exclusive.
	lost := finite(func(order, cursor int) bool { return order == cursor }, nil)
	inc = result(t, run(t, lost, 5*time.Second), "inclusive")
	if inc.Status != check.Fail || strings.Contains(inc.Seen, "exclusive") || !strings.Contains(inc.Seen, "above the cursor") {
		t.Errorf("records above the cursor lost: %s %s", inc.Status, inc.Seen)
	}
}

// A certificate for another host name is said to be that, with the fix.
func TestRun_CertificateForAnotherHost(t *testing.T) {
	srv := httptest.NewTLSServer(finite(inclusive, nil))
	defer srv.Close()
	client := srv.Client() // trusts the server's certificate, made for 127.0.0.1 and example.com
	u := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	report, err := check.Run(context.Background(), check.Options{
		Config:  follow.Config{URL: u + "/servers/", Idle: 100 * time.Millisecond, Client: client},
		Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := result(t, report, "status")
	if s.Status != check.Fail || !strings.Contains(s.Seen, "another host") || !strings.Contains(s.Fix, "host name") {
		t.Errorf("status: %s %s; fix: %s", s.Status, s.Seen, s.Fix)
	}
}

// An endless response that stays silent is a FAIL only once check has
// seen a silence longer than MaxSilence; with a Timeout shorter than that
// (the defaults: 20s and 30s) it is a WARN that says how to be sure.
func TestRun_SilenceJudgedOnlyWhenSeen(t *testing.T) {
	silent := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, row := range rows {
			fmt.Fprintf(w, `{"id":%d,"updated_at":%d,"deleted_at":null}`+"\n", row.id, row.order)
		}
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	for _, tt := range []struct {
		timeout, maxSilence time.Duration
		want                check.Status
	}{
		{2 * time.Second, 3 * time.Second, check.Warn},
		{2 * time.Second, 500 * time.Millisecond, check.Fail},
	} {
		srv := httptest.NewServer(silent)
		report, err := check.Run(context.Background(), check.Options{
			Config:  follow.Config{URL: srv.URL + "/servers/", Idle: 100 * time.Millisecond},
			Timeout: tt.timeout, MaxSilence: tt.maxSilence,
		})
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		hb := result(t, report, "heartbeat")
		if hb.Status != tt.want || tt.want == check.Warn && !strings.Contains(hb.Fix, "--timeout above") {
			t.Errorf("--timeout %s, --max-silence %s: %s %s; fix: %s", tt.timeout, tt.maxSilence, hb.Status, hb.Seen, hb.Fix)
		}
	}
}

// An endpoint slower than check's --timeout is not called wrong: the
// probes it could not finish are WARN, with a longer --timeout as the fix.
func TestRun_SlowerThanTheTimeout(t *testing.T) {
	fast := finite(inclusive, nil)
	for name, tt := range map[string]struct {
		slowAt0 bool
		probe   string
	}{"at cursor 0": {true, "status"}, "at a middle cursor": {false, "cursor"}} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.slowAt0 == (path.Base(r.URL.Path) == "0") {
					select {
					case <-r.Context().Done():
					case <-time.After(10 * time.Second):
					}
					return
				}
				fast(w, r)
			}))
			defer srv.Close()
			report, err := check.Run(context.Background(), check.Options{
				Config:  follow.Config{URL: srv.URL + "/servers/", Idle: 100 * time.Millisecond},
				Timeout: 2 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range report.Results {
				if r.Status == check.Fail {
					t.Errorf("%s: FAIL %s", r.Probe, r.Seen)
				}
				if r.Probe == tt.probe && (r.Status != check.Warn || !strings.Contains(r.Fix, "longer --timeout")) {
					t.Errorf("%s: %s %s (fix %q), want WARN with a longer --timeout", r.Probe, r.Status, r.Seen, r.Fix)
				}
			}
		})
	}
}

// An http:// endpoint that redirects to https:// on a plain-HTTP server is
// said to redirect wrongly, not told to use http://, which it does.
func TestRun_RedirectToHTTPSOnPlainHTTP(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(srv.URL, "http://", "https://", 1)+r.URL.Path, http.StatusFound)
	}))
	defer srv.Close()
	report, err := check.Run(context.Background(), check.Options{
		Config:  follow.Config{URL: srv.URL + "/servers/", Idle: 100 * time.Millisecond},
		Timeout: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range report.Results {
		if r.Probe == "status" {
			if r.Status != check.Fail || !strings.Contains(r.Fix, "fix the endpoint's redirect") {
				t.Errorf("status: %s %s (fix %q)", r.Status, r.Seen, r.Fix)
			}
			return
		}
	}
	t.Error("no status probe")
}
