// Package keyset indexes keys held elsewhere (in large byte slabs) by
// their hashes, for the follow and state packages. It holds no pointers, so
// the garbage collector never scans it, and growing it never reads a key
// back from memory.
package keyset

import "sync/atomic"

// Index maps keys to entry numbers by open addressing over 32-bit tags taken
// from each key's hash. It stores 8 bytes a slot; the tag says where a slot
// goes, and a tag match is confirmed by the caller comparing the key itself.
//
// A tag's home slot is its scrambled value scaled to the index's size, so
// that the slots keep their order when the index grows: growing it reads
// the old slots and writes the new ones in sequence, not at random. Any
// size will do, so the index grows by half, not double, and holds 0.53 to
// 0.8 entries a slot, not 0.375 to 0.75.
type Index struct {
	slots []uint64 // tag<<32 | entry+1; 0 is empty
	n     int
}

const minSlots = 1 << 10

// home is a tag's first slot. Multiplying by an odd constant spreads tags
// that differ only in their low bits (Fibonacci hashing); the product's
// top bits, scaled, pick the slot.
func (x *Index) home(tag uint32) uint32 {
	return uint32(uint64(tag*0x9e3779b9) * uint64(len(x.slots)) >> 32)
}

// next is the slot after p, wrapping around.
func (x *Index) next(p uint32) uint32 {
	if p++; int(p) == len(x.slots) {
		return 0
	}
	return p
}

// full reports whether n entries need more slots than size.
func full(n, size int) bool { return 5*n > 4*size }

// Find returns the slot holding an entry with this tag for which same
// reports true; ok is false if there is none, and then slot is where
// InsertAt may put the entry, until the index next changes.
func (x *Index) Find(tag uint32, same func(i uint32) bool) (slot int, i uint32, ok bool) {
	if len(x.slots) == 0 {
		return -1, 0, false
	}
	for p := x.home(tag); ; p = x.next(p) {
		s := x.slots[p]
		if s == 0 {
			return int(p), 0, false
		}
		if uint32(s>>32) == tag && same(uint32(s)-1) {
			return int(p), uint32(s) - 1, true
		}
	}
}

// Prefetch reads the home slot of a tag, so that the cache misses of
// looking up a batch of keys one by one are taken together first, in
// parallel. The caller keeps the sum of what it returns (Prefetched), so
// that the compiler cannot drop the reads.
func (x *Index) Prefetch(tag uint32) uint64 {
	if len(x.slots) == 0 {
		return 0
	}
	return x.slots[x.home(tag)]
}

// Prefetched takes the sum of Prefetch's results.
func Prefetched(sum uint64) { prefetched.Store(sum) }

// prefetched is atomic because tables on many goroutines prefetch.
var prefetched atomic.Uint64

// Len is the number of entries.
func (x *Index) Len() int { return x.n }

// Reset empties the index, giving back its memory if it had grown large.
func (x *Index) Reset() {
	if len(x.slots) > minSlots {
		x.slots = nil
	} else {
		clear(x.slots)
	}
	x.n = 0
}

// Insert adds entry i under tag; a tag may be shared.
func (x *Index) Insert(tag uint32, i uint32) { x.InsertAt(-1, tag, i) }

// InsertAt is Insert into the slot a failed Find for tag returned, which
// saves probing again; -1 is no slot.
func (x *Index) InsertAt(slot int, tag uint32, i uint32) {
	x.n++
	if full(x.n, len(x.slots)) {
		x.grow()
		slot = -1
	}
	if slot < 0 {
		x.place(tag, i)
		return
	}
	x.slots[slot] = uint64(tag)<<32 | uint64(i+1)
}

func (x *Index) place(tag uint32, i uint32) {
	p := x.home(tag)
	for x.slots[p] != 0 {
		p = x.next(p)
	}
	x.slots[p] = uint64(tag)<<32 | uint64(i+1)
}

// InsertAll inserts entries first, first+1, … under tags[0], tags[1], ….
// It places them in the order of their home slots, so that building the
// index of a large table writes memory in sequence instead of at random,
// which costs a cache miss per key.
func (x *Index) InsertAll(tags []uint32, first uint32) {
	x.Reserve(x.n + len(tags))
	bits := 0
	for 1<<bits < len(x.slots) {
		bits++
	}
	// Sort by home slot: an LSD radix sort in 11-bit digits.
	keys := make([]uint64, len(tags))
	for i, tag := range tags {
		keys[i] = uint64(x.home(tag))<<32 | uint64(i)
	}
	tmp := make([]uint64, len(keys))
	for shift := 32; shift < 32+bits; shift += 11 {
		var count [1 << 11]int
		for _, k := range keys {
			count[k>>shift&(1<<11-1)]++
		}
		sum := 0
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for _, k := range keys {
			d := k >> shift & (1<<11 - 1)
			tmp[count[d]] = k
			count[d]++
		}
		keys, tmp = tmp, keys
	}
	for _, k := range keys {
		i := uint32(k)
		x.place(tags[i], first+i)
	}
	x.n += len(tags)
}

// Reserve makes room for n entries in all, so that inserting them does not
// grow the index again.
func (x *Index) Reserve(n int) {
	size := max(minSlots, len(x.slots))
	for full(n, size) {
		size += size / 2
	}
	if size > len(x.slots) {
		x.resize(size)
	}
}

func (x *Index) grow() { x.resize(max(minSlots, len(x.slots)+len(x.slots)/2)) }

func (x *Index) resize(size int) {
	old := x.slots
	x.slots = make([]uint64, size)
	for _, s := range old {
		if s != 0 {
			x.place(uint32(s>>32), uint32(s)-1)
		}
	}
}

// Delete empties a slot, moving later slots of the same probe run back so
// that every key stays reachable from its home slot.
func (x *Index) Delete(slot int) {
	i := uint32(slot)
	for j := x.next(i); x.slots[j] != 0; j = x.next(j) {
		home := x.home(uint32(x.slots[j] >> 32))
		// Move j back to i unless its home lies cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = 0
	x.n--
}
