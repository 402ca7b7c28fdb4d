package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/internal/pgtest"
	"github.com/lockstep/lockstep/sqlstore"
	"github.com/lockstep/lockstep/state"
)

// TestSync_CrashAnywhere kills `lockstep sync --follow` with SIGKILL at
// random moments while the endpoint changes, deletes and re-adds records,
// restarts it each time, and checks that every snapshot left on disk is
// whole, and that after the last run the snapshot equals the endpoint's
// table exactly. LOCKSTEP_CRASH_KILLS sets the number of kills (make
// crashtest: 200).
func TestSync_CrashAnywhere(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "replica.jsonl")
	crashAnywhere(t, out, func(t *testing.T, i int) (map[int]int, int, bool) { return readFileReplica(t, i, out) }, func(t *testing.T) string {
		return readFile(t, out)
	})
}

// The same, with the replica in SQLite and in PostgreSQL.
func TestSync_CrashAnywhereSQLite(t *testing.T) {
	t.Parallel()
	out := "sqlite:" + filepath.Join(t.TempDir(), "replica.db")
	crashAnywhere(t, out, func(t *testing.T, i int) (map[int]int, int, bool) { return readDBReplica(t, i, out) }, func(t *testing.T) string {
		return lockstep(t, "dump", out).stdout
	})
}

func TestSync_CrashAnywherePostgres(t *testing.T) {
	t.Parallel()
	out := postgresDSN(t) + "&table=crash"
	crashAnywhere(t, out, func(t *testing.T, i int) (map[int]int, int, bool) { return readDBReplica(t, i, out) }, func(t *testing.T) string {
		return lockstep(t, "dump", out).stdout
	})
}

// crashAnywhere is the crash test for the replica at out: read returns
// after each kill the order of each key it holds and its cursor (false when
// there is nothing yet), final what dump prints at the end.
func crashAnywhere(t *testing.T, out string, read func(t *testing.T, i int) (map[int]int, int, bool), final func(t *testing.T) string) {
	kills := 30
	if v, err := strconv.Atoi(os.Getenv("LOCKSTEP_CRASH_KILLS")); err == nil {
		kills = v
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	t.Logf("seed-free run; %d kills", kills)

	// truth is the endpoint's table: key -> its line, as last written;
	// history every change, in order.
	truth := map[int]string{}
	hist := &history{}
	order := 0
	var initial []string
	for k := 1; k <= 300; k++ {
		order++
		l := line(k, order, fmt.Sprintf(`,"v":%d`, order))
		truth[k] = l
		initial = append(initial, l)
		hist.add(change{order, k, false})
	}
	writeFile(t, src, initial...)
	url := serve(t, src) + "/servers/"

	stop := make(chan struct{})
	changed := make(chan struct{})
	last := initial[len(initial)-1] // the last line written, once changed is closed
	wr := rand.New(rand.NewPCG(rng.Uint64(), 9))
	go func() {
		defer close(changed)
		f, err := os.OpenFile(src, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			panic(err)
		}
		defer f.Close()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(wr.IntN(3000)) * time.Microsecond):
			}
			var batch strings.Builder
			for range 1 + wr.IntN(20) {
				order++
				k := 1 + wr.IntN(400) // keys above 300 come and go
				if wr.IntN(4) == 0 {
					last = tomb(k, order)
					delete(truth, k)
					hist.add(change{order, k, true})
				} else {
					last = line(k, order, fmt.Sprintf(`,"v":%d`, order))
					truth[k] = last
					hist.add(change{order, k, false})
				}
				batch.WriteString(last)
			}
			f.WriteString(batch.String())
		}
	}()

	for i := range kills {
		cmd := exec.Command(binary, "sync", "--follow", url, "--out", out, "--flush-interval", "20ms", "--idle", "50ms", "--resync-quiet", "1s")
		var stderr lines
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if have, cursor, ok := read(t, i); ok {
			checkWhole(t, i, have, cursor, hist)
		}
		// Retries and resyncs are fair; anything that says the data or the
		// files went wrong is not.
		if m := regexp.MustCompile(`panic|bad record|damaged|written for|DATA RACE`).FindString(stderr.String()); m != "" {
			t.Fatalf("kill %d: sync said %q: %s", i, m, stderr.String())
		}
	}
	close(stop)
	<-changed
	waitServed(t, url, last)

	r := lockstep(t, "sync", url, "--out", out, "--idle", "300ms", "--resync-quiet", "1s")
	if r.code != 0 {
		t.Fatalf("final sync: %d %s", r.code, r.stderr)
	}
	keys := make([]int, 0, len(truth))
	for k := range truth {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var want strings.Builder
	for _, k := range keys {
		want.WriteString(truth[k])
	}
	if got := final(t); got != want.String() {
		t.Fatalf("after %d kills the snapshot differs from the endpoint:\n%s", kills, diffLines(got, want.String()))
	}
	t.Logf("%d kills, %d records, snapshot equals the endpoint", kills, len(truth))
}

type change struct {
	order, key int
	deleted    bool
}

type history struct {
	mu      sync.Mutex
	changes []change
}

func (h *history) add(c change) {
	h.mu.Lock()
	h.changes = append(h.changes, c)
	h.mu.Unlock()
}

// readFileReplica reads a snapshot and its checkpoint, each of which must
// be whole.
func readFileReplica(t *testing.T, i int, out string) (map[int]int, int, bool) {
	tb := state.NewTable()
	_, err := tb.ReadSnapshot(out, follow.DecoderOptions{})
	if os.IsNotExist(err) {
		return nil, 0, false
	}
	if err != nil {
		t.Fatalf("kill %d: snapshot damaged: %v", i, err)
	}
	cp, err := state.ReadCheckpoint(state.CheckpointPath(out))
	if os.IsNotExist(err) {
		return nil, 0, false
	}
	if err != nil {
		t.Fatalf("kill %d: checkpoint damaged: %v", i, err)
	}
	have := map[int]int{} // key -> order in the snapshot
	for _, rec := range tb.All() {
		addOrder(have, rec)
	}
	cursor, _ := strconv.Atoi(string(cp.Cursor))
	return have, cursor, true
}

// readDBReplica reads a database replica and its checkpoint in one
// transaction.
func readDBReplica(t *testing.T, i int, dsn string) (map[int]int, int, bool) {
	have := map[int]int{}
	cp, err := sqlstore.Read(context.Background(), dsn, func(rec []byte) error {
		addOrder(have, rec)
		return nil
	})
	if err != nil && (errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "no lockstep table")) {
		// Killed before it created the database (slow to start under load).
		return nil, 0, false
	}
	if err != nil {
		t.Fatalf("kill %d: %v", i, err)
	}
	cursor, _ := strconv.Atoi(string(cp.Cursor))
	return have, cursor, true
}

func addOrder(have map[int]int, rec []byte) {
	r, _ := follow.ParseRecord(rec, follow.DecoderOptions{})
	k, _ := strconv.Atoi(string(r.Key))
	have[k], _ = strconv.Atoi(string(r.Order))
}

// checkWhole asserts that the checkpoint a killed sync left does not run
// ahead of its table: every key whose last change is at or before the
// cursor is in the table at that version (or, if deleted, absent).
func checkWhole(t *testing.T, i int, have map[int]int, cursor int, h *history) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	atCursor := map[int]change{}
	last := map[int]int{}
	for _, c := range h.changes {
		if c.order <= cursor {
			atCursor[c.key] = c
		}
		last[c.key] = c.order
	}
	for k, c := range atCursor {
		// A key changed after the cursor is sent again when sync resumes
		// from it (an endpoint asked for cursor 0 sends only its latest
		// version), so only keys settled by the cursor must be in place.
		if c.deleted || have[k] >= c.order || last[k] > cursor {
			continue
		}
		t.Fatalf("kill %d: the checkpoint (cursor %d) ran ahead of the snapshot: key %d at %d is missing (snapshot has %d)", i, cursor, k, c.order, have[k])
	}
}

func diffLines(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var b strings.Builder
	for i := 0; i < max(len(g), len(w)) && b.Len() < 2000; i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			fmt.Fprintf(&b, "line %d:\n  got  %s\n  want %s\n", i+1, gl, wl)
		}
	}
	return b.String()
}

var (
	pgOnce    sync.Once
	pgCluster *pgtest.Cluster
	pgErr     error
)

// postgresDSN starts a throwaway PostgreSQL for the tests of this package
// (once), or skips loudly where there is none.
func postgresDSN(t *testing.T) string {
	dsn, err := maybePostgres(t)
	if err != nil {
		t.Skipf("*** SKIPPED: %v ***", err)
	}
	return dsn
}

// maybePostgres is postgresDSN for a test that has other parts to run.
func maybePostgres(t *testing.T) (string, error) {
	pgOnce.Do(func() { pgCluster, pgErr = pgtest.Start() })
	if pgErr != nil {
		if pgtest.Required() {
			t.Fatalf("PostgreSQL is required here (LOCKSTEP_REQUIRE_POSTGRES): %v", pgErr)
		}
		t.Logf("*** SKIPPING the PostgreSQL part: %v ***", pgErr)
		return "", pgErr
	}
	return pgCluster.DSN, nil
}

// stopPostgres stops what postgresDSN started.
func stopPostgres() {
	if pgCluster != nil {
		pgCluster.Stop()
	}
}
