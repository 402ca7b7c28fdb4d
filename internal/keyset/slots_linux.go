package keyset

import "syscall"

// hugePages asks for the slots to be backed by 2 MB pages: a look-up in a
// large index is a random read, and with 4 KB pages most of them also miss
// the TLB; growing the index also faults in 512 times fewer pages.
func hugePages(b []byte) { syscall.Madvise(b, syscall.MADV_HUGEPAGE) }

// releasePages gives b's pages back to the kernel at once.
func releasePages(b []byte) { syscall.Madvise(b, syscall.MADV_DONTNEED) }
