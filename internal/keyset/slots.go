package keyset

import (
	"runtime"
	"syscall"
	"unsafe"
)

// Large slot arrays are mapped outside the Go heap. Growing an index makes
// its old slots garbage, and the garbage collector, paced by the heap's
// size, often has not taken them back by the time the table peaks: at a
// million keys that was 8 MB of a 54 MB heap. Mapped, the old slots are
// given back the moment the new ones are filled.
const mapMin = 1 << 16 // slots; a smaller array is cheaper on the heap

// mapping is slots mapped outside the heap, unmapped by free or, failing
// that, once the index that holds it is unreachable. The slots themselves
// do not keep it reachable: a loop that holds only them (a range over
// x.slots that reads nothing else of x) must keep its Index alive
// (runtime.KeepAlive), or the slots can be unmapped under it.
type mapping struct {
	b       []byte
	cleanup runtime.Cleanup
}

// makeSlots returns n zeroed slots and their mapping, nil if they are on
// the heap.
func makeSlots(n int) ([]uint64, *mapping) {
	if n < mapMin {
		return make([]uint64, n), nil
	}
	b, err := syscall.Mmap(-1, 0, n*8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]uint64, n), nil
	}
	hugePages(b)
	m := &mapping{b: b}
	m.cleanup = runtime.AddCleanup(m, func(b []byte) { syscall.Munmap(b) }, b)
	return unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), n), m
}

// release gives back the pages of slots lo to hi, which read as zero
// afterwards.
func (m *mapping) release(lo, hi int) {
	if m != nil {
		releasePages(m.b[lo*8 : hi*8])
	}
}

func (m *mapping) free() {
	if m != nil {
		m.cleanup.Stop()
		syscall.Munmap(m.b)
	}
}
