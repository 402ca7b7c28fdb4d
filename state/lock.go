package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A Lock is an exclusive advisory lock on a file (a snapshot, a tail
// cursor), held through FILE.lock for the life of a process (the kernel
// drops it if the process dies).
type Lock struct{ f *os.File }

// ErrLocked is returned by TryLock when another process holds the lock.
var ErrLocked = errors.New("state: locked")

// LockPath is the lock file of a snapshot.
func LockPath(snapshot string) string { return snapshot + ".lock" }

// TryLock takes the lock on snapshot or fails at once. When another
// process holds it, the error wraps ErrLocked and names its pid. FILE.lock
// is opened without following a symbolic link and must be a regular file:
// as root, a link planted there would have the pid written through it. A
// missing folder is an error that names the folder.
func TryLock(snapshot string) (*Lock, error) { return lock(context.Background(), snapshot, false) }

// WaitLock takes the lock on snapshot, waiting for it until ctx is done.
func WaitLock(ctx context.Context, snapshot string) (*Lock, error) {
	return lock(ctx, snapshot, true)
}

func lock(ctx context.Context, snapshot string, wait bool) (*Lock, error) {
	path := LockPath(snapshot)
	f, err := openNoFollow(path, os.O_RDWR|os.O_CREATE, ModeShared)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	// The pid is written into the lock file: a hard link planted there
	// would have another file overwritten.
	if fi, err := f.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			f.Close()
			return nil, fmt.Errorf("lock: %s has %d hard links: lockstep does not write through links (another user may have planted one); remove it", path, st.Nlink)
		}
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !wait {
			holder := ""
			if b, err := os.ReadFile(path); err == nil {
				if pid := strings.TrimSpace(string(b)); pid != "" {
					holder = " (pid " + pid + ")"
				}
			}
			f.Close()
			return nil, fmt.Errorf("%w: another lockstep process%s holds %s", ErrLocked, holder, path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Only the pid: the lock file must never carry anything secret.
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// Unlock releases the lock. The file stays: removing it would let a
// waiting process lock a file that a third then recreates.
func (l *Lock) Unlock() error { return l.f.Close() }

// LockHolder returns the pid written in snapshot's lock file by the
// process that last took it, or 0 if there is none. For messages only: the
// process may have let go since.
func LockHolder(snapshot string) int {
	b, err := os.ReadFile(LockPath(snapshot))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
