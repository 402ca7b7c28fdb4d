package state

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// faultyFS fails the n-th file system operation of an atomic write with
// ENOSPC, as a full disk may fail any of them.
type faultyFS struct {
	n, ops int
}

func (f *faultyFS) step() error {
	f.ops++
	if f.ops == f.n {
		return &fs.PathError{Op: "write", Path: "injected", Err: syscall.ENOSPC}
	}
	return nil
}

type faultyFile struct {
	*os.File
	fs *faultyFS
}

func (f faultyFile) Write(p []byte) (int, error) {
	if err := f.fs.step(); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}
func (f faultyFile) Sync() error {
	if err := f.fs.step(); err != nil {
		return err
	}
	return f.File.Sync()
}
func (f faultyFile) Close() error {
	if err := f.fs.step(); err != nil {
		f.File.Close()
		return err
	}
	return f.File.Close()
}
func (f faultyFile) Chmod(m fs.FileMode) error {
	if err := f.fs.step(); err != nil {
		return err
	}
	return f.File.Chmod(m)
}

// install puts f in place and returns what undoes it.
func (f *faultyFS) install() (restore func()) {
	oldCreate, oldRename, oldSync := createTemp, rename, syncDir
	restore = func() { createTemp, rename, syncDir = oldCreate, oldRename, oldSync }
	createTemp = func(path string, perm fs.FileMode) (tempFile, error) {
		if err := f.step(); err != nil {
			return nil, err
		}
		file, err := openTemp(path, perm)
		return faultyFile{file, f}, err
	}
	rename = func(from, to string) error {
		if err := f.step(); err != nil {
			return err
		}
		return oldRename(from, to)
	}
	syncDir = func(dir string) error {
		if err := f.step(); err != nil {
			return err
		}
		return oldSync(dir)
	}
	return restore
}

// A full disk at every possible operation of a snapshot write: a clear
// error, the old file intact (or, once the rename is done, the new one
// whole), and no temp file left behind.
func TestWriteSnapshot_DiskFullAtEveryOperation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.jsonl")
	old := NewTable()
	old.Apply(record(t, live(1, 1)))
	if _, err := old.WriteSnapshot(path, 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	tb := NewTable()
	for i := range 30000 { // > the 1 MiB write buffer, so several writes
		tb.Apply(record(t, live(i, 2, `,"pad":"`+strings.Repeat("p", 40)+`"`)))
	}
	want := filepath.Join(t.TempDir(), "want.jsonl")
	if _, err := tb.WriteSnapshot(want, 0o644); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(want)
	for n := 1; ; n++ {
		f := &faultyFS{n: n}
		restore := f.install()
		_, err := tb.WriteSnapshot(path, 0o644)
		restore()
		if err == nil {
			if f.ops < 6 {
				t.Fatalf("only %d operations", f.ops)
			}
			t.Logf("a snapshot write is %d operations; each failed in turn", f.ops)
			break
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("op %d: err %v, want ENOSPC", n, err)
		}
		now, _ := os.ReadFile(path)
		// Only the fsync of the folder comes after the rename: then the new
		// file is in place, whole.
		if string(now) != string(before) && string(now) != string(after) {
			t.Fatalf("op %d: snapshot is neither the old nor the new one (%d bytes)", n, len(now))
		}
		os.WriteFile(path, before, 0o644)
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Fatalf("op %d: files left: %v", n, entries)
		}
	}
}
