package follow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// script answers the n-th request with steps[n] (the last one repeats), and
// records every request URL.
type script struct {
	mu    sync.Mutex
	urls  []string
	auths []string
	steps []func(w http.ResponseWriter, r *http.Request)
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := len(s.urls)
	s.urls = append(s.urls, r.URL.RequestURI())
	s.auths = append(s.auths, r.Header.Get("Authorization"))
	step := s.steps[min(n, len(s.steps)-1)]
	s.mu.Unlock()
	step(w, r)
}

func (s *script) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.urls...)
}

func body(s string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, s) }
}

func status(code int, hdr ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(code)
		fmt.Fprint(w, "go away")
	}
}

// hang writes s, then holds the response open until the client goes.
func hang(s string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, s)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
}

// drop writes s and then cuts the connection.
func drop(s string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		fmt.Fprint(w, s)
		w.(http.Flusher).Flush()
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	}
}

type run struct {
	events []Event
	keys   []string // EventRecord keys, in order
	err    error
}

func (r *run) count(k EventKind) int {
	n := 0
	for _, e := range r.events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// follow runs a Follower until stop says so (or it returns), with a
// deadline so that no test can hang.
func follow(t *testing.T, cfg Config, stop func(r *run, ev Event) bool) *run {
	t.Helper()
	if cfg.Idle == 0 {
		cfg.Idle = 200 * time.Millisecond
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := &run{}
	errStop := errors.New("test stop")
	r.err = f.Run(ctx, func(ev Event) error {
		if ev.Kind == EventRecord {
			r.keys = append(r.keys, string(ev.Record.Key))
		}
		if ev.Kind != EventQuiet {
			r.events = append(r.events, ev)
		}
		if stop != nil && stop(r, ev) {
			return errStop
		}
		return nil
	})
	if errors.Is(r.err, errStop) {
		r.err = nil
	}
	if errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("follower still running after 10s; events %v", r.events)
	}
	return r
}

func rec(id, order any) string {
	return fmt.Sprintf(`{"id":%v,"updated_at":%v,"deleted_at":null}`+"\n", id, order)
}

func TestFollower_OnceFiniteResponse(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){body(rec(1, 10) + rec(2, 11))}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	r := follow(t, Config{URL: srv.URL + "/x/"}, nil)
	if r.err != nil || strings.Join(r.keys, ",") != "1,2" || r.count(EventCaughtUp) != 1 {
		t.Fatalf("err %v keys %v events %v", r.err, r.keys, r.events)
	}
	if got := s.requests(); len(got) != 1 || got[0] != "/x/0" {
		t.Fatalf("requests %v, want [/x/0]", got)
	}
}

func TestFollower_OnceEndlessResponseCaughtUpWhenIdle(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){hang(rec(1, 10) + "\n\n")}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	r := follow(t, Config{URL: srv.URL + "/"}, nil)
	if r.err != nil || strings.Join(r.keys, ",") != "1" || r.count(EventCaughtUp) != 1 {
		t.Fatalf("err %v keys %v events %v", r.err, r.keys, r.events)
	}
}

// While no input arrives, EventQuiet repeats every Tick: a handler with work
// due sooner than a second (a commit) is woken in time.
func TestFollower_QuietEveryTick(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){hang(rec(1, 10) + "\n")}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, tc := range []struct {
		tick     time.Duration
		min, max int
	}{{50 * time.Millisecond, 8, 40}, {0, 1, 3}} {
		quiet := 0
		var start time.Time
		follow(t, Config{URL: srv.URL + "/", Follow: true, Idle: 100 * time.Millisecond, Tick: tc.tick}, func(r *run, ev Event) bool {
			switch {
			case ev.Kind == EventCaughtUp:
				start = time.Now()
			case ev.Kind == EventQuiet && !start.IsZero():
				quiet++
			}
			return !start.IsZero() && time.Since(start) > time.Second
		})
		if quiet < tc.min || quiet > tc.max {
			t.Errorf("Tick %v: %d quiet events in a second, want %d to %d", tc.tick, quiet, tc.min, tc.max)
		}
	}
}

// The cursor sent back is the exact text received, beyond float64's reach.
func TestFollower_CursorTextExact(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){
		body(rec(1, "9007199254740993") + rec(2, "1700000000123456789")),
		body(""),
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	follow(t, Config{URL: srv.URL + "/s/", Follow: true, Poll: 10 * time.Millisecond}, func(r *run, ev Event) bool {
		return len(s.requests()) >= 2
	})
	if got := s.requests(); got[1] != "/s/1700000000123456789" {
		t.Fatalf("second request %s, want /s/1700000000123456789", got[1])
	}
}

func TestFollower_StringCursorQueryParam(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){
		body(`{"id":"a","updated_at":"2024-01-01T00:00:00Z"}` + "\n"),
		body(""),
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	follow(t, Config{URL: srv.URL + "/s?x=1", SinceParam: "since", Follow: true, Poll: 10 * time.Millisecond}, func(r *run, ev Event) bool {
		return len(s.requests()) >= 2
	})
	if got := s.requests(); got[0] != "/s?x=1&since=0" || got[1] != "/s?x=1&since=2024-01-01T00%3A00%3A00Z" {
		t.Fatalf("requests %v", got)
	}
}

// since is inclusive: a reconnect re-delivers the records at the cursor,
// and the follower drops them, and what lies below the cursor it asked for.
func TestFollower_DedupeAtCursorAcrossDroppedConnection(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){
		drop(rec(1, 10) + rec(2, 11) + rec(3, 11) + `{"id":4,"upd`),
		body(rec(2, 11) + rec(3, 11) + rec(1, 10) + rec(4, 12) + rec(5, 11)),
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	r := follow(t, Config{URL: srv.URL + "/"}, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := strings.Join(r.keys, ","); got != "1,2,3,4,5" {
		t.Fatalf("keys %s, want 1,2,3,4,5 (each once)", got)
	}
	if r.count(EventRetry) != 1 || !strings.Contains(r.events[indexOf(r, EventRetry)].Err.Error(), "connection lost at byte") {
		t.Fatalf("want one retry for the lost connection; events %v", r.events)
	}
	if got := s.requests(); got[1] != "/11" {
		t.Fatalf("reconnected with %s, want /11", got[1])
	}
}

// EventConnected says how long the response is, when it says so.
func TestFollower_ConnectedSize(t *testing.T) {
	data := rec(1, 10) + rec(2, 11)
	for _, tt := range []struct {
		name string
		step func(http.ResponseWriter, *http.Request)
		want int64
	}{
		{"ContentLength", body(data), int64(len(data))},
		{"Chunked", hang(data), -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(tt.step))
			defer srv.Close()
			r := follow(t, Config{URL: srv.URL + "/", Follow: tt.want < 0, Idle: 50 * time.Millisecond}, func(r *run, ev Event) bool {
				return ev.Kind == EventConnected
			})
			if i := indexOf(r, EventConnected); i < 0 || r.events[i].Size != tt.want {
				t.Fatalf("events %+v; want EventConnected with Size %d", r.events, tt.want)
			}
		})
	}
}

// The record that last moved the cursor is in the cursor's keys, with
// its digest, for a duplicate that follows it in the same response and
// for a checkpoint taken while the next record is applied.
func TestFollower_NewestRecordAtCursor(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(body(rec(1, 10) + rec(2, 11) + rec(3, 12) + rec(3, 12))))
	defer srv.Close()
	f, err := New(Config{URL: srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	var order Order
	var keys []CursorKey
	err = f.Run(context.Background(), func(ev Event) error {
		if ev.Kind == EventRecord {
			seen = append(seen, string(ev.Record.Key))
			if string(ev.Record.Key) == "3" {
				order, keys = f.Cursor()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, ",") != "1,2,3" {
		t.Fatalf("records %v, want 1,2,3: the repeated 3 is a duplicate", seen)
	}
	want := []CursorKey{{Key: "2", Digest: Digest([]byte(strings.TrimSpace(rec(2, 11))))}}
	if order != "11" || fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("cursor while applying 3: %s %v, want 11 %v", order, keys, want)
	}
}

// A follower takes the digest of the record that last moved the cursor
// only when it needs it, but before that record's batch is reused: else a
// checkpoint would keep the digest of other bytes, and a restart would
// take the record's re-delivery for a change.
func TestFollower_CursorDigestOutlivesItsBatch(t *testing.T) {
	const n = 600 // each key its own order value, over two batches
	line := func(id, order int, pad string) string {
		return fmt.Sprintf(`{"id":%d,"updated_at":%d,"p":"%s"}`, id, order, strings.Repeat(pad, 1000))
	}
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(line(i, i, "x") + "\n")
	}
	// Then stale records, enough to reuse every batch's buffer.
	for i := 1; i <= 3000; i++ {
		b.WriteString(line(i, 1, "y") + "\n")
	}
	srv := httptest.NewServer(http.HandlerFunc(body(b.String())))
	defer srv.Close()
	f, err := New(Config{URL: srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Run(ctx, func(Event) error { return nil }); err != nil {
		t.Fatal(err)
	}
	order, keys := f.Cursor()
	want := []CursorKey{{Key: strconv.Itoa(n), Digest: Digest([]byte(line(n, n, "x")))}}
	if order != Order(strconv.Itoa(n)) || fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("cursor %s %v, want %d %v", order, keys, n, want)
	}
}

func indexOf(r *run, k EventKind) int {
	for i, e := range r.events {
		if e.Kind == k {
			return i
		}
	}
	return -1
}

// A body that ends cleanly inside a record is retried, never taken whole.
func TestFollower_TruncatedBodyRetried(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){
		body(rec(1, 10) + `{"id":2,"updated_at":11,"deleted_at":nu`),
		body(rec(1, 10) + rec(2, 11)),
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	r := follow(t, Config{URL: srv.URL + "/"}, nil)
	if r.err != nil || strings.Join(r.keys, ",") != "1,2" {
		t.Fatalf("err %v keys %v", r.err, r.keys)
	}
	if i := indexOf(r, EventRetry); i < 0 || !errors.Is(r.events[i].Err, ErrTruncated) {
		t.Fatalf("want a retry for ErrTruncated; events %v", r.events)
	}
}

// Keys from a checkpoint are dropped when re-delivered at the cursor with
// the same bytes; with other bytes (an update within the same second, say)
// or an unknown digest they are passed on (PROTOCOL 5.1).
func TestFollower_SinceKeysFromCheckpoint(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){body(rec(1, 10) + rec(2, 10) + rec(4, 10) + rec(3, 11))}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	seen := func(id int) CursorKey {
		return CursorKey{Key: strconv.Itoa(id), Digest: Digest([]byte(strings.TrimSpace(rec(id, 10))))}
	}
	changed := CursorKey{Key: "2", Digest: Digest([]byte(`{"id":2,"updated_at":10,"old":true}`))}
	r := follow(t, Config{URL: srv.URL + "/", Since: "10", SinceKeys: []CursorKey{seen(1), changed, {Key: "4"}}}, nil)
	if got := strings.Join(r.keys, ","); got != "2,4,3" || r.err != nil {
		t.Fatalf("keys %s err %v, want 2,4,3", got, r.err)
	}
	if got := s.requests()[0]; got != "/10" {
		t.Fatalf("request %s, want /10", got)
	}
}

// Equal order value, different bytes: applied, even at the cursor.
func TestFollower_SameOrderDifferentBytesDelivered(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){
		body(rec(1, 10) + `{"id":1,"updated_at":10,"deleted_at":null,"v":2}` + "\n" + rec(1, 10)),
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	r := follow(t, Config{URL: srv.URL + "/"}, nil)
	if len(r.keys) != 3 {
		t.Fatalf("records %d, want 3 (the last differs from the one before it)", len(r.keys))
	}
}

func TestFollower_GoneStartsResync(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){
		body(rec(1, 100) + rec(2, 101)),
		status(http.StatusGone),
		body(rec(1, 50)),
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	f, err := New(Config{URL: srv.URL + "/", Follow: true, Poll: 5 * time.Millisecond, Idle: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []EventKind
	var resynced Event
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = f.Run(ctx, func(ev Event) error {
		if ev.Kind != EventQuiet {
			kinds = append(kinds, ev.Kind)
		}
		if ev.Kind == EventCaughtUp && ev.Resynced {
			resynced = ev
			return errors.New("done")
		}
		return nil
	})
	if err == nil || err.Error() != "done" {
		t.Fatalf("err %v, kinds %v", err, kinds)
	}
	if got := s.requests(); got[2] != "/0" {
		t.Fatalf("resync requested %s, want /0", got[2])
	}
	// The cursor after a resync is what the resync saw, even lower.
	if cur, _ := f.Cursor(); cur != "50" || resynced.Previous != "101" {
		t.Fatalf("cursor %s previous %s, want 50 and 101", cur, resynced.Previous)
	}
}

func TestFollower_GoneAtCursorZeroIsPermanent(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){status(http.StatusGone)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	r := follow(t, Config{URL: srv.URL + "/", Follow: true}, nil)
	if !errors.Is(r.err, ErrGone) || len(s.requests()) != 1 {
		t.Fatalf("err %v after %d requests, want ErrGone after 1", r.err, len(s.requests()))
	}
}

func TestFollower_PermanentStatusStops(t *testing.T) {
	for _, code := range []int{400, 401, 403, 404, 405} {
		s := &script{steps: []func(http.ResponseWriter, *http.Request){status(code)}}
		srv := httptest.NewServer(s)
		r := follow(t, Config{URL: srv.URL + "/", Follow: true}, nil)
		srv.Close()
		var se *StatusError
		if !errors.As(r.err, &se) || se.Code != code || !strings.Contains(r.err.Error(), `"go away"`) {
			t.Errorf("%d: err %v, want a *StatusError naming the body", code, r.err)
		}
		if n := len(s.requests()); n != 1 {
			t.Errorf("%d: %d requests, want 1 (no retry)", code, n)
		}
	}
}

func TestFollower_RetryAfter(t *testing.T) {
	for _, tt := range []struct {
		code  int
		hdr   []string
		delay time.Duration
	}{
		{429, []string{"Retry-After", "7"}, 7 * time.Second},
		{503, []string{"Retry-After", "3600"}, retryAfterMax},
		{503, []string{"Retry-After", time.Now().Add(20 * time.Second).UTC().Format(http.TimeFormat)}, 20 * time.Second},
	} {
		s := &script{steps: []func(http.ResponseWriter, *http.Request){status(tt.code, tt.hdr...)}}
		srv := httptest.NewServer(s)
		r := follow(t, Config{URL: srv.URL + "/", Follow: true}, func(r *run, ev Event) bool { return ev.Kind == EventRetry })
		srv.Close()
		ev := r.events[len(r.events)-1]
		if ev.Kind != EventRetry || ev.Delay > tt.delay || ev.Delay < tt.delay-2*time.Second {
			t.Errorf("%d %v: event %+v, want a retry in %s", tt.code, tt.hdr, ev, tt.delay)
		}
	}
}

// A Retry-After beyond what is left of RetryFor ends the run at once, saying
// so, rather than asking again before the endpoint said to.
func TestFollower_RetryAfterBeyondRetryFor(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){status(503, "Retry-After", "30")}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	start := time.Now()
	r := follow(t, Config{URL: srv.URL + "/", RetryFor: 5 * time.Second}, nil)
	var gu *GiveUpError
	if !errors.As(r.err, &gu) || !strings.Contains(r.err.Error(), "30s before the next try (Retry-After)") {
		t.Fatalf("err %v", r.err)
	}
	if d := time.Since(start); d > 2*time.Second || len(s.requests()) != 1 {
		t.Errorf("%d requests in %s: want one, and no wait", len(s.requests()), d)
	}
	// One that fits, to the second, is waited for.
	s = &script{steps: []func(http.ResponseWriter, *http.Request){status(503, "Retry-After", "1"), body(rec(1, 10))}}
	srv2 := httptest.NewServer(s)
	defer srv2.Close()
	if r := follow(t, Config{URL: srv2.URL + "/", RetryFor: time.Second}, nil); r.err != nil || len(r.keys) != 1 {
		t.Errorf("Retry-After 1 with RetryFor 1s: err %v, keys %v", r.err, r.keys)
	}
}

func TestFollower_TransientFailuresBackOff(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){status(500)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var delays []time.Duration
	follow(t, Config{URL: srv.URL + "/", Follow: true}, func(r *run, ev Event) bool {
		if ev.Kind == EventRetry {
			delays = append(delays, ev.Delay)
		}
		return len(delays) == 3
	})
	for i, d := range delays {
		if ceiling := backoffMin << i; d <= 0 || d > ceiling {
			t.Errorf("retry %d after %s, want in (0, %s]", i, d, ceiling)
		}
	}
}

func TestFollower_RetryForGivesUp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := srv.URL
	srv.Close() // connection refused from now on
	start := time.Now()
	r := follow(t, Config{URL: url + "/", RetryFor: 600 * time.Millisecond}, nil)
	if r.err == nil || !strings.Contains(r.err.Error(), "gave up") || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %s", r.err, time.Since(start))
	}
}

func TestFollower_StallReconnects(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){hang(rec(1, 1))}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	r := follow(t, Config{URL: srv.URL + "/", Follow: true, StallTimeout: 150 * time.Millisecond, Idle: time.Hour}, func(r *run, ev Event) bool {
		return ev.Kind == EventRetry
	})
	ev := r.events[len(r.events)-1]
	if ev.Kind != EventRetry || !strings.Contains(ev.Err.Error(), "no data for 150ms") {
		t.Fatalf("last event %+v, want a stall retry", ev)
	}
}

func TestFollower_BadRecord(t *testing.T) {
	stream := rec(1, 1) + "{oops}\n" + rec(2, 2)
	s := &script{steps: []func(http.ResponseWriter, *http.Request){body(stream)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	r := follow(t, Config{URL: "http://u:hunter2@" + strings.TrimPrefix(srv.URL, "http://") + "/"}, nil)
	var bad *BadRecordError
	if !errors.As(r.err, &bad) || bad.Offset != int64(len(rec(1, 1))) || !strings.Contains(bad.Endpoint, "u:***@") {
		t.Fatalf("err %v, want a BadRecordError at byte %d naming the redacted endpoint", r.err, len(rec(1, 1)))
	}
	if !strings.HasPrefix(r.err.Error(), "bad record at byte") {
		t.Fatalf("message %q", r.err)
	}
	if strings.Contains(r.err.Error(), "hunter2") {
		t.Fatalf("error shows the password: %v", r.err)
	}
	r = follow(t, Config{URL: srv.URL + "/", SkipBadRecords: true}, nil)
	if r.err != nil || strings.Join(r.keys, ",") != "1,2" || r.count(EventBadRecord) != 1 {
		t.Fatalf("skipping: err %v keys %v events %v", r.err, r.keys, r.events)
	}
}

func TestFollower_OrderKindMismatchIsBad(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){body(rec(1, 1) + rec(2, `"2024"`))}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	r := follow(t, Config{URL: srv.URL + "/"}, nil)
	var bad *BadRecordError
	if !errors.As(r.err, &bad) || !strings.Contains(bad.Reason, "numbers") {
		t.Fatalf("err %v, want a kind mismatch", r.err)
	}
}

func TestFollower_BasicAuthAndHeaders(t *testing.T) {
	s := &script{steps: []func(http.ResponseWriter, *http.Request){body(rec(1, 1))}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	u := "http://alice:s3cret@" + strings.TrimPrefix(srv.URL, "http://") + "/"
	follow(t, Config{URL: u}, nil)
	follow(t, Config{URL: srv.URL + "/", User: "bob:pw"}, nil)
	want := []string{"Basic YWxpY2U6czNjcmV0", "Basic Ym9iOnB3"}
	if s.auths[0] != want[0] || s.auths[1] != want[1] {
		t.Fatalf("Authorization %q, want %q", s.auths, want)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"5", 5 * time.Second},
		{"0", backoffMin},
		{"-3", 0},
		{"100000", retryAfterMax},
		{"Thu, 01 Jan 2026 00:00:30 GMT", 30 * time.Second},
		{"Wed, 31 Dec 2025 00:00:00 GMT", backoffMin},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.v, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.v, got, tt.want)
		}
	}
}
