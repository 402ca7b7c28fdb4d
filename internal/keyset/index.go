// Package keyset indexes keys held elsewhere (in large byte slabs) by
// their hashes, for the follow and state packages. It holds no pointers, so
// the garbage collector never scans it, and growing it never reads a key
// back from memory.
package keyset

import "iter"

// Index maps keys to entry numbers by open addressing over 32-bit tags taken
// from each key's hash. It stores 8 bytes a slot; the tag says where a slot
// goes, and a tag match is confirmed by the caller comparing the key itself.
//
// A tag's home slot is taken from the top bits of a scrambled tag, so that
// the slots keep their order when the index doubles: growing it reads the
// old slots and writes the new ones in sequence, not at random.
type Index struct {
	slots []uint64 // tag<<32 | entry+1; 0 is empty
	shift uint8    // 32 - log2(len(slots))
	n     int
}

const minSlots = 1 << 10

func (x *Index) mask() uint32 { return uint32(len(x.slots) - 1) }

// home is a tag's first slot. Multiplying by an odd constant spreads tags
// that differ only in their low bits (Fibonacci hashing).
func (x *Index) home(tag uint32) uint32 { return tag * 0x9e3779b9 >> x.shift }

// Find returns the slot holding an entry with this tag for which same
// reports true; ok is false if there is none, and then slot is where
// InsertAt may put the entry, until the index next changes.
func (x *Index) Find(tag uint32, same func(i uint32) bool) (slot int, i uint32, ok bool) {
	if len(x.slots) == 0 {
		return -1, 0, false
	}
	m := x.mask()
	for p := x.home(tag); ; p = (p + 1) & m {
		s := x.slots[p]
		if s == 0 {
			return int(p), 0, false
		}
		if uint32(s>>32) == tag && same(uint32(s)-1) {
			return int(p), uint32(s) - 1, true
		}
	}
}

// Prefetch reads the home slots of these tags, so that the cache misses of
// looking them up one by one later are taken together now, in parallel.
func (x *Index) Prefetch(tags iter.Seq[uint32]) {
	if len(x.slots) == 0 {
		return
	}
	var sum uint64
	for tag := range tags {
		sum += x.slots[x.home(tag)]
	}
	prefetched = sum
}

// prefetched keeps the compiler from dropping Prefetch's reads.
var prefetched uint64

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
	if 4*x.n > 3*len(x.slots) {
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
	m := x.mask()
	p := x.home(tag)
	for x.slots[p] != 0 {
		p = (p + 1) & m
	}
	x.slots[p] = uint64(tag)<<32 | uint64(i+1)
}

// InsertAll inserts entries first, first+1, … under tags[0], tags[1], ….
// It places them in the order of their home slots, so that building the
// index of a large table writes memory in sequence instead of at random,
// which costs a cache miss per key.
func (x *Index) InsertAll(tags []uint32, first uint32) {
	x.Reserve(x.n + len(tags))
	bits := 32 - int(x.shift)
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
	for 3*size < 4*n {
		size *= 2
	}
	if size > len(x.slots) {
		x.resize(size)
	}
}

func (x *Index) grow() { x.resize(max(minSlots, 2*len(x.slots))) }

func (x *Index) resize(size int) {
	old := x.slots
	x.slots = make([]uint64, size)
	x.shift = 32
	for ; size > 1; size >>= 1 {
		x.shift--
	}
	for _, s := range old {
		if s != 0 {
			x.place(uint32(s>>32), uint32(s)-1)
		}
	}
}

// Delete empties a slot, moving later slots of the same probe run back so
// that every key stays reachable from its home slot.
func (x *Index) Delete(slot int) {
	m := x.mask()
	i := uint32(slot)
	for j := (i + 1) & m; x.slots[j] != 0; j = (j + 1) & m {
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
