package state

import "golang.org/x/sys/unix"

// startWriteback starts the disk writing n bytes of f from off, without
// waiting (sync_file_range). It is a hint: an error changes nothing.
func startWriteback(f tempFile, off, n int64) {
	if fd, ok := f.(interface{ Fd() uintptr }); ok {
		unix.SyncFileRange(int(fd.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
	}
}
