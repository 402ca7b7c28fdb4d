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
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math/bits"
	"slices"
	"strconv"
	"sync"
	"unsafe"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/internal/keyset"
	"github.com/lockstep/lockstep/internal/plainint"
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

// Table is an in-memory replica. Each key's data is one blob in large
// append-only slabs, not one allocation each, and the index maps a hash of
// each key straight to its blob: a table of millions of records gives the
// garbage collector nothing to scan, costs beyond its blobs one 8-byte
// index slot a key (10 to 15 bytes, as the index is 0.53 to 0.8 full; more
// while it grows toward a load of known size, Expect), and
// growing the index never reads a key back from memory. (Keys that come
// above every key held are indexed only when a look-up first needs the
// index.)
// Tombstones are remembered (key and order value only) so that a stale
// update cannot resurrect a deleted key.
type Table struct {
	mu        sync.RWMutex
	keepBytes bool
	index     keyset.Index // key hash -> ref of the key's blob
	arena     arena
	live      int
	usedBytes int64 // the blobs in use; the rest of the arena is garbage
	gen       uint8 // resync generation, 0 to genMax
	resyncing bool
	// liveAtBegin is the table's size when the resync began: what the
	// mass-deletion guard protects, whatever the resync added since.
	liveAtBegin int

	// The live blobs before sortedEnd (a ref) lie in key order in the
	// arena: a first load whose keys grow over time, and any number of
	// updates in place after it, need no sort to be written, and later
	// inserts and moves only a sort of their own, to merge. lastKey is the
	// key of the last live blob appended there (deleted since, it only
	// makes the next comparison stricter). An index keeps no order
	// (noOrder): it is never written.
	noOrder   bool
	sortedEnd uint64
	lastKey   []byte

	// byKey holds the blobs from sortedEnd on in key order, between
	// snapshots, once orderOK; pending, the live blobs appended there since,
	// to sort and merge in. Deleted and moved blobs are skipped, not
	// removed, so that changes keep the order and cost no sort.
	sortMu  sync.Mutex
	byKey   []uint64
	pending []uint64
	orderOK bool

	// A record whose key sorts after top, a key at or above every key the
	// table holds, is new: it needs no look-up, and is indexed only once a
	// look-up is needed (catchUp). Then a load whose keys grow, as ids
	// often grow with time, costs no index at all. The blobs from unindexed
	// on are not in the index while lagging; their keys ascend, and every
	// 64th is in sparse, for Get to search them under the read lock. keys
	// counts them too.
	top       []byte
	topNum    uint64 // top's value, if topIsNum
	topIsNum  bool
	lagging   bool
	unindexed uint64
	sparse    []uint64
	keys      int
}

// A blob starts with a flags byte. A live record of a table that keeps
// bytes is then its length, the offset and length of its key and of its
// order value (uvarints) and its bytes. Anything else is a hash of the
// record (8 bytes, to tell a duplicate from a change), then the key and
// the order value, each a uvarint length and the text, or, if it is a plain
// integer, the uvarint of its value: an id below 2,097,152 then takes 3
// bytes, a timestamp in milliseconds 6. Blobs start at multiples of 4 bytes.
const (
	flagDead     = 1 << iota // a tombstone
	flagGarbage              // no longer in the index
	flagKeyNum               // the key is stored as a number
	flagOrderNum             // the order value is stored as a number
	genShift     = iota      // the resync generation that last saw the key
	genMax       = 1<<(8-genShift) - 1
)

// blob is a blob decoded.
type blob struct {
	flags            byte
	key, order       []byte // unless stored as numbers
	keyNum, orderNum uint64 // if stored as numbers
	rec              []byte // the record, if the blob holds it (never empty)
	digest           uint64 // the record's hash, if it does not
	size             int    // bytes from this blob to the next
}

// hasKey reports whether the blob is the one of it.Key.
func (v *blob) hasKey(r *follow.Record) bool {
	if v.flags&flagKeyNum != 0 {
		n, ok := r.KeyNumber()
		return ok && n == v.keyNum
	}
	return bytes.Equal(v.key, r.Key)
}

// keyText is the blob's key, formatted into buf if it is stored as a
// number.
func (v *blob) keyText(buf *[20]byte) []byte {
	if v.flags&flagKeyNum != 0 {
		return strconv.AppendUint(buf[:0], v.keyNum, 10)
	}
	return v.key
}

// orderText is the blob's order value, formatted into buf if it is stored
// as a number.
func (v *blob) orderText(buf *[20]byte) []byte {
	if v.flags&flagOrderNum != 0 {
		return strconv.AppendUint(buf[:0], v.orderNum, 10)
	}
	return v.order
}

// orderVs compares it.Order with the blob's order value.
func (v *blob) orderVs(r *follow.Record) int {
	if v.flags&flagOrderNum != 0 {
		if n, ok := r.OrderNumber(); ok {
			return cmp.Compare(n, v.orderNum)
		}
	}
	var buf [20]byte
	return follow.CompareOrder(r.Order, v.orderText(&buf))
}

func (v *blob) dead() bool    { return v.flags&flagDead != 0 }
func (v *blob) gen() uint8    { return v.flags >> genShift }
func (v *blob) garbage() bool { return v.flags&flagGarbage != 0 }

// arena is a sequence of slabs that blobs are appended to. A ref, a blob's
// slab and its offset in 4-byte units, fits the index's 36 bits for up to
// 256 GiB of blobs.
type arena struct {
	slabs [][]byte
	bytes int64 // appended, alignment and the unused ends of slabs included
}

const (
	slabShift = 22
	slabSize  = 1 << slabShift
	offBits   = slabShift - 2
	maxSlabs  = (keyset.MaxValue + 1) >> offBits
)

// compactMin is the arena size below which garbage is left alone: copying
// costs more than it frees. A variable so that tests can lower it.
var compactMin int64 = 64 << 20

// NewTable returns an empty table that keeps each record's bytes.
func NewTable() *Table { return &Table{keepBytes: true} }

// NewIndex returns an empty table that keeps keys and order values but not
// record bytes: enough to decide what is a change (lockstep tail), at a
// fraction of the memory. Its Get and All return no records.
func NewIndex() *Table { return &Table{noOrder: true} }

func align(n int) int { return (n + 3) &^ 3 }

// alloc appends n bytes, returning their ref and the bytes to fill.
func (a *arena) alloc(n int) (uint64, []byte) {
	size := align(n)
	k := len(a.slabs)
	if k == 0 || len(a.slabs[k-1])+size > cap(a.slabs[k-1]) {
		if k == maxSlabs {
			panic("state: a table may not hold over 256 GiB")
		}
		if k > 0 { // the end of the last slab is garbage from now on
			a.bytes += int64(cap(a.slabs[k-1]) - len(a.slabs[k-1]))
		}
		a.slabs = append(a.slabs, make([]byte, 0, max(slabSize, size)))
		k++
	}
	s := a.slabs[k-1]
	off := len(s)
	a.slabs[k-1] = s[:off+size]
	a.bytes += int64(size)
	return uint64(k-1)<<offBits | uint64(off>>2), s[off : off+n : off+n]
}

// end is the ref of the arena's end: every blob's ref is below it, and
// every blob appended later will have one at least as high.
func (a *arena) end() uint64 {
	k := len(a.slabs)
	if k == 0 {
		return 0
	}
	if s := a.slabs[k-1]; len(s) < slabSize {
		return uint64(k-1)<<offBits | uint64(len(s)>>2)
	}
	return uint64(k) << offBits // full, or one large blob's
}

// at returns the bytes from ref's blob to the end of its slab.
func (a *arena) at(ref uint64) []byte {
	return a.slabs[ref>>offBits][(ref&(1<<offBits-1))<<2:]
}

// uv reads a uvarint at b[p:], returning it and the offset after it.
func uv(b []byte, p int) (int, int) {
	if c := b[p]; c < 0x80 {
		return int(c), p + 1
	}
	v, n := binary.Uvarint(b[p:])
	return int(v), p + n
}

func uv64(b []byte, p int) (uint64, int) {
	v, n := binary.Uvarint(b[p:])
	return v, p + n
}

// text reads a uvarint length and that many bytes.
func text(b []byte, p int) ([]byte, int) {
	n, p := uv(b, p)
	return b[p : p+n], p + n
}

func uvLen[T int | uint64](v T) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// decode decodes the blob at the start of b into v, which it overwrites
// whole (a blob is too large to return by value on the hot paths).
func (t *Table) decode(b []byte, v *blob) {
	*v = blob{flags: b[0]}
	if t.keepBytes && v.flags&flagDead == 0 {
		var n, ko, kl, oo, ol int
		p := 6
		if b[1]|b[2]|b[3]|b[4]|b[5] < 0x80 { // all five lengths below 128
			n, ko, kl, oo, ol = int(b[1]), int(b[2]), int(b[3]), int(b[4]), int(b[5])
		} else {
			n, p = uv(b, 1)
			ko, p = uv(b, p)
			kl, p = uv(b, p)
			oo, p = uv(b, p)
			ol, p = uv(b, p)
		}
		v.rec = b[p : p+n]
		v.key, v.order = v.rec[ko:ko+kl], v.rec[oo:oo+ol]
		v.size = align(p + n)
		return
	}
	v.digest = binary.LittleEndian.Uint64(b[1:])
	p := 9
	if v.flags&flagKeyNum != 0 {
		v.keyNum, p = uv64(b, p)
	} else {
		v.key, p = text(b, p)
	}
	if v.flags&flagOrderNum != 0 {
		v.orderNum, p = uv64(b, p)
	} else {
		v.order, p = text(b, p)
	}
	v.size = align(p)
}

func (t *Table) at(ref uint64) (v blob) {
	t.decode(t.arena.at(ref), &v)
	return v
}

// encodedLen is the length of r's blob.
func (t *Table) encodedLen(r *follow.Record) int {
	if t.keepBytes && !r.Deleted {
		return 1 + uvLen(len(r.Bytes)) + uvLen(offsetIn(r.Bytes, r.Key)) + uvLen(len(r.Key)) +
			uvLen(offsetIn(r.Bytes, r.Order)) + uvLen(len(r.Order)) + len(r.Bytes)
	}
	n := 9
	if k, ok := r.KeyNumber(); ok {
		n += uvLen(k)
	} else {
		n += uvLen(len(r.Key)) + len(r.Key)
	}
	if o, ok := r.OrderNumber(); ok {
		n += uvLen(o)
	} else {
		n += uvLen(len(r.Order)) + len(r.Order)
	}
	return n
}

// encode writes r's blob into b, of length encodedLen(r).
func (t *Table) encode(b []byte, r *follow.Record) {
	b[0] = t.gen << genShift
	if r.Deleted {
		b[0] |= flagDead
	}
	p := 1
	if t.keepBytes && !r.Deleted {
		for _, v := range [...]int{len(r.Bytes), offsetIn(r.Bytes, r.Key), len(r.Key), offsetIn(r.Bytes, r.Order), len(r.Order)} {
			p += binary.PutUvarint(b[p:], uint64(v))
		}
		copy(b[p:], r.Bytes)
		return
	}
	binary.LittleEndian.PutUint64(b[p:], r.Digest())
	p += 8
	if k, ok := r.KeyNumber(); ok {
		b[0] |= flagKeyNum
		p += binary.PutUvarint(b[p:], k)
	} else {
		p += binary.PutUvarint(b[p:], uint64(len(r.Key)))
		p += copy(b[p:], r.Key)
	}
	if o, ok := r.OrderNumber(); ok {
		b[0] |= flagOrderNum
		binary.PutUvarint(b[p:], o)
	} else {
		p += binary.PutUvarint(b[p:], uint64(len(r.Order)))
		copy(b[p:], r.Order)
	}
}

// write appends r's blob and returns its ref; top says that r's key sorts
// after every key in the table (above).
func (t *Table) write(r *follow.Record, top bool) uint64 {
	inOrder := !t.noOrder && t.sortedEnd == t.arena.end() &&
		(r.Deleted || top || len(t.lastKey) == 0 || compareKeys(r.Key, t.lastKey) > 0)
	if top {
		t.top = append(t.top[:0], r.Key...)
		t.topNum, t.topIsNum = r.KeyNumber()
	}
	n := t.encodedLen(r)
	ref, b := t.arena.alloc(n)
	t.encode(b, r)
	t.usedBytes += int64(align(n))
	switch {
	case inOrder:
		t.sortedEnd = t.arena.end()
		if !r.Deleted {
			t.lastKey = append(t.lastKey[:0], r.Key...)
		}
	case !r.Deleted && t.orderOK:
		t.pending = append(t.pending, ref)
	}
	return ref
}

// rewrite replaces the blob at ref, indexed in slot, with r's: in place if
// it takes the same room, so that a table updated in place keeps its order
// and makes no garbage.
func (t *Table) rewrite(slot int, ref uint64, old *blob, r *follow.Record) {
	if n := t.encodedLen(r); align(n) == old.size {
		t.encode(t.arena.at(ref)[:n], r)
		if old.dead() && !r.Deleted {
			// A live key where a tombstone was may break the order, and
			// be in no sort cache.
			if ref < t.sortedEnd {
				t.sortedEnd = 0
			}
			t.orderOK = false
		}
		return
	}
	t.index.Replace(slot, t.write(r, false))
	t.drop(ref, old)
}

// drop marks a blob garbage.
func (t *Table) drop(ref uint64, v *blob) {
	t.arena.at(ref)[0] |= flagGarbage
	t.usedBytes -= int64(v.size)
}

// cursor walks the blobs of an arena in the order written.
type cursor struct {
	a      *arena
	k, off int
}

func (t *Table) walk(a *arena, from uint64) cursor {
	return cursor{a, int(from >> offBits), int(from&(1<<offBits-1)) << 2}
}

// next decodes the next blob into v and returns its ref; ok is false at
// the end.
func (c *cursor) next(t *Table, v *blob) (ref uint64, ok bool) {
	for ; c.k < len(c.a.slabs); c.k, c.off = c.k+1, 0 {
		if s := c.a.slabs[c.k]; c.off < len(s) {
			t.decode(s[c.off:], v)
			ref = uint64(c.k)<<offBits | uint64(c.off>>2)
			c.off += v.size
			return ref, true
		}
	}
	return 0, false
}

// blobs yields the blobs of an arena from ref from on, garbage too, in the
// order written. The blob yielded is valid until the next.
func (t *Table) blobs(a *arena, from uint64) iter.Seq2[uint64, *blob] {
	return func(yield func(uint64, *blob) bool) {
		var v blob
		c := t.walk(a, from)
		for ref, ok := c.next(t, &v); ok; ref, ok = c.next(t, &v) {
			if !yield(ref, &v) {
				return
			}
		}
	}
}

// offsetIn is the offset of sub, a subslice of whole, within it.
func offsetIn(whole, sub []byte) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(sub))) - uintptr(unsafe.Pointer(unsafe.SliceData(whole))))
}

func (t *Table) same(v *blob, r *follow.Record) bool {
	if v.rec != nil {
		return !r.Deleted && bytes.Equal(v.rec, r.Bytes)
	}
	return v.digest == r.Digest() && v.dead() == r.Deleted
}

// lookup finds the blob of it's key. When there is none, slot is where to
// index it.
func (t *Table) lookup(it *follow.Record, keyHash uint64) (slot int, ref uint64, ok bool) {
	var v blob
	return t.index.Find(uint32(keyHash), func(ref uint64) bool {
		t.decode(t.arena.at(ref), &v)
		return v.hasKey(it)
	})
}

// slotOf finds the slot that indexes ref.
func (t *Table) slotOf(ref uint64, key []byte) int {
	slot, _, ok := t.index.Find(uint32(follow.KeyHash(key)), func(r uint64) bool { return r == ref })
	if !ok {
		panic("state: a blob missing from the index")
	}
	return slot
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
	above := t.above(r)
	if above && (t.lagging || t.index.Len() == 0) {
		t.appendUnindexed(r)
		if r.Deleted {
			return OpTombstone
		}
		return OpInsert
	}
	t.catchUp()
	h := r.KeyHash()
	// A key above every other needs no look-up. (It is indexed at once:
	// once a look-up has needed the index, new keys and updates are
	// often interleaved, and catching up one at a time costs more.)
	slot, ref, ok := -1, uint64(0), false
	if !above {
		slot, ref, ok = t.lookup(r, h)
	}
	if !ok {
		t.index.InsertAt(slot, uint32(h), t.write(r, above))
		t.keys++
		if r.Deleted {
			return OpTombstone
		}
		t.live++
		return OpInsert
	}
	b := t.arena.at(ref)
	var v blob
	t.decode(b, &v)
	authoritative := t.resyncing && v.gen() != t.gen
	b[0] = b[0]&^(genMax<<genShift) | t.gen<<genShift
	if !authoritative {
		c := v.orderVs(r)
		if c < 0 || (c == 0 && t.same(&v, r)) {
			return OpNone
		}
	} else if t.same(&v, r) {
		return OpSeen
	}
	wasLive := !v.dead()
	if wasLive {
		t.live--
	}
	t.rewrite(slot, ref, &v, r)
	if !r.Deleted {
		t.live++
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

// Expect tells the table that it will soon hold about keys keys: a load of
// known size, into an empty table. If it needs its index (keys that do not
// arrive in order), the index grows toward that many in a few large steps
// instead of by half again and again, each time moving every key. A wrong
// guess costs little: see keyset.Index.Expect.
func (t *Table) Expect(keys int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.index.Expect(keys)
}

// Tombstones is the number of deleted keys the table remembers.
func (t *Table) Tombstones() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.keys - t.live
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
	t.catchUp()
	var doomed []uint64
	var buf [20]byte
	for ref := range t.index.All() {
		if v := t.at(ref); v.dead() && drop(follow.CompareOrder(v.orderText(&buf), []byte(order))) {
			doomed = append(doomed, ref)
		}
	}
	for _, ref := range doomed {
		t.remove(ref)
	}
	t.maybeCompact()
	return len(doomed)
}

// above reports whether key sorts after every key in the table.
func (t *Table) above(r *follow.Record) bool {
	if len(t.top) == 0 {
		return true
	}
	if t.topIsNum {
		// Two plain integers compare as numbers: the record parses its
		// key once (KeyNumber), and write keeps top's.
		if n, ok := r.KeyNumber(); ok {
			return n > t.topNum
		}
	}
	return compareKeys(r.Key, t.top) > 0
}

// appendNew adds a live record whose key is known to sort after every key
// in the table (as a snapshot's do, one after the other).
func (t *Table) appendNew(r *follow.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.appendUnindexed(r)
}

// appendUnindexed adds a record whose key sorts after every key in the
// table, leaving it out of the index until catchUp.
func (t *Table) appendUnindexed(r *follow.Record) {
	if !t.lagging {
		t.lagging, t.unindexed = true, t.arena.end()
	}
	ref := t.write(r, true)
	if (t.keys-t.index.Len())%sparseEvery == 0 {
		t.sparse = append(t.sparse, ref)
	}
	t.keys++
	if !r.Deleted {
		t.live++
	}
}

// catchUp indexes the blobs appendUnindexed added, all at once, in the
// order of their home slots (keyset.Index.InsertAll). The index is empty
// then: keys wait only while it is.
func (t *Table) catchUp() {
	if !t.lagging {
		return
	}
	c := t.walk(&t.arena, t.unindexed)
	var v blob
	var buf [20]byte
	t.sparse = t.sparse[:0]
	t.index.InsertAll(t.keys-t.index.Len(), func() (uint32, uint64) {
		for {
			ref, ok := c.next(t, &v)
			if !ok {
				panic("state: fewer blobs than keys")
			}
			if !v.garbage() {
				return uint32(follow.KeyHash(v.keyText(&buf))), ref
			}
		}
	})
	t.lagging = false
}

const sparseEvery = 64

// find looks key up under the read lock: in the index, then among the
// blobs not indexed yet, which it cannot index without the write lock.
func (t *Table) find(key []byte) (ref uint64, ok bool) {
	if _, ref, ok = t.lookup(&follow.Record{Key: key}, follow.KeyHash(key)); ok || !t.lagging {
		return ref, ok
	}
	var v blob
	var buf [20]byte
	// The last sparse blob below key, then the blobs up to the next.
	i, found := slices.BinarySearchFunc(t.sparse, key, func(ref uint64, key []byte) int {
		t.decode(t.arena.at(ref), &v)
		return compareKeys(v.keyText(&buf), key)
	})
	if found {
		return t.sparse[i], true
	}
	if i == 0 {
		return 0, false
	}
	c := t.walk(&t.arena, t.sparse[i-1])
	for range sparseEvery {
		ref, ok := c.next(t, &v)
		if !ok {
			break
		}
		switch d := compareKeys(v.keyText(&buf), key); {
		case d == 0:
			return ref, true
		case d > 0:
			return 0, false
		}
	}
	return 0, false
}

// remove drops a blob from the index and the arena.
func (t *Table) remove(ref uint64) {
	v := t.at(ref)
	var buf [20]byte
	t.index.Delete(t.slotOf(ref, v.keyText(&buf)))
	t.drop(ref, &v)
	t.keys--
}

// maybeCompact copies the blobs in use to a fresh arena once garbage
// outweighs them twice over, so that a long-running follower's memory
// tracks its table, not its history of changes. A table that is written
// gets its live blobs in key order, so that none need sorting after.
func (t *Table) maybeCompact() {
	if t.arena.bytes < compactMin || t.arena.bytes < 3*t.usedBytes {
		return
	}
	t.catchUp()
	var to arena
	var buf [20]byte
	// move copies a blob and leaves in its old place, marked garbage, the
	// ref of the copy, for the index: every blob has 8 bytes after its
	// flags, and the walks below never read a blob again once it moved.
	move := func(ref uint64, v *blob) {
		at, b := to.alloc(v.size)
		from := t.arena.at(ref)
		copy(b, from[:v.size])
		from[0] |= flagGarbage
		binary.LittleEndian.PutUint64(from[1:], at)
	}
	if t.noOrder {
		for ref, v := range t.blobs(&t.arena, 0) {
			if !v.garbage() {
				move(ref, v)
			}
		}
		t.orderOK = false
	} else {
		for ref, v := range t.blobs(&t.arena, 0) {
			if !v.garbage() && v.dead() {
				move(ref, v)
			}
		}
		t.lastKey = t.lastKey[:0]
		for ref, v := range t.ordered() {
			t.lastKey = append(t.lastKey[:0], v.keyText(&buf)...)
			move(ref, v)
		}
		t.sortedEnd = to.end()
		t.byKey, t.pending, t.orderOK = nil, nil, true
	}
	t.index.Rewrite(func(ref uint64) uint64 { return binary.LittleEndian.Uint64(t.arena.at(ref)[1:]) })
	t.arena = to
}

// Len is the number of live records.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.live
}

// Get returns a copy of the live record stored for key (its JSON text).
// It takes only the read lock, so it may be called inside an All loop.
func (t *Table) Get(key []byte) ([]byte, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ref, ok := t.find(key)
	if !ok {
		return nil, false
	}
	v := t.at(ref)
	if v.dead() {
		return nil, false
	}
	return bytes.Clone(v.rec), true
}

// All yields the live records in key order (numbers by value, then
// strings), with their keys. The slices are valid only during the loop
// body, which must not call Apply: All holds the read lock throughout.
func (t *Table) All() iter.Seq2[[]byte, []byte] {
	return func(yield func(key, rec []byte) bool) {
		t.mu.RLock()
		defer t.mu.RUnlock()
		var buf [20]byte
		for _, v := range t.ordered() {
			if !yield(v.keyText(&buf), v.rec) {
				return
			}
		}
	}
}

// ordered yields the live blobs in key order: those in order in the arena
// merged with the rest, sorted. The caller holds a lock. The blob yielded
// is valid until the next.
func (t *Table) ordered() iter.Seq2[uint64, *blob] {
	return func(yield func(uint64, *blob) bool) {
		rest := t.sorted()
		var r blob
		var rkey []byte
		var rnum uint64
		var rplain bool
		var buf, rbuf [20]byte
		// next loads rest[0], skipping blobs deleted or moved since.
		ahead := 0
		next := func() bool {
			for ; len(rest) > 0; rest = rest[1:] {
				if ahead == 0 {
					ahead = t.readAhead(rest)
				}
				ahead--
				if t.decode(t.arena.at(rest[0]), &r); !r.garbage() && !r.dead() {
					rkey = r.keyText(&rbuf)
					rnum, rplain = r.plainKey()
					return true
				}
			}
			return false
		}
		// before reports whether rest[0] sorts before v: two plain
		// integers, the usual keys, by value.
		before := func(v *blob) bool {
			if rplain {
				if n, ok := v.plainKey(); ok {
					return rnum < n
				}
			}
			return compareKeys(rkey, v.keyText(&buf)) < 0
		}
		more := next()
		for ref, v := range t.blobs(&t.arena, 0) {
			if ref >= t.sortedEnd {
				break
			}
			if v.garbage() || v.dead() {
				continue
			}
			for more && before(v) {
				if !yield(rest[0], &r) {
					return
				}
				rest = rest[1:]
				more = next()
			}
			if !yield(ref, v) {
				return
			}
		}
		for more {
			if !yield(rest[0], &r) {
				return
			}
			rest = rest[1:]
			more = next()
		}
	}
}

// sortPacked sorts the live blobs from sortedEnd on when every key is a
// plain integer and the keys span less than 2^28: each is then one word,
// the key above its ref, so that the sort needs no memory beyond the
// result and compares nothing but words. Otherwise it returns nil.
func (t *Table) sortPacked() []uint64 {
	n, lo, hi := 0, uint64(1<<64-1), uint64(0)
	for _, v := range t.blobs(&t.arena, t.sortedEnd) {
		if v.garbage() || v.dead() {
			continue
		}
		k, ok := v.plainKey()
		if !ok {
			return nil
		}
		n++
		lo, hi = min(lo, k), max(hi, k)
	}
	if n == 0 || hi-lo >= 1<<(64-keyset.ValueBits) {
		return nil
	}
	words := make([]uint64, 0, n)
	for ref, v := range t.blobs(&t.arena, t.sortedEnd) {
		if !v.garbage() && !v.dead() {
			k, _ := v.plainKey()
			words = append(words, (k-lo)<<keyset.ValueBits|ref)
		}
	}
	keyset.SortWords(words, keyset.ValueBits+uint(bits.Len64(hi-lo)), keyset.ValueBits)
	for i := range words {
		words[i] &= 1<<keyset.ValueBits - 1
	}
	return words
}

// plainKey returns the key's value if it is a plain non-negative integer.
func (v *blob) plainKey() (uint64, bool) {
	if v.flags&flagKeyNum != 0 {
		return v.keyNum, true
	}
	return plainint.Parse(v.key)
}

// readAhead reads the lines of the first 128 bytes of the next blobs in a
// sort (a blob of a record of up to about 120 bytes, wherever it starts in
// a line), which lie anywhere in the arena, so that their cache misses are
// taken together, not one or more per record written. It returns how many
// it read.
func (t *Table) readAhead(refs []uint64) int {
	n := min(len(refs), 16)
	var sum byte
	for _, ref := range refs[:n] {
		b := t.arena.at(ref)
		sum += b[0] + b[min(64, len(b)-1)] + b[min(127, len(b)-1)]
	}
	keyset.Prefetched(uint64(sum))
	return n
}

// sortItem is 16 bytes: a snapshot of millions of keys sorts a slice of
// them, not of the keys.
type sortItem struct {
	num uint64 // the key's value when every numeric key is a plain integer
	ref uint64
}

// sorted returns the live blobs from sortedEnd on, in snapshot order. Keys
// that are plain non-negative integers, the common case, sort as machine
// words. The caller holds a lock; the cache is written under the read lock
// too, so sortMu keeps two readers from writing it at once.
func (t *Table) sorted() []uint64 {
	t.sortMu.Lock()
	defer t.sortMu.Unlock()
	if !t.orderOK {
		if t.byKey = t.sortPacked(); t.byKey == nil {
			items := t.sortItems()
			t.byKey = make([]uint64, len(items))
			for i, it := range items {
				t.byKey[i] = it.ref
			}
		}
		t.pending, t.orderOK = nil, true
		return t.byKey
	}
	if len(t.pending) == 0 {
		return t.byKey
	}
	// Merge what was appended since into the cache, leaving out what was
	// deleted or moved. A new slice: readers may still hold the old one.
	isLive := func(ref uint64) bool {
		v := t.at(ref)
		return !v.garbage() && !v.dead()
	}
	add := slices.DeleteFunc(t.pending, func(ref uint64) bool { return !isLive(ref) })
	slices.SortFunc(add, t.compareRefs)
	merged := make([]uint64, 0, len(t.byKey)+len(add))
	for _, ref := range t.byKey {
		if !isLive(ref) {
			continue
		}
		for len(add) > 0 && t.compareRefs(add[0], ref) < 0 {
			merged, add = append(merged, add[0]), add[1:]
		}
		merged = append(merged, ref)
	}
	t.byKey, t.pending = append(merged, add...), nil
	return t.byKey
}

func (t *Table) sortItems() []sortItem {
	// Counted first: a slice grown by appending would leave its smaller
	// copies behind, up to as much again.
	n := 0
	for _, v := range t.blobs(&t.arena, t.sortedEnd) {
		if !v.garbage() && !v.dead() {
			n++
		}
	}
	items := make([]sortItem, 0, n)
	fast := true
	for ref, v := range t.blobs(&t.arena, t.sortedEnd) {
		if v.garbage() || v.dead() {
			continue
		}
		it := sortItem{ref: ref}
		if k, ok := v.plainKey(); ok {
			it.num = k
		} else if v.key[0] == '"' {
			it.num = 1<<64 - 1
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
			return t.compareRefs(a.ref, b.ref)
		})
	} else {
		slices.SortFunc(items, func(a, b sortItem) int { return t.compareRefs(a.ref, b.ref) })
	}
	return items
}

func (t *Table) compareRefs(a, b uint64) int {
	va, vb := t.at(a), t.at(b)
	switch {
	case va.flags&vb.flags&flagKeyNum != 0:
		return cmp.Compare(va.keyNum, vb.keyNum)
	case (va.flags|vb.flags)&flagKeyNum == 0:
		return compareKeys(va.key, vb.key)
	}
	var ba, bb [20]byte
	return compareKeys(va.keyText(&ba), vb.keyText(&bb))
}

// CompareKeys orders keys given as JSON text the way snapshots are sorted:
// numbers by exact value, then strings bytewise by their contents; keys
// equal in value but spelled differently (1 and 1.0) by their text.
func CompareKeys[T ~string | ~[]byte](a, b T) int { return compareKeys([]byte(a), []byte(b)) }

// compareKeys is CompareKeys, not generic, so that escape analysis sees
// that it keeps neither key.
func compareKeys(a, b []byte) int {
	if c := follow.CompareOrder(a, b); c != 0 {
		return c
	}
	return bytes.Compare(a, b)
}

// BeginResync starts a full resync (PROTOCOL 5.4): from now on every key
// the endpoint sends is marked, and EndResync removes the others.
func (t *Table) BeginResync() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.catchUp()
	if t.gen++; t.gen > genMax {
		// The generation wraps: no blob may look seen by this resync.
		for ref := range t.index.All() {
			t.arena.at(ref)[0] &^= genMax << genShift
		}
		t.gen = 1
	}
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
	// Blobs not indexed yet came after BeginResync, which indexed all
	// before them: this resync saw them, and none is swept.
	var doomed []uint64
	for ref := range t.index.All() {
		if v := t.at(ref); !v.dead() && v.gen() != t.gen {
			doomed = append(doomed, ref)
		}
	}
	if t.liveAtBegin >= MassDeleteMinimum && float64(len(doomed)) > maxDelete*float64(t.liveAtBegin) {
		return nil, &MassDeleteError{Remove: len(doomed), Of: t.liveAtBegin, Limit: maxDelete}
	}
	for _, ref := range doomed {
		v := t.at(ref)
		var kb, ob [20]byte
		removed = append(removed, Removed{Key: bytes.Clone(v.keyText(&kb)), Order: bytes.Clone(v.orderText(&ob))})
		t.live--
		t.remove(ref)
	}
	t.maybeCompact()
	slices.SortFunc(removed, func(a, b Removed) int { return CompareKeys(a.Key, b.Key) })
	t.resyncing = false
	return removed, nil
}

// Removed is a key swept away by a resync.
type Removed struct {
	Key, Order []byte
}
