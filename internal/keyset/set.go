package keyset

import "bytes"

// Set is a set of keys, each with a 64-bit value, whose keys live in one
// growing byte slab: a million keys cost a few allocations, not a million.
// A set of a few keys, the usual case, is searched without an index, so
// that emptying it costs next to nothing. Like an Index, a Set must not
// be copied.
type Set struct {
	index   Index // built once the set outgrows smallSet
	slab    []byte
	entries []setEntry
}

type setEntry struct {
	off, n, tag uint32
	val         uint64
}

const smallSet = 8

func (s *Set) key(i uint32) []byte {
	e := &s.entries[i]
	return s.slab[e.off : e.off+e.n]
}

func (s *Set) find(key []byte, tag uint32) (uint32, bool) {
	if len(s.entries) <= smallSet {
		for i := range s.entries {
			if s.entries[i].tag == tag && bytes.Equal(s.key(uint32(i)), key) {
				return uint32(i), true
			}
		}
		return 0, false
	}
	_, i, ok := s.index.Find(tag, func(i uint64) bool { return bytes.Equal(s.key(uint32(i)), key) })
	return uint32(i), ok
}

// Get returns the value stored for key, whose hash is h.
func (s *Set) Get(key []byte, h uint64) (uint64, bool) {
	i, ok := s.find(key, uint32(h))
	if !ok {
		return 0, false
	}
	return s.entries[i].val, true
}

// Put stores val for key, whose hash is h.
func (s *Set) Put(key []byte, h uint64, val uint64) {
	tag := uint32(h)
	if i, ok := s.find(key, tag); ok {
		s.entries[i].val = val
		return
	}
	s.entries = append(s.entries, setEntry{off: uint32(len(s.slab)), n: uint32(len(key)), tag: tag, val: val})
	s.slab = append(s.slab, key...)
	switch n := len(s.entries); {
	case n == smallSet+1:
		for i := range s.entries {
			s.index.Insert(s.entries[i].tag, uint64(i))
		}
	case n > smallSet+1:
		s.index.Insert(tag, uint64(n-1))
	}
}

// Len is the number of keys.
func (s *Set) Len() int { return len(s.entries) }

// Each calls fn with each key and its value; the slice is valid only
// during the call.
func (s *Set) Each(fn func(key []byte, val uint64)) {
	for i := range s.entries {
		fn(s.key(uint32(i)), s.entries[i].val)
	}
}

// Reset empties the set, giving back its memory if it had grown large, as
// after a bulk update that gave a million records one order value.
func (s *Set) Reset() {
	if len(s.entries) > smallSet {
		s.index.Reset()
	}
	if cap(s.entries) > 1024 {
		s.entries, s.slab = nil, nil
		return
	}
	s.entries, s.slab = s.entries[:0], s.slab[:0]
}
