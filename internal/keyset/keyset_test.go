package keyset

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

// The index against a map, through inserts and deletes with many shared
// tags.
func TestIndex_AgainstMap(t *testing.T) {
	var x Index
	want := map[uint64]uint32{} // value -> tag
	rng := rand.New(rand.NewPCG(1, 2))
	next := uint64(0)
	for range 30_000 {
		if len(want) > 0 && rng.IntN(3) == 0 {
			for i, tag := range want {
				slot, _, ok := x.Find(tag, func(j uint64) bool { return j == i })
				if !ok {
					t.Fatalf("entry %d (tag %x) not found", i, tag)
				}
				x.Delete(slot)
				delete(want, i)
				break
			}
			continue
		}
		tag := rng.Uint32() & 0x3fff
		if next%2 == 0 {
			x.Insert(tag, next)
		} else {
			// Where a failed Find stopped, as state.Table inserts.
			Prefetched(x.Prefetch(tag))
			slot, _, ok := x.Find(tag, func(uint64) bool { return false })
			if ok {
				t.Fatal("Find matched nothing, yet reported a match")
			}
			x.InsertAt(slot, tag, next)
		}
		want[next] = tag
		next++
	}
	if x.Len() != len(want) {
		t.Fatalf("Len %d, want %d", x.Len(), len(want))
	}
	for i, tag := range want {
		if _, _, ok := x.Find(tag, func(j uint64) bool { return j == i }); !ok {
			t.Fatalf("entry %d lost", i)
		}
	}
	// Replace moves every other value, up to the largest an Index holds.
	moved := map[uint64]uint32{}
	for i, tag := range want {
		v := i
		if i%2 == 0 {
			slot, _, _ := x.Find(tag, func(j uint64) bool { return j == i })
			v = MaxValue - i
			x.Replace(slot, v)
		}
		moved[v] = tag
	}
	for v := range x.All() {
		if _, ok := moved[v]; !ok {
			t.Fatalf("All yielded %d, which is not held", v)
		}
		delete(moved, v)
	}
	if len(moved) > 0 {
		t.Fatalf("All missed %d values", len(moved))
	}
}

func TestSet(t *testing.T) {
	seed := maphash.MakeSeed()
	h := func(b []byte) uint64 { return maphash.Bytes(seed, b) }
	for _, n := range []int{0, 1, smallSet, smallSet + 1, 5000} {
		var s Set
		for round := range 2 {
			for i := range n {
				k := []byte(fmt.Sprint(i))
				s.Put(k, h(k), uint64(i+round))
			}
			s.Put([]byte("0"), h([]byte("0")), 99) // replace, not add
			if n > 0 && s.Len() != n {
				t.Fatalf("n=%d: Len %d", n, s.Len())
			}
			for i := range n {
				k := []byte(fmt.Sprint(i))
				v, ok := s.Get(k, h(k))
				if want := uint64(i + round); !ok || (i > 0 && v != want) || (i == 0 && v != 99) {
					t.Fatalf("n=%d: Get(%s) = %d, %v", n, k, v, ok)
				}
			}
			if _, ok := s.Get([]byte("x"), h([]byte("x"))); ok {
				t.Fatalf("n=%d: found a key never put", n)
			}
			seen := 0
			s.Each(func([]byte, uint64) { seen++ })
			if seen != s.Len() {
				t.Fatalf("Keys gave %d of %d", seen, s.Len())
			}
			s.Reset()
			if s.Len() != 0 {
				t.Fatal("Reset left keys")
			}
			if _, ok := s.Get([]byte("1"), h([]byte("1"))); ok {
				t.Fatal("found a key after Reset")
			}
		}
	}
}

// each gives tags[i] and vals[i] in turn, as InsertAll asks.
func each(tags []uint32, vals []uint64) func() (uint32, uint64) {
	i := -1
	return func() (uint32, uint64) {
		i++
		return tags[i], vals[i]
	}
}

// InsertAll into an empty index, whose tags are random, shared by a dozen
// values each, or for a tenth of the values with homes at the top end (so
// that the values placed in turn run into the ones still waiting there,
// and wrap around).
func TestIndex_InsertAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name string
		tag  func() uint32
	}{
		{"random", rng.Uint32},
		{"shared", func() uint32 { return rng.Uint32() & 0xfff0 }},
		{"a tenth at the top", func() uint32 {
			if rng.IntN(10) > 0 {
				return rng.Uint32()
			}
			return (0xfff00000 | rng.Uint32()&0xffff0) * unscrambler
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{insertAllMin + 1, 5000, 50_000} {
				var x Index
				tags := make([]uint32, n)
				vals := make([]uint64, n)
				for i := range tags {
					tags[i], vals[i] = tc.tag(), uint64(i)<<20
				}
				vals[n-1] = MaxValue // the largest value fits
				x.InsertAll(n, each(tags, vals))
				if x.Len() != n {
					t.Fatalf("n=%d: Len %d", n, x.Len())
				}
				for i, tag := range tags {
					if _, _, ok := x.Find(tag, func(v uint64) bool { return v == vals[i] }); !ok {
						t.Fatalf("n=%d: value %d (tag %x) lost", n, vals[i], tag)
					}
				}
				if got := len(slices.Collect(x.All())); got != n {
					t.Fatalf("n=%d: All gave %d values", n, got)
				}
			}
		})
	}
}

// InsertAll, onto an index that already holds many entries, with many
// shared tags, leaves every entry findable.
func TestIndex_InsertAllOntoEntries(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 700, 5000, 40_000} {
		var x Index
		tags := make([]uint32, 0, 2*n)
		for i := range n {
			tags = append(tags, rng.Uint32())
			x.Insert(tags[i], uint64(i))
		}
		more := make([]uint32, n)
		for i := range more {
			more[i] = rng.Uint32() & 0xffff // many shared tags
		}
		vals := make([]uint64, n)
		for i := range vals {
			vals[i] = uint64(n + i)
		}
		x.InsertAll(len(more), each(more, vals))
		tags = append(tags, more...)
		if x.Len() != len(tags) {
			t.Fatalf("n=%d: Len %d, want %d", n, x.Len(), len(tags))
		}
		for i, tag := range tags {
			if _, _, ok := x.Find(tag, func(j uint64) bool { return j == uint64(i) }); !ok {
				t.Fatalf("n=%d: entry %d (tag %x) not found among %d slots", n, i, tag, len(x.slots))
			}
		}
	}
}

// An index large enough for mapped slots grows, empties and fills again
// with every value findable; its mapping is given back, not left behind.
func TestIndex_MappedSlots(t *testing.T) {
	var x Index
	for round := range 2 {
		n := mapMin + round*1000
		for i := range n {
			x.Insert(uint32(i)*2654435761, uint64(i))
		}
		if x.mem == nil {
			t.Fatalf("round %d: %d slots are on the heap, not mapped", round, len(x.slots))
		}
		for i := range n {
			if _, _, ok := x.Find(uint32(i)*2654435761, func(v uint64) bool { return v == uint64(i) }); !ok {
				t.Fatalf("round %d: value %d lost", round, i)
			}
		}
		x.Reset()
		if x.mem != nil || x.Len() != 0 {
			t.Fatalf("round %d: Reset kept the mapping or %d values", round, x.Len())
		}
	}
}

// All reads the slots of an index that nothing else uses while the loop
// runs: the collector must not unmap them under it.
func TestIndex_AllKeepsMappedSlots(t *testing.T) {
	var x Index
	n := 2 * mapMin
	for i := range n {
		x.Insert(uint32(i)*2654435761, uint64(i))
	}
	seen := 0
	for range x.All() {
		if seen == 0 {
			runtime.GC()
			runtime.GC()
			time.Sleep(20 * time.Millisecond) // for the cleanups to run
		}
		seen++
	}
	if seen != n {
		t.Fatalf("All gave %d values, want %d", seen, n)
	}
}

// Growing past several 2 MiB parts of mapped slots, each part of the old
// slots is given back only once all its values are placed.
func TestIndex_GrowReleasesReadSlots(t *testing.T) {
	var x Index
	const n = 700_000 // the last growth reads 672,597 old slots: three parts
	for i := range n {
		x.Insert(uint32(i)*2654435761, uint64(i))
	}
	for i := range n {
		if _, _, ok := x.Find(uint32(i)*2654435761, func(v uint64) bool { return v == uint64(i) }); !ok {
			t.Fatalf("value %d lost among %d slots", i, len(x.slots))
		}
	}
}

// A million keys: indexed at once, as a table loaded in key order is when
// a look-up first needs its index; and inserted one by one from empty, as
// a first load whose keys come in no order builds its index, growth
// included.
func BenchmarkIndex_Insert(b *testing.B) {
	const n = 1_000_000
	tags := make([]uint32, n)
	vals := make([]uint64, n)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range tags {
		tags[i], vals[i] = rng.Uint32(), uint64(i)
	}
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			var x Index
			x.InsertAll(n, each(tags, vals))
			x.Reset()
		}
	})
	b.Run("one by one", func(b *testing.B) {
		for b.Loop() {
			var x Index
			for i, tag := range tags {
				x.Insert(tag, vals[i])
			}
			x.Reset()
		}
	})
}

func TestSortWords(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 64, 65, 1000, 100_000} {
		for _, top := range []uint{1, 8, 9, 20, 64} {
			words := make([]uint64, n)
			for i := range words {
				words[i] = rnd.Uint64()
				if top < 64 {
					words[i] &= 1<<top - 1
				}
			}
			want := slices.Sorted(slices.Values(words))
			// Sorted from bit low up only: the same words, in the order
			// of their bits from low up.
			for _, low := range []uint{top / 2, top - 1} {
				part := slices.Clone(words)
				SortWords(part, top, low)
				if !slices.Equal(slices.Sorted(slices.Values(part)), want) ||
					!slices.IsSortedFunc(part, func(a, b uint64) int { return cmp.Compare(a>>low, b>>low) }) {
					t.Fatalf("%d words below bit %d, from bit %d up: not sorted", n, top, low)
				}
			}
			SortWords(words, top, 0)
			if !slices.Equal(words, want) {
				t.Fatalf("%d words below bit %d: not sorted", n, top)
			}
		}
	}
}

// An index told what to expect grows toward it in large steps and lands on
// room for it; told too much, it takes room for at most eight times what
// it holds; once it holds what it was told, or told nothing, it grows by
// half.
func TestIndex_Expect(t *testing.T) {
	grow := func(expect, n int) (sizes []int) {
		var x Index
		x.Expect(expect)
		for i := range n {
			x.Insert(uint32(i*2654435761), uint64(i))
			if len(sizes) == 0 || sizes[len(sizes)-1] != len(x.slots) {
				sizes = append(sizes, len(x.slots))
			}
		}
		for i := range n {
			if _, v, ok := x.Find(uint32(i*2654435761), func(v uint64) bool { return v == uint64(i) }); !ok || v != uint64(i) {
				t.Fatalf("expect %d: value %d lost", expect, i)
			}
		}
		return sizes
	}
	const n = 200_000
	told, untold := grow(n, n), grow(0, n)
	t.Logf("slots as %d values go in: told %v, untold %v", n, told, untold)
	if last := told[len(told)-1]; full(n, last) || last > (5*n+3)/4 || len(told) > 7 || len(untold) < 2*len(told) {
		t.Fatalf("sizes told %v, untold %v; want few steps ending at room for %d", told, untold, n)
	}
	for i := 1; i < len(untold); i++ {
		if untold[i] != untold[i-1]+untold[i-1]/2 {
			t.Fatalf("untold, sizes %v: not by half", untold)
		}
	}
	// Past what it was told, by half again.
	past := grow(n, 3*n)
	for i := len(told); i < len(past); i++ {
		if past[i] != past[i-1]+past[i-1]/2 {
			t.Fatalf("past the %d expected, sizes %v: not by half", n, past)
		}
	}
	if len(past) == len(told) {
		t.Fatalf("sizes %v: did not grow past the %d expected", past, n)
	}
	if lied := grow(1<<40, 1000); lied[len(lied)-1] > (5*8*1000+3)/4 {
		t.Fatalf("told 2^40, holding 1,000: sizes %v, over room for 8,000", lied)
	}
}
