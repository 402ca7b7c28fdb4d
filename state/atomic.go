package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// writeFileAtomic replaces path with what fn writes, so that a reader (or
// a crash at any instant) sees the old file or the new one, never a mix:
// a temp file in the same folder (a rename across filesystems is a copy),
// fsync, rename, fsync the folder. On any failure the temp file is removed
// and path is untouched. A new file gets perm less the umask; an existing
// one keeps its mode less what perm does not grant (ModeShared, ModePrivate).
// A path that is a symbolic link or anything but a regular file is refused:
// the rename would replace a link another user planted, or one the user
// made on purpose (ResolveFile resolves those first). prepare, if not nil,
// runs once the new file is durable and before it replaces path, with the
// size and XXH64 digest of what fn wrote (which writeFileAtomic returns
// too); if it fails, path is untouched.
func writeFileAtomic(path string, perm fs.FileMode, fn func(w *aheadWriter) error, prepare func(fileSum) error) (sum fileSum, err error) {
	dir := filepath.Dir(path)
	chmod := false
	fi, err := os.Lstat(path)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return sum, notRegular(path, fi.Mode())
	case err == nil:
		perm, chmod = fi.Mode().Perm()&perm, true
	case !errors.Is(err, fs.ErrNotExist):
		return sum, err
	}
	f, err := createTemp(path, perm)
	if err != nil {
		return sum, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	aw := newAheadWriter(&writeBehind{f: f})
	err = fn(aw)
	// Whether fn failed or not, the writing goroutine must be done
	// before the file is closed.
	if cerr := aw.Close(); err == nil {
		err = cerr
	}
	sum = aw.sum
	if err != nil {
		return sum, err
	}
	// The umask does not apply to a chmod: an existing file's mode is kept
	// exactly (less what perm does not grant).
	if chmod {
		if err = f.Chmod(perm); err != nil {
			return sum, err
		}
	}
	if err = f.Sync(); err != nil {
		return sum, err
	}
	if err = f.Close(); err != nil {
		return sum, err
	}
	if prepare != nil {
		if err = prepare(sum); err != nil {
			return sum, err
		}
	}
	if err = rename(f.Name(), path); err != nil {
		return sum, err
	}
	// The rename is durable only once the folder is.
	if err = syncDir(dir); err != nil {
		return sum, fmt.Errorf("fsync %s: %w", dir, err)
	}
	return sum, nil
}

// writeBehind asks the kernel to start writing to disk each
// writeBehindBytes as soon as they are written, so that writing a large
// snapshot and flushing it to disk overlap, and the fsync at the end finds
// little left to do. Durability is still the fsync's: this only starts it
// early.
type writeBehind struct {
	f         tempFile
	off, last int64
}

const writeBehindBytes = 8 << 20

func (w *writeBehind) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.off-w.last >= writeBehindBytes {
		writeback(w.f, w.last, w.off-w.last)
		w.last = w.off
	}
	return n, err
}

// A fileSum is the size and XXH64 digest of a file written.
type fileSum struct {
	size   int64
	digest uint64
}

// aheadWriter buffers what is written to it and hands each full buffer to
// a goroutine of its own, which digests and writes it: the kernel's copy
// of one buffer into the page cache, and its digest, overlap the filling
// of the next, and a large snapshot is written in the time it takes to
// produce it.
type aheadWriter struct {
	buf    []byte
	todo   chan []byte // full buffers, to write
	free   chan []byte // written ones
	done   chan struct{}
	err    error // the first write error, set by the goroutine before failed
	failed atomic.Bool
	sum    fileSum // of what was written, once done
}

const aheadBytes = 1 << 20

func newAheadWriter(w io.Writer) *aheadWriter {
	a := &aheadWriter{
		buf:  make([]byte, 0, aheadBytes),
		todo: make(chan []byte, 1),
		free: make(chan []byte, 2), // room for both buffers, so that the goroutine never waits
		done: make(chan struct{}),
	}
	a.free <- make([]byte, 0, aheadBytes)
	go func() {
		defer close(a.done)
		h := xxhash.New()
		for b := range a.todo {
			if a.err == nil {
				h.Write(b)
				a.sum.size += int64(len(b))
				if _, err := w.Write(b); err != nil {
					a.err = err
					a.failed.Store(true)
				}
			}
			a.free <- b[:0]
		}
		a.sum.digest = h.Sum64()
	}()
	return a
}

// Write fails once a write has failed, so that a full disk stops the
// writing of a large file early.
func (a *aheadWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if a.failed.Load() {
			return n, a.err
		}
		k := copy(a.buf[len(a.buf):cap(a.buf)], p)
		a.buf, p, n = a.buf[:len(a.buf)+k], p[k:], n+k
		if len(a.buf) == cap(a.buf) {
			a.todo <- a.buf
			a.buf = <-a.free
		}
	}
	return n, nil
}

// writeLine writes p and a newline.
func (a *aheadWriter) writeLine(p []byte) error {
	if len(p) < cap(a.buf)-len(a.buf) {
		a.buf = append(append(a.buf, p...), '\n')
		return nil
	}
	if _, err := a.Write(p); err != nil {
		return err
	}
	_, err := a.Write([]byte{'\n'})
	return err
}

// Close writes what is left, waits for every write, and returns the first
// error.
func (a *aheadWriter) Close() error {
	if len(a.buf) > 0 {
		a.todo <- a.buf
	}
	close(a.todo)
	<-a.done
	return a.err
}

// tempFile is what writeFileAtomic needs of a file.
type tempFile interface {
	io.Writer
	Chmod(fs.FileMode) error
	Sync() error
	Close() error
	Name() string
}

// The file system operations writeFileAtomic performs, as variables so that
// tests can make each one fail in turn (a full disk fails any of them).
var (
	createTemp = func(path string, perm fs.FileMode) (tempFile, error) { return openTemp(path, perm) }
	writeback  = startWriteback
	rename     = os.Rename
	syncDir    = fsyncDir
)

func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
