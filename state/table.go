// Package state keeps a replica of an endpoint's table: records by key,
// last writer wins, with the JSONL snapshot file, the checkpoint and the
// lock that lockstep sync keeps on disk.
//
// A Table applies follow.Records under the protocol's rules and may be read
// by any number of goroutines while one goroutine applies changes. The
// files are written atomically, snapshot before checkpoint, so that the
// checkpoint never runs ahead of the snapshot and a crash at any instant
// loses nothing.
package state

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"iter"
	"slices"
	"sync"
	"unsafe"

	"github.com/lockstep/lockstep/follow"
)

// Op is what applying a record did.
type Op uint8

const (
	OpNone      Op = iota // stale or duplicate: nothing changed
	OpInsert              // a new live key
	OpUpdate              // a live key's record replaced
	OpDelete              // a live key removed by a tombstone
	OpTombstone           // a tombstone for a key not live here: reported, nothing to remove
)

func (o Op) String() string {
	return [...]string{"none", "insert", "update", "delete", "tombstone"}[o]
}

// Table is an in-memory replica. Records live in large append-only slabs,
// not one allocation each, so a table of millions of records gives the
// garbage collector almost nothing to scan. Tombstones are remembered
// (key and order value only) so that a stale update cannot resurrect a
// deleted key.
type Table struct {
	mu        sync.RWMutex
	keepBytes bool
	index     map[string]uint32 // key JSON text (pointing into the slabs) -> entries index
	entries   []entry
	free      []uint32
	slabs     [][]byte
	live      int
	liveBytes int64
	slabBytes int64
	gen       uint32
	resyncing bool
}

// entry locates a key's data in the slabs. With bytes kept, pos/n hold the
// record and a/b the order value's offset and length within it; without,
// pos/n hold the order value and a/b the record's hash.
type entry struct {
	slab, off, n uint32
	a, b         uint32
	meta         uint32 // resync generation that last saw the key <<1 | dead
}

func (e *entry) dead() bool      { return e.meta&1 != 0 }
func (e *entry) gen() uint32     { return e.meta >> 1 }
func (e *entry) setGen(g uint32) { e.meta = g<<1 | e.meta&1 }
func (e *entry) setDead(d bool) {
	e.meta &^= 1
	if d {
		e.meta |= 1
	}
}

const slabSize = 4 << 20

// NewTable returns an empty table that keeps each record's bytes.
func NewTable() *Table { return &Table{keepBytes: true, index: map[string]uint32{}} }

// NewIndex returns an empty table that keeps keys and order values but not
// record bytes: enough to decide what is a change (lockstep tail), at a
// fraction of the memory. Its Get and All return no records.
func NewIndex() *Table { return &Table{index: map[string]uint32{}} }

var hashSeed = maphash.MakeSeed()

// store copies b into the slabs, returning its slab, offset and the copy.
func (t *Table) store(b []byte) (uint32, uint32, []byte) {
	var s []byte
	if n := len(t.slabs); n > 0 {
		s = t.slabs[n-1]
	}
	if len(s)+len(b) > cap(s) || len(t.slabs) == 0 {
		s = make([]byte, 0, max(slabSize, len(b)))
		t.slabs = append(t.slabs, s)
	}
	off := len(s)
	s = append(s, b...)
	t.slabs[len(t.slabs)-1] = s
	t.slabBytes += int64(len(b))
	return uint32(len(t.slabs) - 1), uint32(off), s[off:len(s):len(s)]
}

func (t *Table) data(e *entry) []byte {
	return t.slabs[e.slab][e.off : e.off+e.n]
}

func (t *Table) order(e *entry) []byte {
	if t.keepBytes && !e.dead() {
		return t.data(e)[e.a : e.a+e.b]
	}
	return t.data(e)
}

func asString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// put stores r as e's data and returns the key as stored, which the index
// must then hold (so that no key points into garbage that compaction drops).
func (t *Table) put(e *entry, r *follow.Record) string {
	e.setDead(r.Deleted)
	if r.Deleted || !t.keepBytes {
		// Keep the key and the order value side by side, and a hash of
		// the record to tell a duplicate from a change.
		buf := make([]byte, 0, len(r.Key)+len(r.Order))
		buf = append(append(buf, r.Key...), r.Order...)
		slab, off, s := t.store(buf)
		e.slab, e.off, e.n = slab, off+uint32(len(r.Key)), uint32(len(r.Order))
		h := maphash.Bytes(hashSeed, r.Bytes)
		e.a, e.b = uint32(h>>32), uint32(h)
		return asString(s[:len(r.Key)])
	}
	slab, off, s := t.store(r.Bytes)
	e.slab, e.off, e.n = slab, off, uint32(len(r.Bytes))
	ko := offsetIn(r.Bytes, r.Key)
	e.a, e.b = uint32(offsetIn(r.Bytes, r.Order)), uint32(len(r.Order))
	return asString(s[ko : ko+len(r.Key)])
}

// offsetIn is the offset of sub, a subslice of whole, within it.
func offsetIn(whole, sub []byte) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(sub))) - uintptr(unsafe.Pointer(unsafe.SliceData(whole))))
}

func (t *Table) same(e *entry, r *follow.Record) bool {
	if t.keepBytes && !e.dead() {
		return !r.Deleted && bytes.Equal(t.data(e), r.Bytes)
	}
	h := maphash.Bytes(hashSeed, r.Bytes)
	return e.a == uint32(h>>32) && e.b == uint32(h) && e.dead() == r.Deleted
}

// Apply applies one record, last writer wins (PROTOCOL 5.2): a lower order
// value than the table holds for the key is stale, an equal one with the
// same bytes a duplicate; a tombstone removes the key. During a resync the
// first record seen for a key replaces it whatever its order, because the
// endpoint's current table is the truth a resync restores. r's slices are
// copied.
func (t *Table) Apply(r *follow.Record) Op {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.index[asString(r.Key)]
	if !ok {
		var e entry
		e.setGen(t.gen)
		key := t.put(&e, r)
		t.add(key, e)
		if r.Deleted {
			return OpTombstone
		}
		t.live++
		t.liveBytes += int64(len(r.Bytes))
		return OpInsert
	}
	e := &t.entries[i]
	authoritative := t.resyncing && e.gen() != t.gen
	e.setGen(t.gen)
	if !authoritative {
		c := follow.CompareOrder(r.Order, t.order(e))
		if c < 0 || (c == 0 && t.same(e, r)) {
			return OpNone
		}
	} else if t.same(e, r) {
		return OpNone
	}
	wasLive := !e.dead()
	if wasLive {
		t.live--
		t.liveBytes -= int64(t.recordLen(e))
	}
	t.index[t.put(e, r)] = i
	if !r.Deleted {
		t.live++
		t.liveBytes += int64(len(r.Bytes))
	}
	t.maybeCompact()
	switch {
	case r.Deleted && wasLive:
		return OpDelete
	case r.Deleted:
		return OpTombstone
	case wasLive:
		return OpUpdate
	}
	return OpInsert
}

func (t *Table) recordLen(e *entry) int {
	if t.keepBytes {
		return int(e.n)
	}
	return 0
}

func (t *Table) add(key string, e entry) {
	if n := len(t.free); n > 0 {
		i := t.free[n-1]
		t.free = t.free[:n-1]
		t.entries[i] = e
		t.index[key] = i
		return
	}
	t.entries = append(t.entries, e)
	t.index[key] = uint32(len(t.entries) - 1)
}

// maybeCompact copies live data to fresh slabs once garbage outweighs it,
// so that a long-running follower's memory tracks its table, not its
// history of changes.
func (t *Table) maybeCompact() {
	if t.slabBytes < 64<<20 || t.slabBytes < 3*(t.liveBytes+int64(len(t.entries))*24) {
		return
	}
	old := t.slabs
	t.slabs, t.slabBytes = nil, 0
	index := make(map[string]uint32, len(t.index))
	for key, i := range t.index {
		e := &t.entries[i]
		src := old[e.slab][e.off : e.off+e.n]
		var newKey string
		if t.keepBytes && !e.dead() {
			// put keeps every live key pointing into its own record.
			ko := offsetIn(src, unsafe.Slice(unsafe.StringData(key), len(key)))
			slab, off, s := t.store(src)
			e.slab, e.off, newKey = slab, off, asString(s[ko:ko+len(key)])
		} else {
			slab, off, s := t.store(append([]byte(key), src...))
			e.slab, e.off, newKey = slab, off+uint32(len(key)), asString(s[:len(key)])
		}
		index[newKey] = i
	}
	t.index = index
}

// Len is the number of live records.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.live
}

// Get returns a copy of the live record stored for key (its JSON text).
func (t *Table) Get(key []byte) ([]byte, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	i, ok := t.index[asString(key)]
	if !ok || t.entries[i].dead() {
		return nil, false
	}
	if !t.keepBytes {
		return nil, true
	}
	return bytes.Clone(t.data(&t.entries[i])), true
}

// All yields the live records in key order (numbers by value, then
// strings), with their keys. The slices are valid only during the loop
// body, which must not call Apply: All holds the read lock throughout.
func (t *Table) All() iter.Seq2[[]byte, []byte] {
	return func(yield func(key, rec []byte) bool) {
		t.mu.RLock()
		defer t.mu.RUnlock()
		for _, it := range t.sorted() {
			e := &t.entries[it.idx]
			var rec []byte
			if t.keepBytes {
				rec = t.data(e)
			}
			if !yield(unsafe.Slice(unsafe.StringData(it.key), len(it.key)), rec) {
				return
			}
		}
	}
}

type sortItem struct {
	num uint64 // the key's value when every numeric key is a plain integer
	key string
	idx uint32
}

// sorted returns the live keys in snapshot order. Keys that are plain
// non-negative integers, the common case, sort as machine words.
func (t *Table) sorted() []sortItem {
	items := make([]sortItem, 0, t.live)
	fast := true
	for key, i := range t.index {
		if t.entries[i].dead() {
			continue
		}
		it := sortItem{key: key, idx: i}
		if key[0] == '"' {
			it.num = 1<<64 - 1
		} else if n, ok := smallUint(key); ok {
			it.num = n
		} else {
			fast = false
		}
		items = append(items, it)
	}
	if fast {
		slices.SortFunc(items, func(a, b sortItem) int {
			if a.num != b.num {
				if a.num < b.num {
					return -1
				}
				return 1
			}
			return CompareKeys(a.key, b.key)
		})
	} else {
		slices.SortFunc(items, func(a, b sortItem) int { return CompareKeys(a.key, b.key) })
	}
	return items
}

// smallUint parses a plain integer below 2^64-1 (which marks strings).
func smallUint(s string) (uint64, bool) {
	if len(s) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// CompareKeys orders keys given as JSON text the way snapshots are sorted:
// numbers by exact value, then strings bytewise by their contents; keys
// equal in value but spelled differently (1 and 1.0) by their text.
func CompareKeys[T ~string | ~[]byte](a, b T) int {
	if c := follow.CompareOrder([]byte(a), []byte(b)); c != 0 {
		return c
	}
	return bytes.Compare([]byte(a), []byte(b))
}

// BeginResync starts a full resync (PROTOCOL 5.4): from now on every key
// the endpoint sends is marked, and EndResync removes the others.
func (t *Table) BeginResync() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gen++
	t.resyncing = true
}

// Resyncing reports whether a resync has begun and not ended.
func (t *Table) Resyncing() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.resyncing
}

// A MassDeleteError is a sweep refused by the mass-deletion guard.
type MassDeleteError struct {
	Remove, Of int
	Limit      float64 // the fraction allowed
}

func (e *MassDeleteError) Error() string {
	return fmt.Sprintf("resync would remove %d of %d records (%.0f%%), more than the %.0f%% allowed (an endpoint that answers empty by mistake must not wipe the replica; use --max-delete 100%% if this is right)",
		e.Remove, e.Of, 100*float64(e.Remove)/float64(e.Of), 100*e.Limit)
}

// ErrNotResyncing is returned by EndResync without a BeginResync.
var ErrNotResyncing = errors.New("state: no resync in progress")

// MassDeleteMinimum is the table size below which the guard does not apply.
const MassDeleteMinimum = 100

// EndResync removes every live key the resync did not send, and returns
// their keys (JSON text) with their last order values. If that would remove
// more than maxDelete (a fraction, 0 to 1) of a table holding at least
// MassDeleteMinimum records, nothing is removed, the resync stays open and
// a *MassDeleteError is returned.
func (t *Table) EndResync(maxDelete float64) (removed []Removed, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.resyncing {
		return nil, ErrNotResyncing
	}
	var doomed []string
	for key, i := range t.index {
		if e := &t.entries[i]; !e.dead() && e.gen() != t.gen {
			doomed = append(doomed, key)
		}
	}
	if t.live >= MassDeleteMinimum && float64(len(doomed)) > maxDelete*float64(t.live) {
		return nil, &MassDeleteError{Remove: len(doomed), Of: t.live, Limit: maxDelete}
	}
	slices.SortFunc(doomed, CompareKeys)
	for _, key := range doomed {
		i := t.index[key]
		e := &t.entries[i]
		removed = append(removed, Removed{Key: []byte(key), Order: bytes.Clone(t.order(e))})
		t.live--
		t.liveBytes -= int64(t.recordLen(e))
		delete(t.index, key)
		t.entries[i] = entry{}
		t.free = append(t.free, i)
	}
	t.resyncing = false
	return removed, nil
}

// Removed is a key swept away by a resync.
type Removed struct {
	Key, Order []byte
}
