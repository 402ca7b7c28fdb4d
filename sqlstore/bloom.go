package sqlstore

import "github.com/cespare/xxhash/v2"

// written is a Bloom filter of the keys a Store has written to a table
// that was empty when it opened: a key it has not seen is not in the
// table, so loading a new table costs no look-ups. A false positive only
// costs a look-up that finds nothing.
type written struct{ bits []uint64 }

// writtenBits: 2^27 bits (16 MiB) keep false positives near 1% up to
// 10 million keys, at a fixed cost whatever the table's size.
const writtenBits = 1 << 27

func (w *written) probes(key string, fn func(bit uint64) bool) bool {
	h := xxhash.Sum64String(key)
	h1, h2 := h&0xFFFFFFFF, h>>32|1
	for i := range uint64(4) {
		if !fn((h1 + i*h2) % writtenBits) {
			return false
		}
	}
	return true
}

func (w *written) add(key string) {
	if w.bits == nil {
		w.bits = make([]uint64, writtenBits/64)
	}
	w.probes(key, func(b uint64) bool { w.bits[b/64] |= 1 << (b % 64); return true })
}

func (w *written) mayHave(key string) bool {
	return w.bits != nil && w.probes(key, func(b uint64) bool { return w.bits[b/64]&(1<<(b%64)) != 0 })
}
