package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A tail cursor file and a sync checkpoint are of different kinds, each
// refused where the other is expected, and a cursor file is locked.
func TestTail_CursorFileIsItsOwnKind(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "s.jsonl")
	writeFile(t, src, line(1, 1), line(2, 2))
	url := serve(t, src, "--finite")
	if r := lockstep(t, "sync", url+"/", "--out", out); r.code != 0 {
		t.Fatal(r.stderr)
	}
	checkpoint := readFile(t, out+".checkpoint")
	r := lockstep(t, "tail", "--once", "--checkpoint", out+".checkpoint", url+"/")
	if r.code != 1 || !strings.Contains(r.stderr, "this is a lockstep sync checkpoint, not a lockstep tail cursor file") {
		t.Fatalf("tail on a sync checkpoint: exit %d %s", r.code, r.stderr)
	}
	if readFile(t, out+".checkpoint") != checkpoint {
		t.Fatal("tail changed the sync checkpoint")
	}

	cursor := filepath.Join(dir, "tail.cursor")
	if r := lockstep(t, "tail", "--once", "--checkpoint", cursor, url+"/"); r.code != 0 || r.stdout != line(1, 1)+line(2, 2) {
		t.Fatalf("tail: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	os.Rename(cursor, filepath.Join(dir, "t.jsonl.checkpoint"))
	r = lockstep(t, "sync", url+"/", "--out", filepath.Join(dir, "t.jsonl"))
	if r.code != 1 || !strings.Contains(r.stderr, "this is a lockstep tail cursor file, not a lockstep sync checkpoint") {
		t.Fatalf("sync on a tail cursor file: exit %d %s", r.code, r.stderr)
	}
	r = lockstep(t, "sync", "--resync", url+"/", "--out", filepath.Join(dir, "t.jsonl"))
	if r.code != 1 || !strings.Contains(r.stderr, "tail cursor file") {
		t.Fatalf("sync --resync on a tail cursor file: exit %d %s", r.code, r.stderr)
	}
}

// Two overlapping tails on one cursor file would print a change twice: the
// second fails at once, or waits with --wait.
func TestTail_CursorFileIsLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, cursor := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "tail.cursor")
	writeFile(t, src, line(1, 1))
	url := serve(t, src)
	first, stdout, _ := start(t, "tail", "--checkpoint", cursor, url+"/")
	buf := make([]byte, 1)
	stdout.Read(buf) // the first tail is running and holds the lock
	r := lockstep(t, "tail", "--once", "--checkpoint", cursor, url+"/")
	if r.code != 1 || !strings.Contains(r.stderr, "holds "+cursor+".lock") || !strings.Contains(r.stderr, "--wait") {
		t.Fatalf("second tail: exit %d %s", r.code, r.stderr)
	}
	waiter, _, waitErr := start(t, "tail", "--once", "--wait", "--checkpoint", cursor, url+"/")
	first.Process.Signal(os.Interrupt)
	first.Wait()
	done := make(chan error, 1)
	go func() { done <- waiter.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tail --wait: %v %s", err, waitErr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("tail --wait still waiting after the lock was released")
	}
}

// --resync never overwrites a file that is not a snapshot.
func TestSync_ResyncRefusesAForeignFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, notes := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "notes.md")
	writeFile(t, src, line(1, 1))
	writeFile(t, notes, "# My notes\n", "do not lose these\n")
	url := serve(t, src, "--finite")
	for _, args := range [][]string{{"--resync"}, nil} {
		r := lockstep(t, append([]string{"sync", url + "/", "--out", notes}, args...)...)
		if r.code != 1 || readFile(t, notes) != "# My notes\ndo not lose these\n" {
			t.Fatalf("sync %v --out notes.md: exit %d %s", args, r.code, r.stderr)
		}
		if _, err := os.Stat(notes + ".checkpoint"); err == nil {
			t.Fatal("a checkpoint was written beside notes.md")
		}
	}
	if r := lockstep(t, "sync", url+"/", "--out", notes, "--resync"); !strings.Contains(r.stderr, "is not a lockstep snapshot") {
		t.Fatalf("stderr %s", r.stderr)
	}
}

// A 200 with an HTML page is a failure for a command that finishes, not
// a silent success.
func TestTail_HTMLPageFails(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<!doctype html>\n<html><body>Sign in</body></html>\n"))
	}))
	defer srv.Close()
	for _, cmd := range [][]string{{"tail", "--once"}, {"sync", "--out", filepath.Join(t.TempDir(), "s.jsonl")}, {"dump"}} {
		r := lockstep(t, append(cmd, srv.URL+"/")...)
		if r.code != 1 || !strings.Contains(r.stderr, "not a lockstep stream") || strings.Count(r.stderr, "\n") > 2 {
			t.Errorf("%v: exit %d %s", cmd, r.code, r.stderr)
		}
	}
}

// A UTF-8 byte order mark costs neither sync nor tail a record.
func TestSyncTail_ByteOrderMark(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("\xEF\xBB\xBF" + line(1, 1) + line(2, 2)))
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "s.jsonl")
	if r := lockstep(t, "sync", srv.URL+"/", "--out", out); r.code != 0 || readFile(t, out) != line(1, 1)+line(2, 2) {
		t.Fatalf("sync: exit %d %s", r.code, r.stderr)
	}
	if r := lockstep(t, "tail", "--once", srv.URL+"/"); r.code != 0 || r.stdout != line(1, 1)+line(2, 2) {
		t.Fatalf("tail: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
}

// sync --resync against an endpoint restored to lower order values says
// that the cursor moved back (PROTOCOL 5.4), into a file or a database.
func TestSync_ResyncSaysCursorMovedBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	for _, out := range []string{filepath.Join(dir, "r.jsonl"), "sqlite:" + filepath.Join(dir, "r.db")} {
		writeFile(t, src, line(1, 110), line(2, 120))
		url := fileServer(t, src)
		if r := lockstep(t, "sync", url, "--out", out); r.code != 0 {
			t.Fatalf("%s: %s", out, r.stderr)
		}
		writeFile(t, src, line(1, 10), line(2, 20))
		r := lockstep(t, "sync", "--resync", url, "--out", out)
		if r.code != 0 || !strings.Contains(r.stderr, "cursor moved back from 120 to 20") {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant the cursor moved back from 120 to 20", out, r.code, r.stderr)
		}
	}
}
