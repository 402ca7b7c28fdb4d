// Package keyset indexes keys held elsewhere (in large byte slabs) by
// their hashes, for the follow and state packages. Its slots hold no
// pointers, so the garbage collector never scans them, and growing it
// never reads a key back from memory.
package keyset

import (
	"iter"
	"runtime"
	"sync/atomic"
)

// Index maps keys to values up to MaxValue (where the caller keeps each
// key) by open addressing over tags taken from each key's hash: the top 28
// bits of a 32-bit tag. It stores 8 bytes a slot; the tag says where a
// slot goes, and a tag match is confirmed by the caller comparing the key
// itself.
//
// A tag's home slot is its scrambled value scaled to the index's size, so
// that the slots keep their order when the index grows: growing it reads
// the old slots and writes the new ones in sequence, not at random. Any
// size will do, so the index grows by half, not double, and holds 0.53 to
// 0.8 entries a slot, not 0.375 to 0.75 (fewer, for a while, after it has
// grown toward a count it was told to expect).
//
// An Index must not be copied: its slots may be mapped outside the heap,
// and given back when it grows.
type Index struct {
	slots []uint64 // tag<<32 | value+1 (tag's low 4 bits cleared); 0 is empty
	mem   *mapping
	n     int
	// The values the index is told to expect (Expect): it grows toward
	// them in larger steps.
	expect int
	_      noCopy
}

// noCopy makes go vet report copies of an Index.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

const (
	// ValueBits is the width of a value: MaxValue is below 1<<ValueBits.
	ValueBits = 36
	minSlots  = 1 << 10
	tagMask   = 1<<32 - 1<<(ValueBits-32)
	// MaxValue is the largest value an Index holds.
	MaxValue = 1<<ValueBits - 2
)

func slot(tag uint32, v uint64) uint64 { return uint64(tag&tagMask)<<32 | (v + 1) }

func tagOf(s uint64) uint32 { return uint32(s>>32) & tagMask }

func valueOf(s uint64) uint64 { return s&(1<<ValueBits-1) - 1 }

// home is a tag's first slot. Multiplying by an odd constant spreads tags
// that differ only in their low bits (Fibonacci hashing); the product's
// top bits, scaled, pick the slot.
func (x *Index) home(tag uint32) uint32 {
	return uint32(uint64(scramble(tag)) * uint64(len(x.slots)) >> 32)
}

func scramble(tag uint32) uint32 { return (tag & tagMask) * 0x9e3779b9 }

// next is the slot after p, wrapping around.
func (x *Index) next(p uint32) uint32 {
	if p++; int(p) == len(x.slots) {
		return 0
	}
	return p
}

// full reports whether n entries need more slots than size.
func full(n, size int) bool { return 5*n > 4*size }

// Find returns the slot holding a value with this tag for which same
// reports true; ok is false if there is none, and then slot is where
// InsertAt may put the value, until the index next changes.
func (x *Index) Find(tag uint32, same func(v uint64) bool) (slot int, v uint64, ok bool) {
	if len(x.slots) == 0 {
		return -1, 0, false
	}
	tag &= tagMask
	for p := x.home(tag); ; p = x.next(p) {
		s := x.slots[p]
		if s == 0 {
			return int(p), 0, false
		}
		if tagOf(s) == tag && same(valueOf(s)) {
			return int(p), valueOf(s), true
		}
	}
}

// Replace changes the value in a slot Find returned.
func (x *Index) Replace(slot int, v uint64) {
	x.slots[slot] = x.slots[slot]&^(1<<ValueBits-1) | (v + 1)
}

// Rewrite replaces every value v with f(v).
func (x *Index) Rewrite(f func(v uint64) uint64) {
	for i, s := range x.slots {
		if s != 0 {
			x.slots[i] = slot(tagOf(s), f(valueOf(s)))
		}
	}
}

// All yields every value, in no particular order. The index must not
// change during the loop.
func (x *Index) All() iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		// The loop reads only the slots, not x: x must stay reachable
		// for its mapping to (see mapping).
		defer runtime.KeepAlive(x)
		for _, s := range x.slots {
			if s != 0 && !yield(valueOf(s)) {
				return
			}
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
		x.mem.free()
		x.slots, x.mem = nil, nil
	} else {
		clear(x.slots)
	}
	x.n = 0
}

// Insert adds value v under tag; a tag may be shared.
func (x *Index) Insert(tag uint32, v uint64) { x.InsertAt(-1, tag, v) }

// InsertAt is Insert into the slot a failed Find for tag returned, which
// saves probing again; -1 is no slot.
func (x *Index) InsertAt(at int, tag uint32, v uint64) {
	if v > MaxValue {
		panic("keyset: value out of range")
	}
	x.n++
	if full(x.n, len(x.slots)) {
		x.grow()
		at = -1
	}
	if at < 0 {
		x.place(slot(tag, v))
		return
	}
	x.slots[at] = slot(tag, v)
}

func (x *Index) place(s uint64) int {
	p := x.home(tagOf(s))
	for x.slots[p] != 0 {
		p = x.next(p)
	}
	x.slots[p] = s
	return int(p)
}

// InsertAll inserts n values, which next gives one at a time with their
// tags, into an empty index (into one that is not, it inserts them one by
// one). It sorts them by home slot in the index's own slots and places
// them in that order, so that building the index of a large table writes
// memory in sequence instead of at random, a cache miss per key, and takes
// no memory beyond the index but for the few values, if any, left to place
// one by one at the end.
func (x *Index) InsertAll(n int, next func() (tag uint32, v uint64)) {
	if n <= insertAllMin || x.n > 0 {
		for range n {
			x.Insert(next())
		}
		return
	}
	x.reserve(n)
	// Each value goes at the top end of the slots with its scrambled tag,
	// whose order its home slot follows, in the slot's tag bits.
	size := len(x.slots)
	at := size - n
	items := x.slots[at:]
	for i := range items {
		tag, v := next()
		if v > MaxValue {
			panic("keyset: value out of range")
		}
		items[i] = uint64(scramble(tag))<<32 | (v + 1)
	}
	// Sorted by their top 16 bits, the values lie close to the order of
	// their homes. In that order most go to their home or to the slot
	// after the last one placed, which lies below them until a run of
	// values crowds the top end: those left then are placed one by one,
	// as are values whose home lies before the run being filled.
	SortWords(items, 64, 48)
	run, end := 0, 0 // the slots in [run, end) are full
	for i := range items {
		loc := at + i
		w := x.slots[loc]
		x.slots[loc] = 0
		home := int(uint64(uint32(w>>32)&tagMask) * uint64(size) >> 32)
		if home < run {
			// The probe stops at loc at the latest: it is empty now.
			if p := x.place(unscrambled(w)); p == end {
				end++
			}
			continue
		}
		p := max(home, end)
		if p > loc {
			rest := append([]uint64{w}, x.slots[loc+1:]...)
			clear(x.slots[loc+1:])
			for _, w := range rest {
				x.place(unscrambled(w))
			}
			break
		}
		x.slots[p] = unscrambled(w)
		if p > end {
			run = p
		}
		end = p + 1
	}
	x.n = n
}

// unscrambled turns InsertAll's sort item back into a slot. The scrambled
// tag's low bits are zero, as those of tag&tagMask are: the value's top
// bits lie there.
func unscrambled(w uint64) uint64 {
	return uint64((uint32(w>>32)&tagMask)*unscrambler)<<32 | w&(1<<ValueBits-1)
}

// unscrambler undoes scramble: the multiplicative inverse of its constant
// modulo 2^32.
const unscrambler = 0x144cbc89

// insertAllMin is the most values InsertAll inserts one by one: the sort
// costs more than the cache misses it saves below it.
const insertAllMin = 1024

// reserve makes room for n entries in all, so that inserting them does not
// grow the index again.
func (x *Index) reserve(n int) {
	size := max(minSlots, len(x.slots))
	for full(n, size) {
		size += size / 2
	}
	if size > len(x.slots) {
		x.resize(size)
	}
}

// grow makes room: half again, or, toward the values expected, room for
// as many as eight times the values held.
func (x *Index) grow() {
	size := max(minSlots, len(x.slots)+len(x.slots)/2)
	// Past the count expected, half again holds more than it.
	if want := min(x.expect, 8*x.n); full(want, size) {
		size = (5*want + 3) / 4
	}
	x.resize(size)
}

// Expect tells the index that it will soon hold about n values (a load of
// known size). Growing by half each time moves the values twice over, all
// told, on the way to a large size, each move a cache miss. Toward n, each
// growth takes room for up to eight times the values held, which moves
// them about a fourteenth as often, and the last lands on room for n. A
// hint too high (a length that lies, or a load of many versions of each
// key) costs at most room for eight times the values held. Once the index
// holds n values, or after Expect(0), it grows by half again.
func (x *Index) Expect(n int) { x.expect = n }

func (x *Index) resize(size int) {
	old, mem := x.slots, x.mem
	x.slots, x.mem = makeSlots(size)
	// Mapped old slots are given back as they are read, so that the old
	// and new arrays are not both whole at the peak.
	const part = 1 << 18 // slots: 2 MiB, a huge page
	for lo := 0; lo < len(old); lo += part {
		hi := min(lo+part, len(old))
		for _, s := range old[lo:hi] {
			if s != 0 {
				x.place(s)
			}
		}
		mem.release(lo, hi)
	}
	mem.free()
}

// Delete empties a slot, moving later slots of the same probe run back so
// that every key stays reachable from its home slot.
func (x *Index) Delete(slot int) {
	i := uint32(slot)
	for j := x.next(i); x.slots[j] != 0; j = x.next(j) {
		home := x.home(tagOf(x.slots[j]))
		// Move j back to i unless its home lies cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = 0
	x.n--
}
