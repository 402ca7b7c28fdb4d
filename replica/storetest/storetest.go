// Package storetest is the suite of cases every replica.Store passes: the
// JSONL file, SQLite and PostgreSQL run the same table of cases, through a
// real Engine against a real endpoint (follow/followtest).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/follow/followtest"
	"github.com/lockstep/lockstep/replica"
	"github.com/lockstep/lockstep/state"
)

// A Place is where one case keeps its replica.
type Place struct {
	// Open opens the store there (taking its lock), for one run.
	Open func(t *testing.T) replica.Store
	// Read returns the live records there, in the order dump prints them.
	Read func(t *testing.T) []string
}

// Run runs every case, each in a new Place.
func Run(t *testing.T, newPlace func(t *testing.T) Place) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, &env{t: t, Place: newPlace(t)})
		})
	}
}

type env struct {
	t *testing.T
	Place
}

func rec(id, order any, extra string) string {
	return fmt.Sprintf(`{"id":%v,"updated_at":%v,"deleted_at":null%s}`, id, order, extra)
}

func tomb(id, order any) string {
	return fmt.Sprintf(`{"id":%v,"updated_at":%v,"deleted_at":%v}`, id, order, order)
}

func finite(t *testing.T, recs ...string) *followtest.Server {
	srv := followtest.NewUnstartedServer(recs...)
	srv.Finite = true
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// sync is one run of lockstep sync: open, catch up, commit, close.
func (e *env) sync(url string, mod func(*replica.Config)) (*replica.Engine, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	store := e.Open(e.t)
	defer store.Close()
	cfg := replica.Config{Follow: follow.Config{URL: url, Idle: 100 * time.Millisecond, ResyncQuiet: time.Second}, Store: store, MaxDelete: 0.5}
	if mod != nil {
		mod(&cfg)
	}
	eng, err := replica.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return eng, eng.Run(ctx)
}

func (e *env) mustSync(url string, mod func(*replica.Config)) *replica.Engine {
	e.t.Helper()
	eng, err := e.sync(url, mod)
	if err != nil {
		e.t.Fatal(err)
	}
	return eng
}

func (e *env) want(recs ...string) {
	e.t.Helper()
	if got := e.Read(e.t); !slices.Equal(got, recs) {
		e.t.Fatalf("replica holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(recs, "\n"))
	}
}

// Odd are record fields that JSON allows and PostgreSQL's jsonb refuses
// (all but the surrogate pair, which it takes), for key 1, 2, ….
var Odd = []string{
	`,"n":1e999999`,
	`,"s":"\ud83d\ude00"`,
	`,"s":"\u0000"`,
	`,"s":"\udc00"`,
	`,"n":-1E-99999`,
	`,"s":"\ud83d","t":"x"`,
	`,"n":1` + strings.Repeat("0", 2000),
}

func numbered(n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, rec(i, i, ""))
	}
	return out
}

var cases = []struct {
	name string
	run  func(t *testing.T, e *env)
}{
	{"first run copies the table, sorted by key", func(t *testing.T, e *env) {
		srv := finite(t, rec(`"b"`, 1, ""), rec(10, 2, ""), rec(2, 3, ""), rec(`"a"`, 4, ""), rec(-1, 5, ""), rec(1.5, 6, ""))
		eng := e.mustSync(srv.URL+"/", nil)
		e.want(rec(-1, 5, ""), rec(1.5, 6, ""), rec(2, 3, ""), rec(10, 2, ""), rec(`"a"`, 4, ""), rec(`"b"`, 1, ""))
		if st := eng.Stats(); st.Inserts != 6 || eng.Cursor() != "6" || eng.Len() != 6 {
			t.Fatalf("stats %+v cursor %s len %d", st, eng.Cursor(), eng.Len())
		}
	}},
	{"an empty endpoint gives an empty replica", func(t *testing.T, e *env) {
		srv := finite(t)
		e.mustSync(srv.URL+"/", nil)
		e.want()
	}},
	{"last writer wins, tombstones delete and are remembered", func(t *testing.T, e *env) {
		srv := finite(t, rec(1, 1, `,"v":1`), rec(2, 2, ""), rec(3, 3, ""))
		e.mustSync(srv.URL+"/", nil)
		srv.Append(rec(1, 4, `,"v":2`), tomb(2, 5))
		eng := e.mustSync(srv.URL+"/", nil)
		e.want(rec(1, 4, `,"v":2`), rec(3, 3, ""))
		if st := eng.Stats(); st.Updates != 1 || st.Deletes != 1 || eng.Cursor() != "5" {
			t.Fatalf("stats %+v cursor %s", st, eng.Cursor())
		}
		// A stale update of a deleted key, and of a live one, changes
		// nothing (sent out of order, so that the cursor does not drop them):
		// the tombstone is remembered, in the store.
		other := finite(t, rec(7, 1, ""), rec(8, 8, ""))
		other.Faults(followtest.Fault{After: 2, Inject: []byte(tomb(7, 9) + "\n" + rec(7, 4, `,"stale":1`) + "\n" + rec(8, 3, `,"stale":1`) + "\n")})
		e2 := &env{t: t, Place: e.Place}
		if _, err := e2.sync(other.URL+"/", func(c *replica.Config) { c.Resync, c.MaxDelete = true, 1 }); err != nil {
			t.Fatal(err)
		}
		e.want(rec(8, 8, ""))
	}},
	{"same order value, new bytes: an update, across runs", func(t *testing.T, e *env) {
		srv := finite(t, rec(1, 5, `,"v":1`), rec(2, 5, `,"v":1`))
		e.mustSync(srv.URL+"/", nil)
		srv.Append(rec(2, 5, `,"v":2`))
		eng := e.mustSync(srv.URL+"/", nil)
		e.want(rec(1, 5, `,"v":1`), rec(2, 5, `,"v":2`))
		if eng.Stats().Updates != 1 {
			t.Fatalf("stats %+v", eng.Stats())
		}
		// Nothing new: nothing applied.
		if eng := e.mustSync(srv.URL+"/", nil); eng.Stats().Applied != 0 {
			t.Fatalf("stats %+v", eng.Stats())
		}
	}},
	{"a resync sweeps what the endpoint lost", func(t *testing.T, e *env) {
		srv := finite(t, numbered(10)...)
		e.mustSync(srv.URL+"/", nil)
		small := finite(t, numbered(10)[:7]...)
		eng := e.mustSync(small.URL+"/", func(c *replica.Config) { c.Resync = true })
		e.want(numbered(7)...)
		if eng.Stats().Deletes != 3 {
			t.Fatalf("stats %+v", eng.Stats())
		}
	}},
	{"the mass-deletion guard refuses and leaves the replica", func(t *testing.T, e *env) {
		srv := finite(t, numbered(150)...)
		e.mustSync(srv.URL+"/", nil)
		small := finite(t, numbered(150)[:20]...)
		_, err := e.sync(small.URL+"/", func(c *replica.Config) { c.Resync = true })
		var md *state.MassDeleteError
		if !errors.As(err, &md) || md.Remove != 130 || md.Of != 150 {
			t.Fatalf("err %v", err)
		}
		e.want(numbered(150)...)
		e.mustSync(small.URL+"/", func(c *replica.Config) { c.Resync, c.MaxDelete = true, 1 })
		e.want(numbered(20)...)
	}},
	{"another endpoint is refused, unless resyncing", func(t *testing.T, e *env) {
		eu := finite(t, rec(1, 1, ""))
		e.mustSync(eu.URL+"/eu/", nil)
		_, err := e.sync(eu.URL+"/us/", nil)
		if !errors.Is(err, state.ErrMismatch) {
			t.Fatalf("err %v", err)
		}
		e.want(rec(1, 1, ""))
		e.mustSync(eu.URL+"/us/", func(c *replica.Config) { c.Resync = true })
		e.want(rec(1, 1, ""))
	}},
	{"a resync forgets the tombstones above its cursor", func(t *testing.T, e *env) {
		// The endpoint is restored from a backup taken before key 2 was
		// deleted at 10: the resync moves the cursor back to 1, and key 2,
		// written again at 3, must not be taken for a stale update.
		srv := finite(t, rec(1, 1, ""), rec(2, 2, ""))
		e.mustSync(srv.URL+"/", nil)
		srv.Append(tomb(2, 10))
		e.mustSync(srv.URL+"/", nil)
		e.want(rec(1, 1, ""))
		backup := finite(t, rec(1, 1, ""))
		if eng := e.mustSync(backup.URL+"/", func(c *replica.Config) { c.Resync = true }); eng.Cursor() != "1" {
			t.Fatalf("cursor after the resync %s, want 1", eng.Cursor())
		}
		backup.Append(rec(2, 3, `,"v":"again"`))
		e.mustSync(backup.URL+"/", nil)
		e.want(rec(1, 1, ""), rec(2, 3, `,"v":"again"`))
	}},
	{"records a database's JSON type refuses are kept byte for byte", func(t *testing.T, e *env) {
		var first, second []string
		for i, odd := range Odd {
			first = append(first, rec(i+1, i+1, odd))
			second = append(second, rec(i+1, 100+i, odd+`,"v":2`))
		}
		srv := finite(t, first...)
		e.mustSync(srv.URL+"/", nil) // loaded as new rows
		e.want(first...)
		srv.Append(second...)
		e.mustSync(srv.URL+"/", nil) // merged over old ones
		e.want(second...)
	}},
	{"a resync marks unchanged records and keeps them", func(t *testing.T, e *env) {
		srv := finite(t, numbered(5)...)
		e.mustSync(srv.URL+"/", nil)
		eng := e.mustSync(srv.URL+"/", func(c *replica.Config) { c.Resync = true })
		e.want(numbered(5)...)
		if st := eng.Stats(); st.Deletes != 0 || st.Applied != 0 {
			t.Fatalf("stats %+v", st)
		}
	}},
}
