package state

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/internal/sample"
)

func record(t testing.TB, s string) *follow.Record {
	t.Helper()
	r, err := follow.ParseRecord([]byte(s), follow.DecoderOptions{})
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return &r
}

func live(id, order any, extra ...string) string {
	return fmt.Sprintf(`{"id":%v,"updated_at":%v,"deleted_at":null%s}`, id, order, strings.Join(extra, ""))
}

func dead(id, order any) string {
	return fmt.Sprintf(`{"id":%v,"updated_at":%v,"deleted_at":%v}`, id, order, order)
}

// keysOf is the keys All yields, in its order.
func keysOf(tb *Table) []string {
	var keys []string
	for k := range tb.All() {
		keys = append(keys, string(k))
	}
	return keys
}

func dumpTable(tb *Table) string {
	var out []string
	for k, rec := range tb.All() {
		if rec == nil {
			out = append(out, string(k))
		} else {
			out = append(out, string(rec))
		}
	}
	return strings.Join(out, "\n")
}

func TestTable_Transitions(t *testing.T) {
	tests := []struct {
		name  string
		steps []string
		ops   []Op
		want  string // live records after the steps, by key
	}{
		{"Insert", []string{live(1, 10)}, []Op{OpInsert}, live(1, 10)},
		{"Update", []string{live(1, 10), live(1, 11, `,"v":2`)}, []Op{OpInsert, OpUpdate}, live(1, 11, `,"v":2`)},
		{"StaleIgnored", []string{live(1, 11), live(1, 10, `,"old":true`)}, []Op{OpInsert, OpNone}, live(1, 11)},
		{"DuplicateIgnored", []string{live(1, 10), live(1, 10)}, []Op{OpInsert, OpNone}, live(1, 10)},
		{"SameOrderDifferentBytesApplied", []string{live(1, 10), live(1, 10, `,"v":2`)}, []Op{OpInsert, OpUpdate}, live(1, 10, `,"v":2`)},
		{"Delete", []string{live(1, 10), dead(1, 11)}, []Op{OpInsert, OpDelete}, ""},
		{"DeleteAtSameOrder", []string{live(1, 10), dead(1, 10)}, []Op{OpInsert, OpDelete}, ""},
		{"TombstoneForUnknownKey", []string{dead(1, 10)}, []Op{OpTombstone}, ""},
		{"DuplicateTombstoneIgnored", []string{live(1, 9), dead(1, 10), dead(1, 10)}, []Op{OpInsert, OpDelete, OpNone}, ""},
		{"StaleUpdateCannotResurrect", []string{live(1, 10), dead(1, 12), live(1, 11)}, []Op{OpInsert, OpDelete, OpNone}, ""},
		{"StaleUpdateAfterUnknownTombstone", []string{dead(1, 12), live(1, 11)}, []Op{OpTombstone, OpNone}, ""},
		{"NewerUpdateRevives", []string{live(1, 10), dead(1, 12), live(1, 13)}, []Op{OpInsert, OpDelete, OpInsert}, live(1, 13)},
		{"KeysByJSONText", []string{live(1, 10), live(`"1"`, 10)}, []Op{OpInsert, OpInsert}, live(1, 10) + "\n" + live(`"1"`, 10)},
		{"ExactOrderBeyondFloat64", []string{live(1, "9007199254740993"), live(1, "9007199254740992")}, []Op{OpInsert, OpNone}, live(1, "9007199254740993")},
		{"StringOrders", []string{live(1, `"2024-01-02"`), live(1, `"2024-01-01"`), live(1, `"2024-01-03"`)}, []Op{OpInsert, OpNone, OpUpdate}, live(1, `"2024-01-03"`)},
		// An index keeps plain integers as numbers: values spelled
		// otherwise still compare by value, and keys by their text.
		{"EqualOrderSpelledOtherwise", []string{live(1, 100), live(1, "1e2")}, []Op{OpInsert, OpUpdate}, live(1, "1e2")},
		{"StaleOrderSpelledOtherwise", []string{live(1, 100), live(1, "99.5"), dead(1, "1.005e2")}, []Op{OpInsert, OpNone, OpDelete}, ""},
		{"LargestNumberKept", []string{live("9999999999999999999", "9999999999999999999"), live("9999999999999999999", "10000000000000000000")}, []Op{OpInsert, OpUpdate}, live("9999999999999999999", "10000000000000000000")},
		{"KeySpelledOtherwise", []string{live(10, 1), live("1e1", 1), live(10, 1)}, []Op{OpInsert, OpInsert, OpNone}, live(10, 1) + "\n" + live("1e1", 1)},
		{"SortedNumbersThenStrings", []string{live(`"b"`, 1), live(10, 1), live(`"a"`, 1), live(9, 1), live(-1, 1)}, nil,
			strings.Join([]string{live(-1, 1), live(9, 1), live(10, 1), live(`"a"`, 1), live(`"b"`, 1)}, "\n")},
	}
	for _, mk := range []struct {
		name string
		new  func() *Table
	}{{"Table", NewTable}, {"Index", NewIndex}} {
		for _, tt := range tests {
			t.Run(mk.name+"/"+tt.name, func(t *testing.T) {
				tb := mk.new()
				for i, s := range tt.steps {
					op := tb.Apply(record(t, s))
					if tt.ops != nil && op != tt.ops[i] {
						t.Fatalf("step %d %s: op %s, want %s", i, s, op, tt.ops[i])
					}
				}
				if mk.name == "Index" {
					return
				}
				if got := dumpTable(tb); got != tt.want {
					t.Fatalf("table:\n%s\nwant:\n%s", got, tt.want)
				}
				if n := strings.Count(tt.want, "\n") + 1; tt.want != "" && tb.Len() != n || tt.want == "" && tb.Len() != 0 {
					t.Fatalf("Len %d", tb.Len())
				}
			})
		}
	}
}

func TestTable_ForgetTombstones(t *testing.T) {
	tb := NewTable()
	for _, s := range []string{live(1, 1), live(2, 2), dead(1, 10), dead(2, 20), dead(3, 30), live(4, 40)} {
		tb.Apply(record(t, s))
	}
	if n := tb.Tombstones(); n != 3 {
		t.Fatalf("Tombstones %d, want 3", n)
	}
	if n := tb.ForgetTombstones("20"); n != 1 || tb.Tombstones() != 2 || tb.Len() != 1 {
		t.Fatalf("forgot %d; %d left, Len %d", n, tb.Tombstones(), tb.Len())
	}
	// Key 2's tombstone (20) is still there: a stale update stays out.
	if op := tb.Apply(record(t, live(2, 15))); op != OpNone {
		t.Fatalf("stale update after a kept tombstone: %s", op)
	}
	// Key 1's is gone: the table takes what comes, as a follower lets
	// nothing below its cursor through.
	if op := tb.Apply(record(t, live(1, 25))); op != OpInsert {
		t.Fatalf("key 1 after its tombstone was forgotten: %s", op)
	}
	if got := dumpTable(tb); got != live(1, 25)+"\n"+live(4, 40) {
		t.Fatalf("table:\n%s", got)
	}
}

func TestTable_Get(t *testing.T) {
	tb := NewTable()
	tb.Apply(record(t, live(1, 10, `,"x":"y"`)))
	got, ok := tb.Get([]byte("1"))
	if !ok || string(got) != live(1, 10, `,"x":"y"`) {
		t.Fatalf("Get = %s, %v", got, ok)
	}
	tb.Apply(record(t, dead(1, 11)))
	if _, ok := tb.Get([]byte("1")); ok {
		t.Fatal("Get found a deleted key")
	}
	if _, ok := tb.Get([]byte(`"1"`)); ok {
		t.Fatal(`Get("1") found key 1`)
	}
}

func TestTable_ResyncSweep(t *testing.T) {
	tb := NewTable()
	for i := 1; i <= 5; i++ {
		tb.Apply(record(t, live(i, 100+i)))
	}
	tb.BeginResync()
	tb.Apply(record(t, live(1, 101)))          // unchanged
	tb.Apply(record(t, live(2, 50, `,"r":1`))) // older than held: the resync wins
	tb.Apply(record(t, live(6, 60)))           // new
	removed, err := tb.EndResync(1)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range removed {
		keys = append(keys, string(r.Key)+"@"+string(r.Order))
	}
	if strings.Join(keys, ",") != "3@103,4@104,5@105" {
		t.Fatalf("removed %v", keys)
	}
	want := strings.Join([]string{live(1, 101), live(2, 50, `,"r":1`), live(6, 60)}, "\n")
	if got := dumpTable(tb); got != want {
		t.Fatalf("after sweep:\n%s\nwant:\n%s", got, want)
	}
	if _, err := tb.EndResync(1); !errors.Is(err, ErrNotResyncing) {
		t.Fatalf("second EndResync: %v", err)
	}
}

// Tombstones above a resync's cursor are forgotten: the endpoint no longer
// knows of those deletions, and may write their keys again below them.
// Those at or below it still guard against stale updates.
func TestTable_ForgetTombstonesAbove(t *testing.T) {
	tb := NewTable()
	for i := 1; i <= 3; i++ {
		tb.Apply(record(t, live(i, i)))
	}
	tb.Apply(record(t, dead(2, 10)))
	tb.Apply(record(t, dead(3, 4)))
	if n := tb.ForgetTombstonesAbove("5"); n != 1 || tb.Tombstones() != 1 {
		t.Fatalf("forgot %d, %d left; want 1 forgotten (key 2's), 1 left", n, tb.Tombstones())
	}
	if op := tb.Apply(record(t, live(2, 6))); op != OpInsert {
		t.Fatalf("key 2 written again at 6: %v, want an insert", op)
	}
	if op := tb.Apply(record(t, live(3, 3))); op != OpNone {
		t.Fatalf("key 3 below its tombstone: %v, want it ignored", op)
	}
}

func TestTable_MassDeleteGuard(t *testing.T) {
	tb := NewTable()
	for i := range 200 {
		tb.Apply(record(t, live(i, 1)))
	}
	tb.BeginResync()
	for i := range 80 {
		tb.Apply(record(t, live(i, 1)))
	}
	_, err := tb.EndResync(0.5)
	var md *MassDeleteError
	if !errors.As(err, &md) || md.Remove != 120 || md.Of != 200 {
		t.Fatalf("err %v, want a MassDeleteError for 120 of 200", err)
	}
	if tb.Len() != 200 || !tb.Resyncing() {
		t.Fatalf("refused sweep changed the table: Len %d", tb.Len())
	}
	removed, err := tb.EndResync(1)
	if err != nil || len(removed) != 120 || tb.Len() != 80 {
		t.Fatalf("with 100%%: err %v removed %d Len %d", err, len(removed), tb.Len())
	}
	// Below MassDeleteMinimum records the guard does not apply.
	small := NewTable()
	for i := range 10 {
		small.Apply(record(t, live(i, 1)))
	}
	small.BeginResync()
	if removed, err := small.EndResync(0.5); err != nil || len(removed) != 10 {
		t.Fatalf("small table: err %v removed %d", err, len(removed))
	}
}

// A long run of changes to few keys compacts the slabs and keeps every
// record intact.
func TestTable_CompactionKeepsRecords(t *testing.T) {
	defer func(old int64) { compactMin = old }(compactMin)
	compactMin = 1 << 20
	for _, mk := range []func() *Table{NewTable, NewIndex} {
		tb := mk()
		pad := strings.Repeat("x", 1000)
		want := map[int]int{}
		for n := range 10_000 {
			k := n % 500
			if n%7 == 0 {
				tb.Apply(record(t, dead(k, n)))
				delete(want, k)
				continue
			}
			tb.Apply(record(t, live(k, n, `,"p":"`+pad+`"`)))
			want[k] = n
		}
		if tb.arena.bytes > 4*compactMin+slabSize {
			t.Fatalf("slabs hold %d bytes for a table of %d records", tb.arena.bytes, tb.Len())
		}
		if tb.Len() != len(want) {
			t.Fatalf("Len %d, want %d", tb.Len(), len(want))
		}
		for k, n := range want {
			key := []byte(fmt.Sprint(k))
			if _, ok := tb.Get(key); !ok {
				t.Fatalf("key %d lost", k)
			}
			if tb.keepBytes {
				if got, _ := tb.Get(key); string(got) != live(k, n, `,"p":"`+pad+`"`) {
					t.Fatalf("key %d: %.80s", k, got)
				}
			}
		}
	}
}

func BenchmarkTable_Apply(b *testing.B) {
	for _, mk := range []struct {
		name string
		new  func() *Table
	}{{"Table", NewTable}, {"Index", NewIndex}} {
		b.Run(mk.name, func(b *testing.B) {
			d := follow.NewDecoder(bytes.NewReader(sample.Records(200_000)), follow.DecoderOptions{})
			var recs []follow.Record
			for d.Next() {
				r := *d.Record()
				r.Bytes = bytes.Clone(r.Bytes)
				rr, _ := follow.ParseRecord(r.Bytes, follow.DecoderOptions{})
				recs = append(recs, rr)
			}
			b.ReportAllocs()
			for b.Loop() {
				tb := mk.new()
				for i := range recs {
					tb.Apply(&recs[i])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
		})
	}
}

// Keys that arrive in order are written as they lie; shuffled ones are
// sorted once (the sort benchmark), then written from the sort cache.
func BenchmarkTable_WriteSnapshot(b *testing.B) {
	for _, data := range []struct {
		name    string
		records []byte
	}{{"ordered", sample.Records(200_000)}, {"shuffled", sample.Shuffled(200_000)}} {
		tb := NewTable()
		d := follow.NewDecoder(bytes.NewReader(data.records), follow.DecoderOptions{})
		for d.Next() {
			tb.Apply(d.Record())
		}
		b.Run(data.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "s.jsonl")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tb.WriteSnapshot(path, 0o644); err != nil {
					b.Fatal(err)
				}
			}
		})
		if data.name == "shuffled" {
			b.Run("shuffled-sort", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					tb.orderOK = false
					tb.sorted()
				}
			})
		}
	}
}

// A tombstone from a resync long ago must not look seen by the present
// one when the generation a blob records wraps around: the resync's
// record for the key is the truth, however old its order.
func TestTable_ResyncGenerationWraps(t *testing.T) {
	for _, tb := range []*Table{NewTable(), NewIndex()} {
		tb.BeginResync()
		tb.Apply(record(t, dead(1, 100)))
		if _, err := tb.EndResync(1); err != nil {
			t.Fatal(err)
		}
		for i := range 2 * genMax {
			tb.BeginResync()
			if i == 2*genMax-1 {
				if op := tb.Apply(record(t, live(1, 50))); op != OpInsert {
					t.Fatalf("after %d resyncs: a resync's record for a tombstoned key gave %v, want insert", i+2, op)
				}
			}
			tb.Apply(record(t, live(2, 200+i)))
			if _, err := tb.EndResync(1); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// All must list the live keys in key order whatever order they came in:
// keys that arrive in order keep the sort cache, any other spoils it, and
// reading the table between changes must not freeze a wrong order.
func TestTable_AllInKeyOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []string // applied in turn, orders rising; "-k" deletes k, "?" reads All
	}{
		{"ascending", []string{"1", "2", "10", "?", "11", `"a"`, `"b"`}},
		{"descending", []string{"3", "?", "2", "1"}},
		{"read then lower", []string{"5", "6", "?", "4", "?", "7"}},
		{"delete then revive", []string{"1", "2", "3", "?", "-2", "?", "2", "4", "?"}},
		{"delete the last then lower", []string{"1", "5", "?", "-5", "3", "?", "4"}},
		{"numbers by value", []string{"9", "10", "1e1", "?", "1.5", "2"}},
		{"strings then numbers", []string{`"a"`, "?", "1", `"b"`}},
		{"emptied then refilled", []string{"7", "8", "?", "-7", "-8", "?", "2", "1", "?", "3"}},
		{"tombstone then a lower key", []string{"5", "6", "-3", "3", "?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A zero Table is an index that keeps track of its order.
			for _, tb := range []*Table{NewTable(), NewIndex(), {}} {
				want := map[string]bool{}
				check := func() {
					t.Helper()
					got := keysOf(tb)
					var keys []string
					for k := range want {
						keys = append(keys, k)
					}
					slices.SortFunc(keys, CompareKeys)
					if strings.Join(got, " ") != strings.Join(keys, " ") {
						t.Fatalf("All gave %q, want %q", got, keys)
					}
				}
				for i, k := range tc.keys {
					switch {
					case k == "?":
						check()
					case k[0] == '-':
						tb.Apply(record(t, dead(k[1:], 100+i)))
						delete(want, k[1:])
					default:
						tb.Apply(record(t, live(k, 100+i)))
						want[k] = true
					}
				}
				check()
			}
		})
	}
}

// The table against a map, through random inserts, updates that fit in
// place or move, deletions, duplicates, stale records, resyncs (more than
// the generations a blob can tell apart, so that the generation wraps;
// what a wrap must clear is pinned down by
// TestTable_ResyncGenerationWraps, as random keys seldom show it),
// forgotten tombstones and compactions, with All read between changes so
// that the sort cache lives through them.
func TestTable_AgainstModel(t *testing.T) {
	defer func(old int64) { compactMin = old }(compactMin)
	compactMin = 32 << 10
	type state struct {
		rec   string
		order int
		dead  bool
		seen  bool // by the resync in progress
	}
	for _, mk := range []func() *Table{NewTable, NewIndex} {
		tb := mk()
		model := map[string]*state{}
		rng := rand.New(rand.NewPCG(5, 6))
		clock, resyncing, resyncs := 1000, false, 0
		key := func() string {
			if rng.IntN(4) == 0 {
				return fmt.Sprintf(`"k%d"`, rng.IntN(100))
			}
			return fmt.Sprint(rng.IntN(300))
		}
		apply := func(k string, order int, deleted bool, pad int) {
			s := live(k, order, `,"p":"`+strings.Repeat("x", pad)+`"`)
			if deleted {
				s = dead(k, order)
			}
			tb.Apply(record(t, s))
			cur, ok := model[k]
			switch {
			case !ok:
				model[k] = &state{rec: s, order: order, dead: deleted, seen: true}
				return
			case resyncing && !cur.seen:
			case order < cur.order || (order == cur.order && s == cur.rec):
				cur.seen = true
				return
			}
			*cur = state{rec: s, order: order, dead: deleted, seen: true}
		}
		check := func(step int) {
			t.Helper()
			var want []string
			for k, s := range model {
				if !s.dead {
					want = append(want, k)
				}
			}
			slices.SortFunc(want, CompareKeys)
			var got []string
			for k, rec := range tb.All() {
				got = append(got, string(k))
				if tb.keepBytes && string(rec) != model[string(k)].rec {
					t.Fatalf("step %d: key %s holds %s, want %s", step, k, rec, model[string(k)].rec)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: All gave %v, want %v", step, got, want)
			}
			for k, st := range model {
				rec, ok := tb.Get([]byte(k))
				if ok == st.dead || (ok && tb.keepBytes && string(rec) != st.rec) {
					t.Fatalf("step %d: Get(%s) = %s, %v; the model holds %s", step, k, rec, ok, st.rec)
				}
			}
			if tb.Len() != len(want) || tb.Tombstones() != len(model)-len(want) {
				t.Fatalf("step %d: Len %d Tombstones %d, want %d and %d", step, tb.Len(), tb.Tombstones(), len(want), len(model)-len(want))
			}
		}
		for step := range 20_000 {
			clock++
			switch n := rng.IntN(1000); {
			case n < 2 && !resyncing:
				tb.BeginResync()
				resyncing, resyncs = true, resyncs+1
				for _, s := range model {
					s.seen = false
				}
			case n < 4 && resyncing:
				removed, err := tb.EndResync(1)
				if err != nil {
					t.Fatal(err)
				}
				resyncing = false
				gone := 0
				for k, s := range model {
					if !s.dead && !s.seen {
						delete(model, k)
						gone++
					}
				}
				if len(removed) != gone {
					t.Fatalf("step %d: resync removed %d, want %d", step, len(removed), gone)
				}
			case n < 6 && !resyncing:
				below := clock - rng.IntN(2000)
				tb.ForgetTombstones(follow.Order(fmt.Sprint(below)))
				for k, s := range model {
					if s.dead && s.order < below {
						delete(model, k)
					}
				}
			case n < 60:
				check(step)
			case n < 100: // a run of new keys in ascending order
				for i := range 5 {
					apply(fmt.Sprint(1000+clock*5+i), clock, false, 10)
				}
			case n < 200:
				apply(key(), clock, true, 0)
			case n < 250:
				apply(key(), clock-rng.IntN(3000), rng.IntN(5) == 0, 5)
			case n < 300: // the same record again
				k := key()
				if s, ok := model[k]; ok {
					tb.Apply(record(t, s.rec))
					s.seen = true
				}
			default: // mostly the same length, so in place; sometimes longer
				pad := 5
				if rng.IntN(4) == 0 {
					pad = rng.IntN(200)
				}
				apply(key(), clock, false, pad)
			}
		}
		check(-1)
		if resyncs <= genMax || tb.arena.bytes > 4*compactMin {
			t.Fatalf("%d resyncs, arena of %d bytes: the test did not reach what it tests", resyncs, tb.arena.bytes)
		}
	}
}

// Records larger than a slab get slabs of their own; the order the arena
// keeps must hold across them, and keys that arrive out of order after
// them must merge into place.
func TestTable_LargeRecordsInOrder(t *testing.T) {
	tb := NewTable()
	big := `,"p":"` + strings.Repeat("x", slabSize+100) + `"`
	var want []string
	for k := 1; k <= 6; k++ {
		extra := ""
		if k != 3 { // the last blob in order is a large one
			extra = big
		}
		tb.Apply(record(t, live(k*10, 1, extra)))
		want = append(want, fmt.Sprint(k*10))
	}
	if tb.sortedEnd != tb.arena.end() {
		t.Fatalf("keys that came in order left blobs to sort: sortedEnd %x, end %x", tb.sortedEnd, tb.arena.end())
	}
	tb.Apply(record(t, live(35, 1, big)))
	tb.Apply(record(t, live(5, 1)))
	want = append(want, "35", "5")
	slices.SortFunc(want, CompareKeys)
	var got []string
	for k, rec := range tb.All() {
		got = append(got, string(k))
		if r := record(t, string(rec)); string(r.Key) != string(k) {
			t.Fatalf("key %s yielded record of %s", k, r.Key)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("All gave %v, want %v", got, want)
	}
}

// Keys out of order go to the sort cache; a later read merges what came
// since into it and leaves out what was deleted or moved meanwhile.
func TestTable_SortCacheMerges(t *testing.T) {
	tb := NewTable()
	for _, s := range []string{live(10, 1), live(20, 1), live(30, 1), live(5, 1), live(15, 1), live(25, 1)} {
		tb.Apply(record(t, s))
	}
	keys := func() string { return strings.Join(keysOf(tb), " ") }
	if got := keys(); got != "5 10 15 20 25 30" {
		t.Fatalf("All gave %s", got)
	}
	tb.Apply(record(t, dead(15, 2)))
	tb.Apply(record(t, live(12, 2)))
	tb.Apply(record(t, live(25, 2, `,"longer":true`))) // moves
	if got := keys(); got != "5 10 12 20 25 30" {
		t.Fatalf("All gave %s", got)
	}
	if len(tb.byKey) != 3 || len(tb.pending) != 0 {
		t.Fatalf("the sort cache holds %d blobs and %d to merge, want 3 and 0", len(tb.byKey), len(tb.pending))
	}
}

// Keys that came in order are not indexed until a look-up needs them; Get,
// under the read lock (and so inside an All loop), still finds each of
// them, and nothing between them.
func TestTable_GetBeforeIndexing(t *testing.T) {
	for _, n := range []int{1, sparseEvery, sparseEvery + 1, 1000} {
		tb := NewTable()
		for i := range n {
			if i%7 == 3 {
				tb.Apply(record(t, dead(10*i, 1)))
			} else {
				tb.Apply(record(t, live(10*i, 1)))
			}
		}
		if !tb.lagging {
			t.Fatalf("n=%d: keys in order were indexed at once", n)
		}
		seen := 0
		done := make(chan bool)
		go func() {
			defer close(done)
			for k := range tb.All() {
				if _, ok := tb.Get(k); !ok {
					t.Errorf("n=%d: Get(%s) inside All found nothing", n, k)
				}
				seen++
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("n=%d: Get inside All did not return", n)
		}
		for i := -1; i <= n; i++ {
			for _, k := range []int{10 * i, 10*i + 5} {
				rec, ok := tb.Get([]byte(fmt.Sprint(k)))
				want := k%10 == 0 && i >= 0 && i < n && i%7 != 3
				if ok != want || (ok && string(rec) != live(k, 1)) {
					t.Fatalf("n=%d: Get(%d) = %s, %v; want %v", n, k, rec, ok, want)
				}
			}
		}
		if seen != tb.Len() {
			t.Fatalf("n=%d: All gave %d keys, Len %d", n, seen, tb.Len())
		}
	}
}

// Keys swept by a resync must stay gone for Get when new keys arrive in
// order after it: one key swept, or all of them, which empties the index,
// so that the new key waits to be indexed and Get searches it without.
func TestTable_GetAfterSweepThenNewKeys(t *testing.T) {
	for _, sweepAll := range []bool{false, true} {
		tb := NewTable()
		for k := 1; k <= 100; k++ {
			tb.Apply(record(t, live(k, 1)))
		}
		tb.BeginResync()
		for k := 1; k <= 100; k++ {
			if k != 70 && !sweepAll {
				tb.Apply(record(t, live(k, 1)))
			}
		}
		removed, err := tb.EndResync(1)
		if want := map[bool]int{false: 1, true: 100}[sweepAll]; err != nil || len(removed) != want {
			t.Fatalf("sweep all %v: %v, %d removed, want %d", sweepAll, err, len(removed), want)
		}
		tb.Apply(record(t, live(200, 2)))
		if tb.lagging != sweepAll {
			t.Fatalf("sweep all %v: key 200 waits to be indexed: %v", sweepAll, tb.lagging)
		}
		if rec, ok := tb.Get([]byte("70")); ok {
			t.Fatalf("sweep all %v: Get(70) after the sweep = %s", sweepAll, rec)
		}
		if _, ok := tb.Get([]byte("200")); !ok {
			t.Fatalf("sweep all %v: Get(200) found nothing", sweepAll)
		}
	}
}

// Keys that wait to be indexed, against a map: runs of new keys in
// ascending order (numbers spelled several ways, tombstones, blobs of 300
// KiB) into an empty index, updates that make it catch up, resync
// sweeps and forgotten tombstones, and a sweep of every key that empties
// it again. Get is checked for every key, for keys gone and for keys never
// written, after every run and between changes.
func TestTable_LaggingAgainstModel(t *testing.T) {
	defer func(old int64) { compactMin = old }(compactMin)
	compactMin = 64 << 10
	for _, mk := range []func() *Table{NewTable, NewIndex} {
		for seed := range uint64(2) {
			tb := mk()
			rng := rand.New(rand.NewPCG(seed, 9))
			type st struct {
				rec   string
				order int
				dead  bool
			}
			model := map[string]*st{}
			clock := 1
			var all []string // every key ever, for between-checks
			next := 0
			check := func(step int) {
				t.Helper()
				for k, s := range model {
					rec, ok := tb.Get([]byte(k))
					if ok == s.dead || (ok && tb.keepBytes && string(rec) != s.rec) {
						t.Fatalf("seed %d step %d lagging=%v: Get(%s) = %s,%v want dead=%v %s", seed, step, tb.lagging, k, rec, ok, s.dead, s.rec)
					}
				}
				for _, k := range all {
					if _, in := model[k]; !in {
						if rec, ok := tb.Get([]byte(k)); ok {
							t.Fatalf("seed %d step %d: Get(%s) of a gone key = %s", seed, step, k, rec)
						}
					}
				}
				for i := range 20 {
					k := fmt.Sprint(rng.IntN(next*10+10)*10 + 5 + i%2)
					if _, in := model[k]; !in {
						if _, ok := tb.Get([]byte(k)); ok {
							t.Fatalf("seed %d: Get(%s) found a key never written", seed, k)
						}
					}
				}
				live := 0
				for _, s := range model {
					if !s.dead {
						live++
					}
				}
				if tb.Len() != live || tb.Tombstones() != len(model)-live {
					t.Fatalf("seed %d step %d: Len %d Tomb %d want %d %d", seed, step, tb.Len(), tb.Tombstones(), live, len(model)-live)
				}
			}
			resync := false
			seen := map[string]bool{}
			waiting := 0 // checks made while keys waited to be indexed
			for step := range 150 {
				clock++
				switch n := rng.IntN(100); {
				case n < 30: // run of new ascending keys
					m := rng.IntN(300)
					for range m {
						// keys must ascend under CompareKeys: use the number counter
						next++
						var k string
						switch rng.IntN(8) {
						case 0:
							k = fmt.Sprintf("%d.5", next*10)
						case 1:
							k = fmt.Sprintf("%de1", next)
						default:
							k = fmt.Sprint(next * 10)
						}
						// strings come after numbers; skip strings here
						d := rng.IntN(6) == 0
						pad := 5
						if rng.IntN(50) == 0 {
							pad = 300 << 10
						}
						s := live(k, clock, `,"p":"`+strings.Repeat("x", pad)+`"`)
						if d {
							s = dead(k, clock)
						}
						tb.Apply(record(t, s))
						model[k] = &st{s, clock, d}
						all = append(all, k)
						seen[k] = true
					}
					if tb.lagging {
						waiting++
					}
					check(step)
				case n < 40 && len(all) > 0: // update an existing key
					k := all[rng.IntN(len(all))]
					s := live(k, clock, `,"u":1`)
					tb.Apply(record(t, s))
					model[k] = &st{s, clock, false}
					seen[k] = true
				case n < 45 && !resync:
					tb.BeginResync()
					resync = true
					seen = map[string]bool{}
				case n < 52 && resync:
					// re-send some keys, then end
					for _, k := range slices.Sorted(maps.Keys(model)) {
						if s := model[k]; rng.IntN(3) == 0 && !s.dead {
							tb.Apply(record(t, s.rec))
							seen[k] = true
						}
					}
					if _, err := tb.EndResync(1); err != nil {
						t.Fatal(err)
					}
					resync = false
					for k, s := range model {
						if !s.dead && !seen[k] {
							delete(model, k)
						}
					}
				case n < 56 && !resync:
					tb.ForgetTombstones(follow.Order(fmt.Sprint(clock + 1)))
					for k, s := range model {
						if s.dead {
							delete(model, k)
						}
					}
				case n < 60 && !resync: // sweep every key, forget them all
					tb.BeginResync()
					if _, err := tb.EndResync(1); err != nil {
						t.Fatal(err)
					}
					tb.ForgetTombstones(follow.Order(fmt.Sprint(clock + 1)))
					clear(model)
					if tb.index.Len() != 0 {
						t.Fatalf("seed %d step %d: %d keys indexed after every key went", seed, step, tb.index.Len())
					}
				case n < 80:
					check(step)
				}
			}
			check(-1)
			if waiting < 3 {
				t.Fatalf("seed %d: only %d checks while keys waited to be indexed", seed, waiting)
			}
			// All in key order equals the model
			var want []string
			for k, s := range model {
				if !s.dead {
					want = append(want, k)
				}
			}
			slices.SortFunc(want, CompareKeys)
			if got := keysOf(tb); !slices.Equal(got, want) {
				t.Fatalf("seed %d: All differs", seed)
			}
		}
	}
}

// Shuffled keys take the packed sort when every key is a plain integer and
// they span less than 2^28, the general one otherwise; both must give the
// snapshot order, with deleted keys and a first key already in order.
func TestTable_SortShuffled(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  func(i int) string
	}{
		{"dense", func(i int) string { return strconv.Itoa(i) }},
		{"sparse", func(i int) string { return strconv.Itoa(i * 997) }},
		{"far from zero", func(i int) string { return strconv.Itoa(1<<40 + i*4099) }},
		{"span just under 2^28", func(i int) string { return strconv.Itoa(i << 28 / 3000) }},
		{"span of 2^28", func(i int) string { return strconv.Itoa(i << 28 / 2999) }},
		{"one string", func(i int) string {
			if i == 1234 {
				return `"x"`
			}
			return strconv.Itoa(i)
		}},
		{"one fraction", func(i int) string {
			if i == 77 {
				return "76.5"
			}
			return strconv.Itoa(i)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 3000
			rnd := rand.New(rand.NewPCG(1, 2))
			tb := NewTable()
			var want []string
			for j, i := range rnd.Perm(n) {
				k := tc.key(i)
				tb.Apply(record(t, live(k, 100+j)))
				if i%10 == 3 {
					tb.Apply(record(t, dead(k, 100+n+j)))
				} else {
					want = append(want, k)
				}
			}
			slices.SortFunc(want, CompareKeys)
			if got := keysOf(tb); !slices.Equal(got, want) {
				t.Fatalf("All gave %d keys, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
			}
		})
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
