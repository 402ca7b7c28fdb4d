package state

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// writeFileAtomic replaces path with what fn writes, so that a reader (or
// a crash at any instant) sees the old file or the new one, never a mix:
// a temp file in the same folder (a rename across filesystems is a copy),
// fsync, rename, fsync the folder. On any failure the temp file is removed
// and path is untouched. The file keeps path's permissions, or gets perm.
func writeFileAtomic(path string, perm fs.FileMode, fn func(w io.Writer) error) (err error) {
	if st, err := os.Stat(path); err == nil {
		perm = st.Mode().Perm()
	}
	dir := filepath.Dir(path)
	f, err := createTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = fn(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	// CreateTemp makes 0600 files, which other readers cannot open.
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = rename(f.Name(), path); err != nil {
		return err
	}
	// The rename is durable only once the folder is.
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
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
	createTemp = func(dir, pattern string) (tempFile, error) { return os.CreateTemp(dir, pattern) }
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
