package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/follow/followtest"
	"github.com/lockstep/lockstep/state"
)

func rec(id, order any, extra string) string {
	return fmt.Sprintf(`{"id":%v,"updated_at":%v,"deleted_at":null%s}`, id, order, extra)
}

// syncOnce is lockstep sync without --follow: it opens the file store,
// catches up, commits and closes.
func syncOnce(t *testing.T, url, out string, mod func(*Config)) (*Engine, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := OpenFile(ctx, out, FileOptions{Perm: 0o644})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	cfg := Config{Follow: follow.Config{URL: url, Idle: 100 * time.Millisecond, ResyncQuiet: time.Second}, Store: store, MaxDelete: 0.5}
	if mod != nil {
		mod(&cfg)
	}
	e, err := New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return e, e.Run(ctx)
}

// finite starts an endpoint that ends each response after its backlog.
func finite(t *testing.T, recs ...string) *followtest.Server {
	srv := followtest.NewUnstartedServer(recs...)
	srv.Finite = true
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// numbered is n live records with ids and order values 1 to n.
func numbered(n int) []string {
	var recs []string
	for i := 1; i <= n; i++ {
		recs = append(recs, rec(i, i, ""))
	}
	return recs
}

func snapshot(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lines(recs ...string) string { return strings.Join(recs, "\n") + "\n" }

// printed collects what an engine would print.
type printed struct{ out []string }

func (p *printed) Change(op state.Op, r *follow.Record, inferred bool) error {
	s := op.String() + " " + string(r.Bytes)
	if inferred {
		s += " (inferred)"
	}
	p.out = append(p.out, s)
	return nil
}

func (p *printed) Flush() error { return nil }

// A record re-sent at the cursor with new bytes (an update in the same
// second) is an update in the next run too: the checkpoint keeps a digest
// of each key at the cursor, not the key alone.
func TestEngine_SameOrderUpdateAcrossRuns(t *testing.T) {
	srv := finite(t, rec(1, 5, `,"v":1`), rec(2, 5, `,"v":1`))
	out := filepath.Join(t.TempDir(), "s.jsonl")
	if _, err := syncOnce(t, srv.URL+"/", out, nil); err != nil {
		t.Fatal(err)
	}
	srv.Append(rec(2, 5, `,"v":2`))
	e, err := syncOnce(t, srv.URL+"/", out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := snapshot(t, out), lines(rec(1, 5, `,"v":1`), rec(2, 5, `,"v":2`)); got != want || e.Stats().Updates != 1 {
		t.Fatalf("snapshot %q, want %q; stats %+v", got, want, e.Stats())
	}

	// The same for tail --once --checkpoint: the change is printed, once.
	cursor := filepath.Join(t.TempDir(), "tail.cursor")
	tail := func() []string {
		ctx := context.Background()
		store, err := OpenCursor(ctx, cursor, 0o644, false)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		p := &printed{}
		e, err := New(ctx, Config{Follow: follow.Config{URL: srv.URL + "/"}, Store: store, Table: Memory(state.NewIndex()), Sink: p, CommitEvery: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Run(ctx); err != nil {
			t.Fatal(err)
		}
		return p.out
	}
	if got := tail(); len(got) != 2 {
		t.Fatalf("first tail printed %q", got)
	}
	srv.Append(rec(1, 5, `,"v":3`))
	if got := tail(); len(got) != 1 || got[0] != "insert "+rec(1, 5, `,"v":3`) {
		t.Fatalf("second tail printed %q, want the update of key 1", got)
	}
	if got := tail(); len(got) != 0 {
		t.Fatalf("third tail printed %q, want nothing", got)
	}
}

// A snapshot changed behind the checkpoint's back is refused, whatever the
// change, even when it keeps the size.
func TestEngine_SnapshotBoundToCheckpoint(t *testing.T) {
	recs := []string{rec(1, 1, `,"v":"a"`), rec(2, 2, `,"v":"b"`), rec(3, 3, `,"v":"c"`)}
	tests := []struct {
		name   string
		change func(path, old string)
	}{
		{"a line removed by hand", func(path, old string) { os.WriteFile(path, []byte(lines(recs[0], recs[2])), 0o644) }},
		{"truncated", func(path, old string) { os.WriteFile(path, []byte(lines(recs[0])+recs[1][:10]), 0o644) }},
		{"an older snapshot of the same size restored", func(path, old string) {
			os.WriteFile(path, []byte(strings.Replace(old, `"v":"b"`, `"v":"x"`, 1)), 0o644)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := finite(t, recs...)
			out := filepath.Join(t.TempDir(), "s.jsonl")
			if _, err := syncOnce(t, srv.URL+"/", out, nil); err != nil {
				t.Fatal(err)
			}
			old := snapshot(t, out)
			tt.change(out, old)
			changed := snapshot(t, out)
			_, err := syncOnce(t, srv.URL+"/", out, nil)
			var be *BindingError
			if !errors.As(err, &be) || !strings.Contains(err.Error(), out+" does not match its checkpoint") {
				t.Fatalf("err %v, want a BindingError", err)
			}
			if snapshot(t, out) != changed {
				t.Fatal("the refused run rewrote the snapshot")
			}
			if _, err := syncOnce(t, srv.URL+"/", out, func(c *Config) { c.Resync = true }); err != nil || snapshot(t, out) != old {
				t.Fatalf("resync: %v\n%s", err, snapshot(t, out))
			}
		})
	}
}

// Two data sets behind URLs that look alike once redacted are never mixed
// in one snapshot; a new password is the same data set.
func TestEngine_EndpointIdentity(t *testing.T) {
	srv := finite(t, rec(1, 1, ""))
	out := filepath.Join(t.TempDir(), "s.jsonl")
	base := strings.Replace(srv.URL, "http://", "http://u:one@", 1)
	if _, err := syncOnce(t, base+"/?partition_key=eu", out, nil); err != nil {
		t.Fatal(err)
	}
	_, err := syncOnce(t, base+"/?partition_key=us", out, nil)
	if !errors.Is(err, state.ErrMismatch) || !strings.Contains(err.Error(), "another URL") {
		t.Fatalf("err %v, want a mismatch", err)
	}
	rotated := strings.Replace(base, "u:one@", "u:two@", 1)
	if _, err := syncOnce(t, rotated+"/?partition_key=eu", out, nil); err != nil {
		t.Fatalf("password rotated: %v", err)
	}
	cp := snapshot(t, out+".checkpoint")
	if strings.Contains(cp, "one") || strings.Contains(cp, "two") || strings.Contains(cp, "=eu") {
		t.Fatalf("a secret in the checkpoint:\n%s", cp)
	}
}

// A resync whose first record comes late, or whose backlog pauses, removes
// nothing that the endpoint still has, from a snapshot or from tail's
// output.
func TestEngine_SlowResyncSweepsNothing(t *testing.T) {
	srv := followtest.NewServer(numbered(150)...)
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "s.jsonl")
	if _, err := syncOnce(t, srv.URL+"/", out, nil); err != nil {
		t.Fatal(err)
	}
	full := snapshot(t, out)
	srv.Faults(followtest.Fault{Stall: 400 * time.Millisecond}, followtest.Fault{After: 75, Stall: 400 * time.Millisecond})
	for range 2 {
		e, err := syncOnce(t, srv.URL+"/", out, func(c *Config) { c.Resync = true })
		if err != nil || snapshot(t, out) != full || e.Stats().Deletes != 0 {
			t.Fatalf("err %v, stats %+v", err, e.Stats())
		}
	}

	// tail: a 410, then a resync whose backlog pauses: no false tombstones.
	srv.Faults(followtest.Fault{Status: 410}, followtest.Fault{After: 75, Stall: 400 * time.Millisecond})
	p := &printed{}
	e, err := New(context.Background(), Config{
		Follow: follow.Config{URL: srv.URL + "/", Since: "150", Idle: 100 * time.Millisecond, ResyncQuiet: time.Second},
		Table:  Memory(state.NewIndex()), Sink: p, MaxDelete: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, line := range p.out {
		if strings.Contains(line, "inferred") {
			t.Fatalf("false tombstone %s", line)
		}
	}
}

// The mass-deletion guard holds for tail's inferred tombstones as for
// sync's removals.
func TestEngine_MassDeleteGuardForTail(t *testing.T) {
	recs := numbered(120)
	srv := finite(t, recs...)
	table := Memory(state.NewIndex())
	run := func(follow follow.Config, resync bool) ([]string, error) {
		p := &printed{}
		e, err := New(context.Background(), Config{Follow: follow, Table: table, Sink: p, MaxDelete: 0.5, Resync: resync})
		if err != nil {
			t.Fatal(err)
		}
		return p.out, e.Run(context.Background())
	}
	if _, err := run(follow.Config{URL: srv.URL + "/"}, false); err != nil {
		t.Fatal(err)
	}
	// The endpoint comes back from a restore with only the last 20.
	small := finite(t, recs[100:]...)
	out, err := run(follow.Config{URL: small.URL + "/", Since: "120"}, true)
	var md *state.MassDeleteError
	if !errors.As(err, &md) || md.Remove != 100 || len(out) != 0 {
		t.Fatalf("err %v, printed %d lines; want the guard", err, len(out))
	}
}

// A following engine on a quiet endpoint keeps saying the replica is
// current: caught_up_at and last_contact_at move.
func TestEngine_FreshWhileQuiet(t *testing.T) {
	srv := followtest.NewUnstartedServer(rec(1, 1, ""))
	srv.Heartbeat = 50 * time.Millisecond
	srv.Start()
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "s.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	store, err := OpenFile(ctx, out, FileOptions{Perm: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e, err := New(ctx, Config{Follow: follow.Config{URL: srv.URL + "/", Follow: true, Idle: 100 * time.Millisecond},
		Store: store, Fresh: 300 * time.Millisecond, CommitEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var first time.Time
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if cp, err := state.ReadCheckpoint(out + ".checkpoint"); err == nil && !cp.CaughtUpAt.IsZero() {
			if first.IsZero() {
				first = cp.CaughtUpAt
			} else if cp.CaughtUpAt.Sub(first) > 500*time.Millisecond && cp.LastContactAt.Sub(first) > 500*time.Millisecond {
				cancel()
				if err := <-done; !errors.Is(err, context.Canceled) {
					t.Fatal(err)
				}
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	t.Fatal("caught_up_at and last_contact_at never moved on a quiet, healthy endpoint")
}

// Records that change nothing (the seed's server.js re-sends its table)
// let a finishing sync end in about --idle.
func TestEngine_ResentRecordsLetSyncFinish(t *testing.T) {
	srv := followtest.NewServer(rec(1, 1, ""), rec(2, 2, ""))
	defer srv.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				srv.Append(rec(1, 1, ""))
			}
		}
	}()
	out := filepath.Join(t.TempDir(), "s.jsonl")
	start := time.Now()
	if _, err := syncOnce(t, srv.URL+"/", out, nil); err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
	if got := snapshot(t, out); got != lines(rec(1, 1, ""), rec(2, 2, "")) {
		t.Fatalf("snapshot %q", got)
	}
}

// A crash after the new snapshot is in place and before the checkpoint
// that binds it leaves a pair the next run accepts: the checkpoint said
// which snapshot was coming, and its cursor is behind it, which is safe.
func TestFile_CrashBetweenSnapshotAndCheckpoint(t *testing.T) {
	srv := finite(t, numbered(3)...)
	out := filepath.Join(t.TempDir(), "s.jsonl")
	if _, err := syncOnce(t, srv.URL+"/", out, nil); err != nil {
		t.Fatal(err)
	}
	srv.Append(rec(4, 4, ""))
	store, err := OpenFile(context.Background(), out, FileOptions{Perm: state.ModeShared})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Open(context.Background(), Identity{EndpointID: follow.EndpointID(srv.URL + "/"), Endpoint: srv.URL + "/"}, false); err != nil {
		t.Fatal(err)
	}
	r, _ := follow.ParseRecord([]byte(rec(4, 4, "")), follow.DecoderOptions{})
	if _, err := store.Table().Apply(&r); err != nil {
		t.Fatal(err)
	}
	// The commit's first half: the snapshot replaced, its checkpoint not.
	if _, err := store.table.ReplaceSnapshot(out, state.ModeShared, func(next state.SnapshotID) error { return store.intend(next, "4") }); err != nil {
		t.Fatal(err)
	}
	store.Close()
	e, err := syncOnce(t, srv.URL+"/", out, nil)
	if err != nil {
		t.Fatalf("after the crash: %v", err)
	}
	if got := snapshot(t, out); got != lines(numbered(4)...) || e.Cursor() != "4" {
		t.Fatalf("snapshot %q cursor %s", got, e.Cursor())
	}
}

// A resync whose backlog is the same records as the replica holds, sent
// slowly, is still arriving: nothing is swept while it trickles in.
func TestEngine_SlowUnchangedResyncSweepsNothing(t *testing.T) {
	recs := numbered(30)
	srv := finite(t, recs...)
	out := filepath.Join(t.TempDir(), "s.jsonl")
	if _, err := syncOnce(t, srv.URL+"/", out, nil); err != nil {
		t.Fatal(err)
	}
	full := snapshot(t, out)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i, rec := range recs {
			if i >= 5 {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(60 * time.Millisecond):
				}
			}
			fmt.Fprintln(w, rec)
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	}))
	defer slow.Close()
	e, err := syncOnce(t, slow.URL+"/", out, func(c *Config) {
		c.Resync, c.MaxDelete = true, 1
		c.Follow.ResyncQuiet = 300 * time.Millisecond
	})
	if err != nil || e.Stats().Deletes != 0 || snapshot(t, out) != full {
		t.Fatalf("err %v, stats %+v:\n%s", err, e.Stats(), snapshot(t, out))
	}
}

// The mass-deletion guard weighs a sweep against the table as it was
// before the resync: a new data set as large as the old cannot wipe it.
func TestEngine_MassDeleteGuardCountsTheOldTable(t *testing.T) {
	old := finite(t, numbered(100)...)
	out := filepath.Join(t.TempDir(), "s.jsonl")
	if _, err := syncOnce(t, old.URL+"/", out, nil); err != nil {
		t.Fatal(err)
	}
	var other []string
	for i := 101; i <= 200; i++ {
		other = append(other, rec(i, i, ""))
	}
	replaced := finite(t, other...)
	_, err := syncOnce(t, replaced.URL+"/", out, func(c *Config) { c.Resync = true })
	var md *state.MassDeleteError
	if !errors.As(err, &md) || md.Remove != 100 || md.Of != 100 {
		t.Fatalf("err %v, want the guard", err)
	}
}

// The same crash in a resync that moved the cursor back: the next run
// resumes from the resync's cursor, not the old, higher one, and misses
// nothing the endpoint adds.
func TestFile_CrashInAResyncThatMovedTheCursorBack(t *testing.T) {
	var mu sync.Mutex
	table := numbered(10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		since, _ := strconv.Atoi(path.Base(r.URL.Path))
		mu.Lock()
		defer mu.Unlock()
		for i, line := range table {
			if i+1 >= since {
				fmt.Fprintln(w, line)
			}
		}
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "s.jsonl")
	if _, err := syncOnce(t, srv.URL+"/", out, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := OpenFile(ctx, out, FileOptions{Perm: state.ModeShared})
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{EndpointID: follow.EndpointID(srv.URL + "/"), Endpoint: srv.URL + "/"}
	if _, _, err := store.Open(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	// The endpoint was reset to records 1 to 5: the resync applies them,
	// sweeps 6 to 10, and crashes between its two renames.
	tb := store.Table()
	tb.BeginResync()
	for _, line := range numbered(5) {
		r, _ := follow.ParseRecord([]byte(line), follow.DecoderOptions{})
		tb.Apply(&r)
	}
	if _, err := tb.EndResync(1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := store.table.ReplaceSnapshot(out, state.ModeShared, func(next state.SnapshotID) error { return store.intend(next, "5") }); err != nil {
		t.Fatal(err)
	}
	store.Close()
	mu.Lock()
	table = append(numbered(5), rec(6, 6, `,"new":1`), rec(7, 7, `,"new":1`))
	mu.Unlock()
	e, err := syncOnce(t, srv.URL+"/", out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := snapshot(t, out), lines(table...); got != want || e.Cursor() != "7" {
		t.Fatalf("cursor %s, snapshot\n%s\nwant\n%s", e.Cursor(), got, want)
	}
}

// After a 410 resync's sweep, an endpoint that sends out of order re-sends
// an old version of a key deleted before the resync: the tombstone, below
// the resync's cursor, still holds it off, in sync's table and in tail's
// index (which would print a false insert).
func TestEngine_StaleUpdateAfterResyncSweep(t *testing.T) {
	for name, tb := range map[string]*state.Table{"table": state.NewTable(), "index": state.NewIndex()} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch n.Add(1) {
				case 1:
					fmt.Fprint(w, rec(1, 1, "")+"\n"+rec(2, 2, "")+"\n"+`{"id":2,"updated_at":10,"deleted_at":10}`+"\n")
				case 2:
					w.WriteHeader(http.StatusGone)
				default:
					fmt.Fprintln(w, rec(1, 1, ""))
					fmt.Fprintln(w, rec(3, 12, ""))
					w.(http.Flusher).Flush()
					time.Sleep(900 * time.Millisecond) // the sweep runs
					fmt.Fprintln(w, rec(2, 5, `,"v":"stale"`))
					w.(http.Flusher).Flush()
					<-r.Context().Done()
				}
			}))
			defer srv.Close()
			p := &printed{}
			ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
			defer cancel()
			e, err := New(ctx, Config{Follow: follow.Config{URL: srv.URL + "/", Follow: true, Idle: 100 * time.Millisecond, ResyncQuiet: 300 * time.Millisecond},
				Table: Memory(tb), Sink: p, MaxDelete: 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("run: %v", err)
			}
			if n.Load() < 3 || e.Cursor() != "12" {
				t.Fatalf("%d requests, cursor %s: the resync did not happen", n.Load(), e.Cursor())
			}
			if b, ok := tb.Get([]byte("2")); ok {
				t.Errorf("key 2, deleted at 10, came back from a stale update at 5: %s", b)
			}
			for _, line := range p.out {
				if strings.Contains(line, "stale") {
					t.Errorf("printed %q", line)
				}
			}
		})
	}
}

// A run that receives nothing new (only the records at the cursor again, as
// since is inclusive) must not read the snapshot into memory: a cron job's
// no-op run of a large replica costs next to nothing.
func TestFile_NothingNewLeavesSnapshotUnread(t *testing.T) {
	srv := finite(t, numbered(3)...)
	out := filepath.Join(t.TempDir(), "r.jsonl")
	if _, err := syncOnce(t, srv.URL+"/", out, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := OpenFile(ctx, out, FileOptions{Perm: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e, err := New(ctx, Config{Follow: follow.Config{URL: srv.URL + "/", Idle: 100 * time.Millisecond}, Store: store, MaxDelete: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(srv.Requests()) < 2 {
		t.Fatal("the second run asked the endpoint nothing")
	}
	if store.loaded {
		t.Error("a run with nothing new read the snapshot")
	}
}

// expecting records what an Engine tells its table to expect.
type expecting struct {
	memory
	got []int
}

func (x *expecting) Expect(keys int) {
	x.got = append(x.got, keys)
	x.memory.Expect(keys)
}

// A response of known length into an empty table: the Engine tells the
// table how many keys to expect, from the length and the first batch's
// records, and that the load is over once caught up. Into a table that
// holds keys, or with no length, it tells it nothing.
func TestEngine_ExpectsALoadOfKnownSize(t *testing.T) {
	// Records of one length (five-digit ids), so that any first batch,
	// however few records it holds, tells their size.
	const n = 20_000
	var lines []string
	for i := 10_000; i < 10_000+n; i++ {
		lines = append(lines, rec(i, i, ""))
	}
	body := strings.Join(lines, "\n") + "\n"
	chunked := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	table := &expecting{memory: memory{state.NewIndex()}}
	run := func() {
		t.Helper()
		e, err := New(context.Background(), Config{Follow: follow.Config{URL: srv.URL + "/"}, Table: table})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if len(table.got) != 2 || table.got[0] < n*9/10 || table.got[0] > n*11/10 || table.got[1] != 0 {
		t.Fatalf("told to expect %v keys, want one guess near %d, then 0 once caught up", table.got, n)
	}
	run()
	table.memory, chunked = memory{state.NewIndex()}, true
	run()
	if len(table.got) != 2 {
		t.Fatalf("told to expect %v: want nothing into a table that holds keys, or with no length", table.got)
	}
}
