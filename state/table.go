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
	"iter"
	"slices"
	"sync"
	"unsafe"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/internal/keyset"
)

// Op is what applying a record did.
type Op uint8

const (
	OpNone      Op = iota // stale or duplicate: nothing changed
	OpInsert              // a new live key
	OpUpdate              // a live key's record replaced
	OpDelete              // a live key removed by a tombstone
	OpTombstone           // a tombstone for a key not live here: reported, nothing to remove
	// OpSeen: nothing changed, but a resync saw the key for the first
	// time: evidence that its backlog is still arriving.
	OpSeen
)

func (o Op) String() string {
	return [...]string{"none", "insert", "update", "delete", "tombstone", "seen"}[o]
}

// Table is an in-memory replica. Records live in large append-only slabs,
// not one allocation each, and the index maps a hash of each key to its
// entry, so a table of millions of records gives the garbage collector
// nothing to scan and map growth never reads a key back from memory.
// Tombstones are remembered (key and order value only) so that a stale
// update cannot resurrect a deleted key.
type Table struct {
	mu        sync.RWMutex
	keepBytes bool
	index     keyset.Index
	entries   entries
	free      []uint32
	slabs     [][]byte
	live      int
	liveBytes int64
	slabBytes int64
	gen       uint32
	resyncing bool
	// liveAtBegin is the table's size when the resync began: what the
	// mass-deletion guard protects, whatever the resync added since.
	liveAtBegin int

	// byKey caches the live entries in key order between snapshots: an
	// update keeps a key's entry, so only inserts and deletes spoil it.
	sortMu  sync.Mutex
	byKey   []uint32
	orderOK bool

	pending []uint32 // tags of the entries appendNew added, not yet indexed
}

// entry locates a key's data in the slabs: the record itself when bytes are
// kept and the key is live, otherwise a blob of the key followed by the
// order value, with a hash of the record to tell a duplicate from a change.
type entry struct {
	slab, off, n uint32
	x1, x2       uint32 // record: key and order offsets; blob: the record's hash
	klen, olen   uint32
	meta         uint32 // resync generation << 2 | free << 1 | dead
}

const (
	metaDead = 1 << iota
	metaFree
	metaGenShift = iota
)

func (e *entry) dead() bool      { return e.meta&metaDead != 0 }
func (e *entry) isFree() bool    { return e.meta&metaFree != 0 }
func (e *entry) gen() uint32     { return e.meta >> metaGenShift }
func (e *entry) setGen(g uint32) { e.meta = g<<metaGenShift | e.meta&(metaDead|metaFree) }

const slabSize = 4 << 20

// compactMin is the slab size below which garbage is left alone: copying
// costs more than it frees. A variable so that tests can lower it.
var compactMin int64 = 64 << 20

// entries is a slice of entry in fixed-size chunks, so that growing it
// never copies what it holds.
type entries struct {
	chunks [][]entry
	n      int
}

const entryChunk = 1 << 14

func (es *entries) at(i uint32) *entry { return &es.chunks[i/entryChunk][i%entryChunk] }

func (es *entries) len() int { return es.n }

func (es *entries) append(e entry) uint32 {
	if es.n%entryChunk == 0 {
		es.chunks = append(es.chunks, make([]entry, entryChunk))
	}
	i := uint32(es.n)
	*es.at(i) = e
	es.n++
	return i
}

// NewTable returns an empty table that keeps each record's bytes.
func NewTable() *Table { return &Table{keepBytes: true} }

// NewIndex returns an empty table that keeps keys and order values but not
// record bytes: enough to decide what is a change (lockstep tail), at a
// fraction of the memory. Its Get and All return no records.
func NewIndex() *Table { return &Table{} }

// store copies the parts into the slabs, one after the other, returning
// their slab and offset.
func (t *Table) store(parts ...[]byte) (uint32, uint32) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var s []byte
	if k := len(t.slabs); k > 0 {
		s = t.slabs[k-1]
	}
	if len(t.slabs) == 0 || len(s)+n > cap(s) {
		s = make([]byte, 0, max(slabSize, n))
		t.slabs = append(t.slabs, s)
	}
	off := len(s)
	for _, p := range parts {
		s = append(s, p...)
	}
	t.slabs[len(t.slabs)-1] = s
	t.slabBytes += int64(n)
	return uint32(len(t.slabs) - 1), uint32(off)
}

func (t *Table) data(e *entry) []byte { return t.slabs[e.slab][e.off : e.off+e.n] }

func (t *Table) blob(e *entry) bool { return !t.keepBytes || e.dead() }

func (t *Table) key(e *entry) []byte {
	d := t.data(e)
	if t.blob(e) {
		return d[:e.klen]
	}
	return d[e.x1 : e.x1+e.klen]
}

func (t *Table) order(e *entry) []byte {
	d := t.data(e)
	if t.blob(e) {
		return d[e.klen:]
	}
	return d[e.x2 : e.x2+e.olen]
}

// put stores r as e's data.
func (t *Table) put(e *entry, r *follow.Record) {
	e.meta &^= metaDead
	if r.Deleted {
		e.meta |= metaDead
	}
	e.klen, e.olen = uint32(len(r.Key)), uint32(len(r.Order))
	if t.blob(e) {
		e.slab, e.off = t.store(r.Key, r.Order)
		e.n = e.klen + e.olen
		h := r.Digest()
		e.x1, e.x2 = uint32(h>>32), uint32(h)
		return
	}
	e.slab, e.off = t.store(r.Bytes)
	e.n = uint32(len(r.Bytes))
	e.x1, e.x2 = uint32(offsetIn(r.Bytes, r.Key)), uint32(offsetIn(r.Bytes, r.Order))
}

// offsetIn is the offset of sub, a subslice of whole, within it.
func offsetIn(whole, sub []byte) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(sub))) - uintptr(unsafe.Pointer(unsafe.SliceData(whole))))
}

func (t *Table) same(e *entry, r *follow.Record) bool {
	if !t.blob(e) {
		return !r.Deleted && bytes.Equal(t.data(e), r.Bytes)
	}
	h := r.Digest()
	return e.x1 == uint32(h>>32) && e.x2 == uint32(h) && e.dead() == r.Deleted
}

// lookup finds key's entry. When there is none, slot is where to index it.
func (t *Table) lookup(key []byte, keyHash uint64) (i uint32, slot int, ok bool) {
	slot, i, ok = t.index.Find(uint32(keyHash), func(i uint32) bool { return bytes.Equal(t.key(t.entries.at(i)), key) })
	return i, slot, ok
}

// Prefetch readies the table to apply these records: it reads their keys'
// slots in the index now, so that the cache misses of a large table are
// taken together instead of one record at a time.
func (t *Table) Prefetch(batch []follow.Record) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var sum uint64
	for i := range batch {
		sum += t.index.Prefetch(uint32(batch[i].KeyHash()))
	}
	keyset.Prefetched(sum)
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
	h := r.KeyHash()
	i, slot, ok := t.lookup(r.Key, h)
	if !ok {
		var e entry
		e.setGen(t.gen)
		t.put(&e, r)
		i := t.add(slot, uint32(h), e)
		if r.Deleted {
			return OpTombstone
		}
		t.inserted(i, r.Key)
		t.live++
		t.liveBytes += int64(len(r.Bytes))
		return OpInsert
	}
	e := t.entries.at(uint32(i))
	authoritative := t.resyncing && e.gen() != t.gen
	e.setGen(t.gen)
	if !authoritative {
		c := follow.CompareOrder(r.Order, t.order(e))
		if c < 0 || (c == 0 && t.same(e, r)) {
			return OpNone
		}
	} else if t.same(e, r) {
		return OpSeen
	}
	wasLive := !e.dead()
	if wasLive == r.Deleted {
		t.orderOK = false
	}
	if wasLive {
		t.live--
		t.liveBytes -= int64(t.recordLen(e))
	}
	t.put(e, r)
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

// Tombstones is the number of deleted keys the table remembers.
func (t *Table) Tombstones() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.entries.len() - len(t.free) - t.live
}

// ForgetTombstones drops the remembered tombstones whose order value is
// below the given one, and returns how many it dropped. It is safe once no
// record below that order can arrive: a Follower drops whatever lies below
// the cursor it asked for, so at EventConnected (outside a resync) its
// Cursor is such a value.
func (t *Table) ForgetTombstones(below follow.Order) int {
	return t.forgetTombstones(func(c int) bool { return c < 0 }, below)
}

// ForgetTombstonesAbove drops the remembered tombstones whose order value is
// above the given one, and returns how many it dropped. A resync calls it
// with its cursor: an endpoint restored from a backup moves the cursor back
// below deletions it no longer knows of, and a key written there again must
// not be taken for a stale update of the deleted one.
func (t *Table) ForgetTombstonesAbove(above follow.Order) int {
	return t.forgetTombstones(func(c int) bool { return c > 0 }, above)
}

// forgetTombstones drops the tombstones whose order, compared with order,
// gives a result drop accepts.
func (t *Table) forgetTombstones(drop func(int) bool, order follow.Order) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for i := range t.entries.len() {
		e := t.entries.at(uint32(i))
		if e.dead() && !e.isFree() && drop(follow.CompareOrder(t.order(e), []byte(order))) {
			t.remove(uint32(i))
			n++
		}
	}
	return n
}

// appendNew adds a live record whose key is known to be new and to sort
// after every key in the table, leaving it out of the index: indexNew
// indexes such records all at once.
func (t *Table) appendNew(r *follow.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var e entry
	e.setGen(t.gen)
	t.put(&e, r)
	i := t.entries.append(e)
	t.pending = append(t.pending, uint32(r.KeyHash()))
	t.live++
	t.liveBytes += int64(len(r.Bytes))
	t.byKey = append(t.byKey, i)
	t.orderOK = t.live == len(t.byKey)
}

// indexNew indexes the records appendNew added.
func (t *Table) indexNew() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.index.InsertAll(t.pending, uint32(t.entries.len()-len(t.pending)))
	t.pending = nil
}

func (t *Table) recordLen(e *entry) int {
	if t.keepBytes {
		return int(e.n)
	}
	return 0
}

// inserted keeps the sort cache for a live key, new to the table, that
// sorts after every key in it: on a first load keys often grow with time,
// and a table of millions need not then be sorted to be written. (An
// index, which is not written, keeps no cache: it would only cost memory.)
func (t *Table) inserted(i uint32, key []byte) {
	if !t.keepBytes {
		t.orderOK = false
		return
	}
	if t.live == 0 {
		t.byKey, t.orderOK = t.byKey[:0], true
	}
	if t.orderOK && (len(t.byKey) == 0 || CompareKeys(key, t.key(t.entries.at(t.byKey[len(t.byKey)-1]))) > 0) {
		t.byKey = append(t.byKey, i)
		return
	}
	t.orderOK = false
}

func (t *Table) add(slot int, tag uint32, e entry) uint32 {
	var i uint32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
		*t.entries.at(i) = e
	} else {
		i = t.entries.append(e)
	}
	t.index.InsertAt(slot, tag, i)
	return i
}

// remove drops entry i from the index and frees it.
func (t *Table) remove(i uint32) {
	key := t.key(t.entries.at(i))
	slot, _, ok := t.index.Find(uint32(follow.KeyHash(key)), func(j uint32) bool { return j == i })
	if ok {
		t.index.Delete(slot)
	}
	*t.entries.at(i) = entry{meta: metaFree}
	t.free = append(t.free, i)
	t.orderOK = false
}

// maybeCompact copies live data to fresh slabs once garbage outweighs it,
// so that a long-running follower's memory tracks its table, not its
// history of changes.
func (t *Table) maybeCompact() {
	if t.slabBytes < compactMin || t.slabBytes < 3*(t.liveBytes+int64(t.entries.len())*36) {
		return
	}
	old := t.slabs
	t.slabs, t.slabBytes = nil, 0
	for i := range t.entries.len() {
		e := t.entries.at(uint32(i))
		if e.isFree() {
			continue
		}
		e.slab, e.off = t.store(old[e.slab][e.off : e.off+e.n])
	}
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
	i, _, ok := t.lookup(key, follow.KeyHash(key))
	if !ok || t.entries.at(i).dead() {
		return nil, false
	}
	if !t.keepBytes {
		return nil, true
	}
	return bytes.Clone(t.data(t.entries.at(i))), true
}

// All yields the live records in key order (numbers by value, then
// strings), with their keys. The slices are valid only during the loop
// body, which must not call Apply: All holds the read lock throughout.
func (t *Table) All() iter.Seq2[[]byte, []byte] {
	return func(yield func(key, rec []byte) bool) {
		t.mu.RLock()
		defer t.mu.RUnlock()
		for _, i := range t.sorted() {
			e := t.entries.at(i)
			var rec []byte
			if t.keepBytes {
				rec = t.data(e)
			}
			if !yield(t.key(e), rec) {
				return
			}
		}
	}
}

// sortItem is 16 bytes: a snapshot of millions of keys sorts a slice of
// them, not of the keys.
type sortItem struct {
	num uint64 // the key's value when every numeric key is a plain integer
	idx uint32
}

// sorted returns the live entries in snapshot order. Keys that are plain
// non-negative integers, the common case, sort as machine words. The
// caller holds a lock; the cache is written under the read lock too,
// so sortMu keeps two readers from writing it at once.
func (t *Table) sorted() []uint32 {
	t.sortMu.Lock()
	defer t.sortMu.Unlock()
	if t.orderOK {
		return t.byKey
	}
	items := t.sortItems()
	t.byKey = t.byKey[:0]
	for _, it := range items {
		t.byKey = append(t.byKey, it.idx)
	}
	t.orderOK = true
	return t.byKey
}

func (t *Table) sortItems() []sortItem {
	items := make([]sortItem, 0, t.live)
	fast := true
	for i := range t.entries.len() {
		e := t.entries.at(uint32(i))
		if e.dead() || e.isFree() {
			continue
		}
		key := t.key(e)
		it := sortItem{idx: uint32(i)}
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
			return CompareKeys(t.key(t.entries.at(a.idx)), t.key(t.entries.at(b.idx)))
		})
	} else {
		slices.SortFunc(items, func(a, b sortItem) int {
			return CompareKeys(t.key(t.entries.at(a.idx)), t.key(t.entries.at(b.idx)))
		})
	}
	return items
}

// smallUint parses a plain integer below 2^64-1 (which marks strings).
func smallUint(s []byte) (uint64, bool) {
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
	t.liveAtBegin = t.live
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
	var doomed []uint32
	for i := range t.entries.len() {
		if e := t.entries.at(uint32(i)); !e.dead() && !e.isFree() && e.gen() != t.gen {
			doomed = append(doomed, uint32(i))
		}
	}
	if t.liveAtBegin >= MassDeleteMinimum && float64(len(doomed)) > maxDelete*float64(t.liveAtBegin) {
		return nil, &MassDeleteError{Remove: len(doomed), Of: t.liveAtBegin, Limit: maxDelete}
	}
	for _, i := range doomed {
		e := t.entries.at(uint32(i))
		key := bytes.Clone(t.key(e))
		removed = append(removed, Removed{Key: key, Order: bytes.Clone(t.order(e))})
		t.live--
		t.liveBytes -= int64(t.recordLen(e))
		t.remove(i)
	}
	slices.SortFunc(removed, func(a, b Removed) int { return CompareKeys(a.Key, b.Key) })
	t.resyncing = false
	return removed, nil
}

// Removed is a key swept away by a resync.
type Removed struct {
	Key, Order []byte
}
