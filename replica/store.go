package replica

import (
	"context"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/state"
)

// A Table is what an Engine applies records to. *state.Table (through
// Memory) keeps it in memory; a database store keeps it in the database.
type Table interface {
	// Apply applies one record, last writer wins (PROTOCOL 5.2), and says
	// what it did.
	Apply(r *follow.Record) (state.Op, error)
	// BeginResync starts a mark and sweep: every key applied from now on
	// is marked.
	BeginResync() error
	// EndResync removes every live key not marked since BeginResync, unless
	// that would remove more than maxDelete (0 to 1) of a table of at least
	// state.MassDeleteMinimum records: then it removes nothing and returns
	// a *state.MassDeleteError. It calls removed (if not nil) for each key
	// it removes, in key order, and returns how many it removed.
	EndResync(maxDelete float64, removed func(state.Removed) error) (int, error)
	// Len is the number of live records.
	Len() int
	// Tombstones is the number of deleted keys remembered;
	// ForgetTombstones forgets those below an order value and
	// ForgetTombstonesAbove those above one, each returning how many it
	// forgot.
	Tombstones() int
	ForgetTombstones(below follow.Order) (int, error)
	ForgetTombstonesAbove(above follow.Order) (int, error)
}

// Identity is what a store's checkpoint must have been written for.
type Identity struct {
	EndpointID string // follow.Follower.EndpointID
	Endpoint   string // redacted, for messages
	Fields     follow.DecoderOptions
}

// A Store keeps a replica between runs: a table (or none, when only a
// cursor is kept) and the checkpoint of where to resume.
type Store interface {
	// Open checks the store against id and returns the checkpoint to
	// resume from: nil for a new store. When resync is asked for, it is the
	// checkpoint written for id (nil if none): the resync starts from 0,
	// and the cursor before it is what a cursor moved back is measured by. A
	// non-empty resync reason means the store holds records but no cursor
	// that can be trusted with them, so a full resync must reconcile them.
	// A checkpoint written for another endpoint, other fields or by another
	// kind of command is a *state.MismatchError (unless resync, for the
	// first two).
	Open(ctx context.Context, id Identity, resync bool) (cp *state.Checkpoint, resyncReason string, err error)
	// Table is the table the store keeps, or nil if it keeps none.
	Table() Table
	// Commit makes durable every change applied to Table since the last
	// Commit, together with cp: a crash at any instant leaves the one or
	// the other, never a table ahead of or behind its checkpoint. changed
	// says whether the table changed since the last Commit.
	Commit(ctx context.Context, cp *state.Checkpoint, changed bool) error
	// Close releases the store and its lock.
	Close() error
}

// A Prefetcher is a Table that looks records up in bulk: the Engine gives
// it each batch of records before applying them one by one. The batch is
// valid only during the call.
type Prefetcher interface {
	Prefetch(batch []follow.Record) error
}

// An Expecter is a Table that can ready itself for a load of about keys
// keys into it while it is empty (state.Table.Expect). The Engine tells one
// that is also a Prefetcher, from the first batch of a response of known
// size into it (the response's length over the batch's mean record size),
// and tells it Expect(0) once caught up.
type Expecter interface {
	Expect(keys int)
}

// A Store whose errors may pass (a database connection lost) marks them
// with a Temporary method that returns true: a following Engine then
// opens the store again and resumes from its last commit.
type temporary interface{ Temporary() bool }

// Memory adapts an in-memory *state.Table (state.NewTable or
// state.NewIndex) to Table.
func Memory(t *state.Table) Table { return memory{t} }

type memory struct{ *state.Table }

func (m memory) Apply(r *follow.Record) (state.Op, error) { return m.Table.Apply(r), nil }

func (m memory) Prefetch(batch []follow.Record) error { m.Table.Prefetch(batch); return nil }

func (m memory) BeginResync() error { m.Table.BeginResync(); return nil }

func (m memory) ForgetTombstones(below follow.Order) (int, error) {
	return m.Table.ForgetTombstones(below), nil
}

func (m memory) ForgetTombstonesAbove(above follow.Order) (int, error) {
	return m.Table.ForgetTombstonesAbove(above), nil
}

func (m memory) EndResync(maxDelete float64, each func(state.Removed) error) (int, error) {
	return endResync(m.Table, maxDelete, each)
}

func endResync(t *state.Table, maxDelete float64, each func(state.Removed) error) (int, error) {
	removed, err := t.EndResync(maxDelete)
	if err != nil {
		return 0, err
	}
	if each != nil {
		for _, r := range removed {
			if err := each(r); err != nil {
				return len(removed), err
			}
		}
	}
	return len(removed), nil
}
