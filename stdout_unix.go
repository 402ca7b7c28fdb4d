package main

import (
	"context"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// watchStdout cancels ctx with errStdoutGone as soon as the reader of a
// stdout pipe goes away, so that a follower blocked on a quiet endpoint
// exits at once rather than at its next write (PROTOCOL 6.5).
func watchStdout(ctx context.Context, stdout io.Writer, cancel context.CancelCauseFunc) {
	f, ok := stdout.(*os.File)
	if !ok {
		return
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	fd := int(f.Fd())
	go func() {
		for ctx.Err() == nil {
			fds := []unix.PollFd{{Fd: int32(fd), Events: 0}}
			n, err := unix.Poll(fds, 500)
			if err != nil && err != unix.EINTR {
				return
			}
			if n > 0 && fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
				cancel(errStdoutGone)
				return
			}
		}
	}()
}
