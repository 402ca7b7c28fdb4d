package state

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/lockstep/lockstep/follow"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "testdata", "state", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s:\n%s\nwant:\n%s", name, got, want)
	}
}

// Records arriving in any order give one snapshot: sorted, exact bytes.
func TestSnapshot_WriteGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("..", "testdata", "state", "changes.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	tb := NewTable()
	d := follow.NewDecoder(strings.NewReader(string(in)), follow.DecoderOptions{})
	for d.Next() {
		tb.Apply(d.Record())
	}
	if d.Err() != nil {
		t.Fatal(d.Err())
	}
	path := filepath.Join(t.TempDir(), "s.jsonl")
	wrote, err := tb.WriteSnapshot(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	golden(t, "snapshot.jsonl", got)

	// And reading it back gives the same table, and the same identity: the
	// one a checkpoint binds.
	back := NewTable()
	read, err := back.ReadSnapshot(path, follow.DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dumpTable(back) != dumpTable(tb) {
		t.Fatal("round trip changed the table")
	}
	if !read.Same(wrote) || wrote.Size != int64(len(got)) || wrote.Records != strings.Count(string(got), "\n") {
		t.Fatalf("written as %+v, read as %+v (%d bytes)", wrote, read, len(got))
	}
}

func TestSnapshot_EmptyTableIsEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.jsonl")
	if _, err := NewTable().WriteSnapshot(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("empty table wrote %q", b)
	}
	if _, err := NewTable().ReadSnapshot(path, follow.DecoderOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshot_DamagedRefused(t *testing.T) {
	a, b := live(1, 1), live(2, 2)
	tests := []struct {
		name, content string
		line          int
		reason        string
	}{
		{"Truncated", a + "\n" + b[:10], 2, "no newline"},
		{"InvalidJSON", a + "\n{not json}\n" + b + "\n", 2, "invalid character"},
		{"OutOfOrder", b + "\n" + a + "\n", 2, "not after"},
		{"DuplicateKey", a + "\n" + a + "\n", 2, "not after"},
		{"Tombstone", dead(1, 1) + "\n", 1, "tombstone"},
		{"MissingOrder", `{"id":1}` + "\n", 1, `no "updated_at"`},
		{"BlankLine", a + "\n\n" + b + "\n", 2, "empty record"},
		{"TwoOnALine", a + b + "\n", 1, "after the object"},
		{"NUL", a + "\n\x00\x00\n", 2, "expected a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.jsonl")
			os.WriteFile(path, []byte(tt.content), 0o644)
			_, err := NewTable().ReadSnapshot(path, follow.DecoderOptions{})
			var se *SnapshotError
			if !errors.As(err, &se) || se.Line != tt.line || !strings.Contains(se.Reason, tt.reason) {
				t.Fatalf("err %v, want line %d: %s", err, tt.line, tt.reason)
			}
			if !strings.Contains(err.Error(), path+":") {
				t.Fatalf("error does not name the file: %v", err)
			}
		})
	}
}

func TestSnapshot_Permissions(t *testing.T) {
	dir := t.TempDir()
	tb := NewTable()
	tb.Apply(record(t, live(1, 1)))
	fresh := filepath.Join(dir, "fresh.jsonl")
	if _, err := tb.WriteSnapshot(fresh, 0o600); err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(dir, "kept.jsonl")
	os.WriteFile(kept, nil, 0o640)
	os.Chmod(kept, 0o640)
	if _, err := tb.WriteSnapshot(kept, 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]fs.FileMode{fresh: 0o600, kept: 0o640} {
		if st, _ := os.Stat(path); st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", filepath.Base(path), st.Mode().Perm(), want)
		}
	}
}

// A write that fails leaves the old file and no temp file behind.
func TestWriteFileAtomic_FailureLeavesOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.jsonl")
	os.WriteFile(path, []byte("old\n"), 0o644)
	boom := errors.New("disk full")
	_, err := writeFileAtomic(path, 0o644, func(w *aheadWriter) error {
		w.Write([]byte(strings.Repeat("new\n", 1<<20)))
		return boom
	}, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old\n" {
		t.Fatalf("file now %.20q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestWriteFileAtomic_ReadOnlyFolder(t *testing.T) {
	if os.Geteuid() == 0 {
		// root writes through permission bits; the binary's tests cover a
		// read-only mount instead.
		t.Log("running as root: checking a missing folder instead")
		_, err := NewTable().WriteSnapshot(filepath.Join(t.TempDir(), "gone", "s.jsonl"), 0o644)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err %v", err)
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	if _, err := NewTable().WriteSnapshot(filepath.Join(dir, "s.jsonl"), 0o644); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("err %v", err)
	}
}

func TestCheckpoint_RoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.jsonl.checkpoint")
	at := time.Date(2026, 11, 26, 1, 2, 3, 0, time.UTC)
	c := &Checkpoint{
		Kind: KindSync, Endpoint: "https://u:***@h/servers/", EndpointID: "sha256:00ff",
		Key: "id", OrderBy: "updated_at", Deleted: "deleted_at",
		Cursor: "1700000000123456789", CursorKeys: []follow.CursorKey{{Key: "1", Digest: 0xdeadbeef}, {Key: `"a\"b"`, Digest: 1<<64 - 1}},
		Snapshot:   SnapshotID{Size: 4200, Records: 42, Digest: 0x0123456789abcdef},
		CaughtUpAt: at, LastContactAt: at.Add(time.Second),
	}
	if err := WriteCheckpoint(path, 0o644, c); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	golden(t, "checkpoint.json", b)
	got, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cursor != c.Cursor || !slices.Equal(got.CursorKeys, c.CursorKeys) || got.Snapshot != c.Snapshot ||
		got.Kind != KindSync || got.EndpointID != c.EndpointID || !got.CaughtUpAt.Equal(at) || got.Endpoint != c.Endpoint {
		t.Fatalf("read back %+v", got)
	}
	// No cursor and no keys round trip too.
	if err := WriteCheckpoint(path, 0o644, &Checkpoint{Kind: KindTail, Endpoint: "x"}); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadCheckpoint(path); err != nil || got.Cursor != "" || len(got.CursorKeys) != 0 || got.Kind != KindTail {
		t.Fatalf("empty: %+v %v", got, err)
	}
}

// A version 1 checkpoint (keys without digests, no kind, no binding) is
// still read: its keys have digest 0, so any re-delivery goes through.
func TestCheckpoint_Version1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c")
	os.WriteFile(path, []byte(`{"version":1,"endpoint":"http://a/","key":"id","order_by":"updated_at","deleted_field":"deleted_at",
		"cursor":5,"records":3,"caught_up_at":null,"last_contact_at":null,"cursor_keys":[1,"x"]}`), 0o644)
	got, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []follow.CursorKey{{Key: "1"}, {Key: `"x"`}}
	if got.Kind != "" || got.Cursor != "5" || got.Snapshot.Records != 3 || !slices.Equal(got.CursorKeys, want) {
		t.Fatalf("got %+v", got)
	}
}

func TestCheckpoint_Damaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c")
	for _, content := range []string{"", "{", `{"version":1,"cursor":true}`, `{"version":9}`} {
		os.WriteFile(path, []byte(content), 0o644)
		if _, err := ReadCheckpoint(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: err %v", content, err)
		}
	}
}

func TestCheckpoint_Check(t *testing.T) {
	f := follow.DecoderOptions{Key: "id", OrderBy: "updated_at", Deleted: "deleted_at"}
	c := &Checkpoint{Kind: KindSync, Endpoint: "http://a/servers/?token=***", EndpointID: "id-eu", Key: "id", OrderBy: "updated_at", Deleted: "deleted_at"}
	other := f
	other.OrderBy = "version"
	for _, tc := range []struct {
		name, kind, id, display string
		fields                  follow.DecoderOptions
		want                    string // "" for no error
	}{
		{"same", KindSync, "id-eu", "http://a/servers/?token=***", f, ""},
		{"password rotated: same ID, display differs", KindSync, "id-eu", "http://u:***@a/servers/?token=***", f, ""},
		{"another data set behind the same display", KindSync, "id-us", "http://a/servers/?token=***", f,
			"checkpoint was written for endpoint http://a/servers/?token=***, not http://a/servers/?token=*** (the same once redacted, but another URL)"},
		{"another endpoint", KindSync, "id-b", "http://b/servers/", f, "checkpoint was written for endpoint http://a/servers/?token=***, not http://b/servers/"},
		{"other fields", KindSync, "id-eu", "http://a/servers/?token=***", other, "checkpoint was written for order field updated_at, not version"},
		{"a tail cursor file wanted", KindTail, "id-eu", "http://a/servers/?token=***", f, "this is a lockstep sync checkpoint, not a lockstep tail cursor file"},
	} {
		err := c.Check(tc.kind, tc.id, tc.display, tc.fields)
		got := ""
		if err != nil {
			got = err.Error()
			if !errors.Is(err, ErrMismatch) {
				t.Errorf("%s: %v is not ErrMismatch", tc.name, err)
			}
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// Version 1 has no ID: the display form decides.
	v1 := &Checkpoint{Endpoint: "http://a/servers/", Key: "id", OrderBy: "updated_at", Deleted: "deleted_at"}
	if err := v1.Check(KindSync, "anything", "http://a/servers/", f); err != nil {
		t.Fatal(err)
	}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.jsonl")
	l, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file, so a second open conflicts even
	// within one process.
	if _, err := TryLock(path); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second TryLock: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, err := WaitLock(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitLock while held: %v", err)
	}
	done := make(chan error)
	go func() {
		l2, err := WaitLock(context.Background(), path)
		if err == nil {
			l2.Unlock()
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	l.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("WaitLock after unlock: %v", err)
	}
}

// The key order cached by a snapshot load must not outlive a sweep.
func TestSnapshot_LoadThenSweep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.jsonl")
	os.WriteFile(path, []byte(live(1, 1)+"\n"+live(2, 2)+"\n"+live(3, 3)+"\n"), 0o644)
	tb := NewTable()
	if _, err := tb.ReadSnapshot(path, follow.DecoderOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := dumpTable(tb); got != live(1, 1)+"\n"+live(2, 2)+"\n"+live(3, 3) {
		t.Fatalf("loaded:\n%s", got)
	}
	tb.BeginResync()
	tb.Apply(record(t, live(2, 2)))
	if _, err := tb.EndResync(1); err != nil {
		t.Fatal(err)
	}
	if got := dumpTable(tb); got != live(2, 2) {
		t.Fatalf("after the sweep:\n%s", got)
	}
	tb.Apply(record(t, live(0, 5)))
	if got := dumpTable(tb); got != live(0, 5)+"\n"+live(2, 2) {
		t.Fatalf("after an insert:\n%s", got)
	}
}

// A cursor is kept as the exact JSON text received: & < > stay as they are.
func TestCheckpoint_CursorKeptExactly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c")
	cur := follow.Order(`"2026-11-26T00:00:00Z&x<y>"`)
	if err := WriteCheckpoint(path, ModeShared, &Checkpoint{Kind: KindTail, Cursor: cur, CursorKeys: []follow.CursorKey{{Key: `"a&b"`, Digest: 1}}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	got, err := ReadCheckpoint(path)
	if err != nil || got.Cursor != cur || !strings.Contains(string(b), string(cur)) || got.CursorKeys[0].Key != `"a&b"` {
		t.Fatalf("err %v cursor %s:\n%s", err, got.Cursor, b)
	}
}

// Files planted where lockstep reads or locks are refused, never waited on
// or written through: a FIFO at the checkpoint or snapshot, a hard link at
// the lock.
func TestPlantedFiles(t *testing.T) {
	dir := t.TempDir()
	snap := filepath.Join(dir, "s.jsonl")
	if err := syscall.Mkfifo(CheckpointPath(snap), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(snap, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := ReadCheckpoint(CheckpointPath(snap)); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("checkpoint FIFO: %v", err)
		}
		if _, err := NewTable().ReadSnapshot(snap, follow.DecoderOptions{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("snapshot FIFO: %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("reading a FIFO hung")
	}

	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("precious\n"), 0o644)
	other := filepath.Join(dir, "h.jsonl")
	if err := os.Link(victim, LockPath(other)); err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(other); err == nil || !strings.Contains(err.Error(), "hard links") {
		t.Fatalf("lock through a hard link: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("the linked file now holds %q", b)
	}
}

// A large file is handed to the disk in 8 MiB steps as it is written, each
// step the bytes since the last, and still ends up whole.
func TestWriteFileAtomic_WritesBehind(t *testing.T) {
	type span struct{ off, n int64 }
	var got []span
	defer func(old func(tempFile, int64, int64)) { writeback = old }(writeback)
	writeback = func(f tempFile, off, n int64) {
		got = append(got, span{off, n})
		startWriteback(f, off, n)
	}
	path := filepath.Join(t.TempDir(), "big")
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	const chunks = 20 * 16                                  // 20 MiB
	sum, err := writeFileAtomic(path, 0o644, func(w *aheadWriter) error {
		for range chunks {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	whole := bytes.Repeat(chunk, chunks)
	if sum.size != int64(len(whole)) || sum.digest != xxhash.Sum64(whole) {
		t.Fatalf("sum %+v, want %d bytes with digest %x", sum, len(whole), xxhash.Sum64(whole))
	}
	var next int64
	for _, s := range got {
		if s.off != next || s.n < writeBehindBytes {
			t.Fatalf("write-behind spans %v: not contiguous steps of at least %d bytes from 0", got, writeBehindBytes)
		}
		next = s.off + s.n
	}
	if len(got) != 2 {
		t.Errorf("write-behind spans %v for 20 MiB, want 2", got)
	}
	b, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(b, whole) {
		t.Fatalf("file of %d bytes, err %v: not what was written", len(b), err)
	}
}

// failingWriter fails every write after the first n bytes.
type failingWriter struct {
	n, written int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.written+len(p) > w.n {
		return 0, syscall.ENOSPC
	}
	w.written += len(p)
	return len(p), nil
}

// The writing goroutine writes and digests everything, in order, lines
// that fit the buffer's end or not; its first error stops the writer
// early, and is what Close returns.
func TestAheadWriter(t *testing.T) {
	var out bytes.Buffer
	a := newAheadWriter(&out)
	var want bytes.Buffer
	for i := range 100_000 {
		line := fmt.Appendf(nil, "%d %s", i, strings.Repeat("x", i%50))
		if i%10000 == 9999 {
			line = append(line, strings.Repeat("long", aheadBytes/3)...) // over a buffer
		}
		if i%2 == 0 {
			a.Write(append(line, '\n'))
		} else {
			a.writeLine(line)
		}
		want.Write(append(line, '\n'))
	}
	if err := a.Close(); err != nil || !bytes.Equal(out.Bytes(), want.Bytes()) {
		t.Fatalf("wrote %d bytes (err %v), want %d", out.Len(), err, want.Len())
	}
	if a.sum != (fileSum{int64(want.Len()), xxhash.Sum64(want.Bytes())}) {
		t.Fatalf("sum %+v, want %d bytes, digest %x", a.sum, want.Len(), xxhash.Sum64(want.Bytes()))
	}

	a = newAheadWriter(&failingWriter{n: aheadBytes})
	chunk := make([]byte, 64<<10)
	written := 0
	var err error
	for written < 64*aheadBytes {
		var n int
		if n, err = a.Write(chunk); err != nil {
			break
		}
		written += n
	}
	if !errors.Is(err, syscall.ENOSPC) || written > 4*aheadBytes {
		t.Fatalf("after %d bytes: %v; want ENOSPC within a few buffers", written, err)
	}
	if err := a.Close(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Close: %v, want ENOSPC", err)
	}
}
