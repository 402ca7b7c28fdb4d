package follow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The cases in this file pin what counts as caught up (PROTOCOL 6.3), and
// so when a resync may be swept (5.4): each was a way to lose records.

// steps writes each string, flushing, after the pause before it; then it
// holds the response open (an endless response) until the client goes.
func steps(pauses []time.Duration, parts ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i, p := range parts {
			select {
			case <-time.After(pauses[i]):
			case <-r.Context().Done():
				return
			}
			fmt.Fprint(w, p)
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	}
}

func TestFollower_CaughtUpNeedsEvidence(t *testing.T) {
	const idle, pause = 100 * time.Millisecond, 400 * time.Millisecond
	three := rec(1, 1) + rec(2, 2) + rec(3, 3)
	tests := []struct {
		name    string
		cfg     Config
		handler func(http.ResponseWriter, *http.Request)
	}{
		{"cursor 0: the first record comes after more than --idle",
			Config{}, steps([]time.Duration{pause}, three)},
		{"resync: the first record comes late",
			Config{Since: "9", Resync: true}, steps([]time.Duration{pause}, three)},
		{"resync: the backlog pauses",
			Config{Since: "9", Resync: true}, steps([]time.Duration{0, pause}, rec(1, 1), rec(2, 2)+rec(3, 3))},
		{"a record arrives in halves",
			Config{Since: "1"}, steps([]time.Duration{0, 0, pause}, rec(1, 1), `{"id":2,"updated_at":2,`, `"deleted_at":null}`+"\n"+rec(3, 3))},
		{"Content-Length: caught up only at the end",
			Config{Since: "1"}, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(three)))
				fmt.Fprint(w, rec(1, 1))
				w.(http.Flusher).Flush()
				time.Sleep(pause)
				fmt.Fprint(w, rec(2, 2)+rec(3, 3))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(tt.handler))
			defer srv.Close()
			cfg := tt.cfg
			cfg.URL, cfg.Idle, cfg.ResyncQuiet = srv.URL+"/", idle, 3*pause
			r := follow(t, cfg, nil)
			if got := strings.Join(r.keys, ","); got != "1,2,3" || r.err != nil {
				t.Fatalf("keys %q err %v, want 1,2,3 before caught up", got, r.err)
			}
			if r.count(EventCaughtUp) != 1 {
				t.Fatalf("events %v", r.events)
			}
		})
	}
}

// With nothing new on an endless response, a finishing follower is done
// in about --idle, not --resync-quiet.
func TestFollower_NothingNewFinishesInIdle(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(hang(rec(3, 3))))
	defer srv.Close()
	start := time.Now()
	r := follow(t, Config{URL: srv.URL + "/", Since: "3", SinceKeys: []CursorKey{{Key: "3", Digest: Digest([]byte(strings.TrimSpace(rec(3, 3))))}},
		Idle: 100 * time.Millisecond, ResyncQuiet: 5 * time.Second}, nil)
	if r.err != nil || len(r.keys) != 0 || time.Since(start) > 3*time.Second {
		t.Fatalf("err %v keys %v after %s", r.err, r.keys, time.Since(start))
	}
}

// A resync of an endless response that sends nothing cannot be swept: a
// finishing follower says so instead of wiping the table.
func TestFollower_EmptyEndlessResyncFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(hang("")))
	defer srv.Close()
	r := follow(t, Config{URL: srv.URL + "/", Since: "5", Resync: true, Idle: 50 * time.Millisecond, ResyncQuiet: 200 * time.Millisecond}, nil)
	var ns *NotStreamError
	if !errors.As(r.err, &ns) || !strings.Contains(r.err.Error(), "nothing can be swept") || r.count(EventCaughtUp) != 0 {
		t.Fatalf("err %v events %v", r.err, r.events)
	}
}

// A handler's Unchanged neither stops the follower nor counts as activity:
// an endpoint that keeps re-sending old records (the seed's server.js)
// still lets it finish.
func TestFollower_UnchangedRecordsAreNotActivity(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, rec(1, 1)+rec(2, 2))
		for {
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			fmt.Fprint(w, rec(1, 1))
		}
	}))
	defer srv.Close()
	f, err := New(Config{URL: srv.URL + "/", Idle: 200 * time.Millisecond, ResyncQuiet: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	seen := map[string]bool{}
	err = f.Run(ctx, func(ev Event) error {
		if ev.Kind != EventRecord {
			return nil
		}
		k := string(ev.Record.Key)
		if seen[k] {
			return Unchanged
		}
		seen[k] = true
		return nil
	})
	if err != nil {
		t.Fatalf("err %v, want caught up", err)
	}
}

// A 410 and then a connection cut in the middle of each resync backs off
// and gives up after --retry-for, instead of downloading in a loop.
func TestFollower_ResyncCutOffBacksOff(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.URL.Path != "/0" {
			w.WriteHeader(http.StatusGone)
			return
		}
		drop(rec(1, 1)+rec(2, 2))(w, r)
	}))
	defer srv.Close()
	start := time.Now()
	r := follow(t, Config{URL: srv.URL + "/", Since: "7", RetryFor: 1500 * time.Millisecond}, nil)
	var gu *GiveUpError
	if !errors.As(r.err, &gu) || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %s, want to give up", r.err, time.Since(start))
	}
	if n := requests.Load(); n > 20 {
		t.Fatalf("%d requests in %s: no backoff", n, time.Since(start))
	}
}

// --retry-for 0 (a negative RetryFor) fails at the first error.
func TestFollower_NoRetry(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){status(500), body(rec(1, 1))}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	r := follow(t, Config{URL: srv.URL + "/", RetryFor: -1}, nil)
	var gu *GiveUpError
	if !errors.As(r.err, &gu) || gu.Attempts != 1 || len(s.requests()) != 1 || r.count(EventRetry) != 0 {
		t.Fatalf("err %v, %d requests", r.err, len(s.requests()))
	}
}

func TestFollower_NotAStream(t *testing.T) {
	for _, tt := range []struct {
		name    string
		handler func(http.ResponseWriter, *http.Request)
		want    string
	}{
		{"HTML page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<html><body>Welcome</body></html>\n")
		}, "HTML page"},
		{"nothing but bad records", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-ndjson")
			fmt.Fprint(w, "<html>\n<body>\nhello\n</body>\n</html>\n")
		}, "5 bad records and no good one"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(tt.handler))
			defer srv.Close()
			r := follow(t, Config{URL: srv.URL + "/", SkipBadRecords: true}, nil)
			var ns *NotStreamError
			if !errors.As(r.err, &ns) || !strings.Contains(r.err.Error(), tt.want) {
				t.Fatalf("err %v, want a NotStreamError saying %q", r.err, tt.want)
			}
		})
	}
}

// Records out of order are passed on, with one warning per response.
func TestFollower_OutOfOrderWarnsOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(body(rec(1, 5) + rec(2, 3) + rec(3, 7) + rec(4, 2))))
	defer srv.Close()
	r := follow(t, Config{URL: srv.URL + "/"}, nil)
	if r.err != nil || strings.Join(r.keys, ",") != "1,2,3,4" || r.count(EventWarning) != 1 {
		t.Fatalf("err %v keys %v events %v", r.err, r.keys, r.events)
	}
	if w := r.events[indexOf(r, EventWarning)].Err.Error(); !strings.Contains(w, "out of order (updated_at 3 after 5 at byte") {
		t.Fatalf("warning %q", w)
	}
}

// The cursor moves only once the handler has applied a record: a handler
// that fails leaves it where it was.
func TestFollower_CursorMovesAfterApply(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(body(rec(1, 1) + rec(2, 2))))
	defer srv.Close()
	f, err := New(Config{URL: srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	err = f.Run(context.Background(), func(ev Event) error {
		if ev.Kind != EventRecord {
			return nil
		}
		if cur, _ := f.Cursor(); string(ev.Record.Key) == "2" {
			if cur != "1" {
				t.Errorf("during record 2 the cursor is %q, want 1", cur)
			}
			return boom
		}
		return nil
	})
	if cur, _ := f.Cursor(); !errors.Is(err, boom) || cur != "1" {
		t.Fatalf("err %v cursor %q, want 1", err, cur)
	}
}

// The endpoint's identity tells apart the data sets that extra headers
// select, and ignores secrets that rotate.
func TestFollower_EndpointID(t *testing.T) {
	id := func(url string, hdr ...string) string {
		h := http.Header{}
		for i := 0; i+1 < len(hdr); i += 2 {
			h.Add(hdr[i], hdr[i+1])
		}
		f, err := New(Config{URL: url, Header: h})
		if err != nil {
			t.Fatal(err)
		}
		return f.EndpointID()
	}
	base := id("http://h/s/")
	for _, tt := range []struct {
		name string
		got  string
		same bool
	}{
		{"another query", id("http://h/s/?part=eu"), false},
		{"a tenant header", id("http://h/s/", "X-Tenant", "eu"), false},
		{"a password", id("http://u:p@h/s/"), true},
		{"a token header", id("http://h/s/", "Authorization", "Bearer x"), true},
	} {
		if (tt.got == base) != tt.same {
			t.Errorf("%s: same identity %v, want %v", tt.name, tt.got == base, tt.same)
		}
	}
	if id("http://h/s/", "X-Tenant", "eu") == id("http://h/s/", "X-Tenant", "us") {
		t.Error("X-Tenant eu and us share an identity")
	}
}

// An endpoint that echoes its request in an error page or a bad record
// does not get the credentials into lockstep's messages.
func TestFollower_EchoedSecretsScrubbed(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request, status int) {
		w.WriteHeader(status)
		fmt.Fprintf(w, "%s %s %s %s\n", r.Header.Get("Authorization"), r.Header.Get("X-Api-Token"), r.URL.RawQuery, "{")
	}
	for _, status := range []int{401, 200} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { echo(w, r, status) }))
		f, err := New(Config{URL: strings.Replace(srv.URL, "http://", "http://bob:hunter2pass@", 1) + "/?pwd=SECRETVALUE",
			SinceParam: "since", Header: http.Header{"X-Api-Token": {"Bearer tok3nvalue"}}, RetryFor: -1})
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		err = f.Run(context.Background(), func(ev Event) error {
			if ev.Err != nil {
				seen = append(seen, ev.Err.Error())
			}
			return nil
		})
		srv.Close()
		all := strings.Join(append(seen, fmt.Sprint(err)), "\n")
		for _, secret := range []string{"hunter2pass", "Ym9iOmh1bnRlcjJwYXNz", "SECRETVALUE", "tok3nvalue"} {
			if strings.Contains(all, secret) {
				t.Errorf("status %d: %q in %s", status, secret, all)
			}
		}
	}
}
