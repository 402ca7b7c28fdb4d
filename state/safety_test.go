package state

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A file another user could plant where lockstep writes: the lock, the
// checkpoint, the snapshot. Each is refused, and what it points to is left
// alone.
func TestPlantedFilesRefused(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, at, victim string)
		want  string
	}{
		{"Symlink", func(t *testing.T, at, victim string) { must(t, os.Symlink(victim, at)) }, "symbolic link"},
		{"DanglingSymlink", func(t *testing.T, at, victim string) { must(t, os.Symlink(victim+".new", at)) }, "symbolic link"},
		{"FIFO", func(t *testing.T, at, victim string) { must(t, unix.Mkfifo(at, 0o666)) }, "not a regular file"},
	}
	writers := []struct {
		name  string
		path  func(snapshot string) string
		write func(snapshot string) error
	}{
		{"Lock", LockPath, func(s string) error {
			l, err := TryLock(s)
			if err == nil {
				l.Unlock()
			}
			return err
		}},
		{"Checkpoint", CheckpointPath, func(s string) error {
			return WriteCheckpoint(CheckpointPath(s), ModeShared, &Checkpoint{Endpoint: "http://h/"})
		}},
		{"Snapshot", func(s string) string { return s }, func(s string) error {
			_, err := NewTable().WriteSnapshot(s, ModeShared)
			return err
		}},
	}
	for _, w := range writers {
		for _, tt := range tests {
			t.Run(w.name+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				snapshot, victim := filepath.Join(dir, "s.jsonl"), filepath.Join(dir, "victim")
				must(t, os.WriteFile(victim, []byte("precious\n"), 0o644))
				planted := w.path(snapshot)
				tt.plant(t, planted, victim)
				err := w.write(snapshot)
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), planted) {
					t.Fatalf("err %v, want one naming %s and saying %q", err, planted, tt.want)
				}
				if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
					t.Fatalf("victim now %q", b)
				}
				if _, err := os.Lstat(victim + ".new"); err == nil {
					t.Fatal("dangling link's target created")
				}
				if fi, err := os.Lstat(planted); err != nil || fi.Mode().IsRegular() {
					t.Fatalf("planted file replaced: %v %v", fi, err)
				}
			})
		}
	}
}

// --private makes an existing file 0600; otherwise an existing file keeps
// its mode.
func TestWrite_PrivateTightensExisting(t *testing.T) {
	dir := t.TempDir()
	tb := NewTable()
	for _, tt := range []struct {
		perm, was, want fs.FileMode
	}{
		{ModePrivate, 0o644, 0o600},
		{ModePrivate, 0o640, 0o600},
		{ModeShared, 0o640, 0o640},
		{ModeShared, 0o664, 0o664},
	} {
		path := filepath.Join(dir, "s.jsonl")
		must(t, os.WriteFile(path, nil, 0o600))
		must(t, os.Chmod(path, tt.was))
		_, err := tb.WriteSnapshot(path, tt.perm)
		must(t, err)
		if st, _ := os.Stat(path); st.Mode().Perm() != tt.want {
			t.Errorf("perm %v on a %v file: now %v, want %v", tt.perm, tt.was, st.Mode().Perm(), tt.want)
		}
	}
}

// Temp files that a crash left behind go once the lock is held; nothing
// else does.
func TestLock_RemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	snapshot := filepath.Join(dir, "s.jsonl")
	ours := []string{".s.jsonl.tmp-123456789", ".s.jsonl.tmp-0123456789abcdef", ".s.jsonl.checkpoint.tmp-42"}
	notOurs := []string{".s.jsonl.tmp-", ".s.jsonl.tmp-12.bak", ".s.jsonl.tmp-xyz", ".t.jsonl.tmp-1", ".s.jsonl.x.tmp-1", "s.jsonl.tmp-1"}
	for _, name := range append(append([]string{}, ours...), notOurs...) {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644))
	}
	must(t, os.Mkdir(filepath.Join(dir, ".s.jsonl.tmp-99"), 0o755))
	must(t, os.Symlink(filepath.Join(dir, "s.jsonl.tmp-1"), filepath.Join(dir, ".s.jsonl.tmp-98")))
	l, err := TryLock(snapshot)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	removed, err := l.RemoveStaleTemps(snapshot, CheckpointPath(snapshot))
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != len(ours) {
		t.Errorf("removed %v, want %v", removed, ours)
	}
	for _, name := range ours {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s left", name)
		}
	}
	for _, name := range append(notOurs, ".s.jsonl.tmp-99", ".s.jsonl.tmp-98") {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s removed", name)
		}
	}
}

func TestResolveFile(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	realDir := filepath.Join(dir, "real")
	must(t, os.Mkdir(realDir, 0o755))
	must(t, os.WriteFile(filepath.Join(realDir, "s.jsonl"), nil, 0o644))
	must(t, os.Symlink(filepath.Join(realDir, "s.jsonl"), filepath.Join(dir, "link")))
	must(t, os.Symlink("real/new.jsonl", filepath.Join(dir, "dangling")))
	must(t, os.Symlink("dangling", filepath.Join(dir, "chain")))
	must(t, os.Symlink("real", filepath.Join(dir, "dirlink")))
	must(t, os.Symlink("loop", filepath.Join(dir, "loop")))
	for _, tt := range []struct{ in, want string }{
		{"real/s.jsonl", "real/s.jsonl"},
		{"real/absent.jsonl", "real/absent.jsonl"},
		{"link", "real/s.jsonl"},
		{"dangling", "real/new.jsonl"},
		{"chain", "real/new.jsonl"},
		{"dirlink/s.jsonl", "real/s.jsonl"},
		{"dirlink/absent.jsonl", "real/absent.jsonl"},
	} {
		got, err := ResolveFile(filepath.Join(dir, tt.in))
		if want := filepath.Join(dir, tt.want); err != nil || got != want {
			t.Errorf("ResolveFile(%s) = %s, %v; want %s", tt.in, got, err, want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"missing/s.jsonl", "folder " + filepath.Join(dir, "missing") + ":"},
		{"real", "is a folder"},
		{"real/", "is a folder"},
		{"dirlink", "is a folder"},
		{"loop", "too many"},
	} {
		_, err := ResolveFile(filepath.Join(dir, tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ResolveFile(%s): err %v, want %q", tt.in, err, tt.want)
		}
	}
	if _, err := ResolveFile(filepath.Join(dir, "missing/s.jsonl")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing folder: %v is not fs.ErrNotExist", err)
	}
}

// A missing folder is named as such, not as a missing lock file.
func TestLock_MissingFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	_, err := TryLock(filepath.Join(dir, "s.jsonl"))
	if err == nil || !strings.Contains(err.Error(), "folder "+dir+":") || strings.Contains(err.Error(), ".lock") || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
