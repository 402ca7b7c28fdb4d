package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Modes for the files lockstep writes, the perm of WriteSnapshot and
// WriteCheckpoint. A new file gets perm less the umask, as with any Unix
// tool; an existing file keeps its mode, less any permission perm does not
// grant.
const (
	// ModeShared: new files 0666 less the umask (0644 under the usual
	// 022); existing files keep their mode.
	ModeShared fs.FileMode = 0o666
	// ModePrivate (--private): new files 0600, and existing ones tightened
	// to 0600 at the next write.
	ModePrivate fs.FileMode = 0o600
)

// ResolveFile returns the path at which to write and lock the file named
// by path: every symbolic link in it resolved, once, including a final one
// whose target does not exist yet, so that a symlinked snapshot is written
// where it points (as editors do) and two names of one file take one lock.
// A folder that does not exist is an error naming the folder (it matches
// fs.ErrNotExist); so is a path that names a folder or anything else that
// is not a regular file.
func ResolveFile(path string) (string, error) {
	// 40: Linux's own limit on links followed in one lookup.
	for range 40 {
		resolved, err := filepath.EvalSymlinks(path)
		if err == nil {
			fi, err := os.Stat(resolved)
			if err != nil {
				return "", err
			}
			if !fi.Mode().IsRegular() {
				return "", notRegular(path, fi.Mode())
			}
			return resolved, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		// The file does not exist yet, or a link points to one that does
		// not: follow the link by hand, or resolve the folder.
		fi, lerr := os.Lstat(path)
		switch {
		case lerr == nil && fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return "", err
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(path), target)
			}
			path = target
		case errors.Is(lerr, fs.ErrNotExist):
			dir, err := filepath.EvalSymlinks(filepath.Dir(path))
			if err != nil {
				return "", missingFolder(err, filepath.Dir(path))
			}
			return filepath.Join(dir, filepath.Base(path)), nil
		case lerr != nil:
			return "", lerr
		default:
			// It exists after all: it appeared between the two looks.
		}
	}
	return "", fmt.Errorf("%s: too many symbolic links", path)
}

// missingFolder turns err, from creating a file in dir, into an error that
// names the folder when it is the folder that is missing: "open
// s.jsonl.lock: no such file or directory" sends a reader looking for the
// wrong thing.
func missingFolder(err error, dir string) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if _, serr := os.Stat(dir); !errors.Is(serr, fs.ErrNotExist) {
		return err
	}
	return &fs.PathError{Op: "folder", Path: dir, Err: unix.ENOENT}
}

// notRegular is the error for a file lockstep will not write: a symbolic
// link (planted by another user, perhaps, to make lockstep overwrite its
// target), a folder, a pipe or a device.
// readFile reads the regular file at path, refusing a link or anything
// else planted there (a FIFO would hang the read).
func readFile(path string) ([]byte, error) {
	f, err := openNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func notRegular(path string, m fs.FileMode) error {
	switch {
	case m&fs.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link: lockstep does not write through links (another user may have planted it); remove it", path)
	case m.IsDir():
		return fmt.Errorf("%s is a folder, not a file", path)
	}
	return fmt.Errorf("%s is not a regular file (mode %v): lockstep writes only regular files", path, m)
}

// openNoFollow opens path with flag and O_NOFOLLOW, and refuses anything
// but a regular file. A new file gets perm less the umask.
func openNoFollow(path string, flag int, perm fs.FileMode) (*os.File, error) {
	// O_NONBLOCK: a FIFO planted there must not hang the open; it is then
	// refused as not a regular file.
	f, err := os.OpenFile(path, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK, perm)
	if errors.Is(err, unix.ELOOP) {
		return nil, notRegular(path, fs.ModeSymlink)
	}
	if err != nil {
		return nil, missingFolder(err, filepath.Dir(path))
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = notRegular(path, fi.Mode())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// tempPrefix is how the temp files of a write of path begin:
// ".FILE.tmp-", followed by hex digits.
func tempPrefix(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
}

// openTemp creates a temp file beside path. O_EXCL and O_NOFOLLOW: nothing
// planted under the name can be opened instead. Its mode is perm less the
// umask, applied by the kernel.
func openTemp(path string, perm fs.FileMode) (*os.File, error) {
	var err error
	for range 100 {
		var f *os.File
		f, err = openNoFollow(fmt.Sprintf("%s%016x", tempPrefix(path), rand.Uint64()), os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, err
}

// isTemp reports whether file is a temp file of a write of path: made by
// this lockstep (16 hex digits) or an earlier one (os.CreateTemp's decimal
// digits).
func isTemp(file, path string) bool {
	suffix, ok := strings.CutPrefix(file, tempPrefix(path))
	return ok && suffix != "" && strings.Trim(suffix, "0123456789abcdef") == ""
}

// RemoveStaleTemps removes the temp files that writes of paths left behind
// when their process died: regular files named as lockstep names them
// (".FILE.tmp-" and hex digits), nothing else. It is a method of Lock
// because only the holder of the lock that guards paths knows that no
// write is under way. It returns the files removed.
func (l *Lock) RemoveStaleTemps(paths ...string) ([]string, error) {
	var removed []string
	for _, path := range paths {
		dir := filepath.Dir(path)
		entries, err := os.ReadDir(dir)
		if err != nil {
			return removed, err
		}
		for _, e := range entries {
			name := filepath.Join(dir, e.Name())
			if !e.Type().IsRegular() || !isTemp(name, path) {
				continue
			}
			if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, err
			}
			removed = append(removed, name)
		}
	}
	return removed, nil
}
