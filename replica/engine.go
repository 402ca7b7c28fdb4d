// Package replica keeps a replica of a lockstep endpoint: an Engine runs a
// follow.Follower, applies what it delivers to a Table, and commits the
// table and the cursor to a Store, by the protocol's rules. It is the one
// place those rules live; lockstep's commands only configure it.
//
// What an Engine guarantees:
//   - A record is applied before the cursor moves past it, and a Store is
//     given the cursor only with the changes it covers: a checkpoint never
//     runs ahead of its table, so a crash at any instant loses nothing.
//   - A full resync (410 Gone, asked for, or a table without a trusted
//     cursor) is swept only on strong evidence that it is complete (see
//     follow.Config.ResyncQuiet), never commits half way, and is refused by
//     the mass-deletion guard if it would remove more than MaxDelete of a
//     table: sync's removals and tail's inferred tombstones alike.
//   - Nothing is committed in the middle of a resync; a finishing run
//     commits once caught up, or, when cancelled, what it had applied.
//   - Tombstones are remembered so that a stale update cannot resurrect a
//     key, and forgotten once they can no longer matter.
package replica

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/state"
)

// BadRecords says what an Engine does with a bad record (PROTOCOL 7).
type BadRecords int

const (
	FailOnBadRecord BadRecords = iota // stop with the error
	WarnOnBadRecord                   // report a NoticeBadRecord and go on
	SkipBadRecord                     // count it and go on
)

// Config configures an Engine.
type Config struct {
	Follow follow.Config // the endpoint; Resync is the Engine's to set, and Since and SinceKeys come from the store unless Since is given
	Store  Store         // nil: nothing is kept between runs
	Table  Table         // where records go when Store keeps no table (e.g. Memory(state.NewIndex()))
	Resync bool          // start with a full resync

	MaxDelete  float64    // the mass-deletion guard: the share of the table a sweep may remove (0 to 1)
	BadRecords BadRecords // what to do with a bad record

	// CommitEvery is the least time between two commits while running; 0
	// commits only once caught up (and on cancellation). Slow commits
	// stretch it: waiting 6 × the last commit's cost keeps rewriting a
	// large file under a fifth of the time.
	CommitEvery time.Duration
	// Fresh is how often a caught-up, following engine commits its
	// checkpoint alone to say the replica is still current (5s).
	Fresh time.Duration

	Sink     Sink         // where changes are printed, if anywhere
	Notify   func(Notice) // what to tell the user; may be nil
	Progress func(Stats)  // called now and then while records arrive, and about every second while none do; may be nil
	// Committed is called after each commit that reached the Store, with
	// what it made durable: hooks and metrics act on real changes only.
	// May be nil.
	Committed func(Commit)
}

// A Commit is what one Store.Commit made durable.
type Commit struct {
	Inserts, Updates, Deletes int // changes since the previous commit; all 0 for a checkpoint alone or a rewrite with equal content
	Records                   int // live records after it
	Cursor                    follow.Order
	Duration                  time.Duration // spent in Store.Commit
	// Lag is from the arrival of the oldest change it holds to the end of
	// the commit; 0 when it holds none.
	Lag time.Duration
}

// Changed reports whether the commit changed the replica's content.
func (c Commit) Changed() bool { return c.Inserts+c.Updates+c.Deletes > 0 }

// A Sink receives the changes an Engine applies: every record that changed
// the table, and a tombstone inferred for every key a resync swept away.
// Flush is called before every commit, so a cursor is never committed
// ahead of the output that reflects it.
type Sink interface {
	Change(op state.Op, rec *follow.Record, inferred bool) error
	Flush() error
}

// NoticeKind says what a Notice reports.
type NoticeKind int

const (
	NoticeRetry       NoticeKind = iota // a pass failed and is retried: Err, Delay
	NoticeResync                        // a full resync begins: Err says why (nil when asked for)
	NoticeBadRecord                     // a bad record was skipped (WarnOnBadRecord): Err
	NoticeWarning                       // the endpoint breaks a rule: Err
	NoticeSwept                         // a resync removed Count keys the endpoint no longer has
	NoticeCursorBack                    // a resync left the cursor below the one before it: Previous, Cursor
	NoticeCaughtUp                      // caught up at Cursor
	NoticeReconnected                   // a response began after Count failed attempts over Delay
)

// A Notice is something an Engine tells its user.
type Notice struct {
	Kind     NoticeKind
	Err      error
	Delay    time.Duration
	Count    int
	Cursor   follow.Order
	Previous follow.Order
}

// Stats count what an Engine did.
type Stats struct {
	Applied                   int // records that changed the table
	Inserts, Updates, Deletes int
	Skipped                   int // bad records
	Commits                   int
	Committing                time.Duration // time spent in Store.Commit
	Started                   time.Time
	LastCommit                time.Time // when the last commit ended; zero before any
	CaughtUp                  bool      // the replica is as current as the endpoint, as far as is known
	CaughtUpAt                time.Time // when it last was
	LastContact               time.Time // when the endpoint was last heard from
}

// An Engine keeps one replica. It is not safe for concurrent use.
type Engine struct {
	cfg   Config
	f     *follow.Follower
	table Table
	store Store
	stats Stats

	dirty      bool // the table changed since the last commit
	cpDirty    bool // the checkpoint did
	lastCommit time.Time
	commitCost time.Duration
	caughtAt   time.Time
	contact    time.Time
	id         Identity // of the endpoint, for reopening the store
	// resyncOwed: a resync was asked for or began, and no commit has
	// completed it yet; a store reopened after losing what it had not
	// committed must resync again.
	resyncOwed bool

	committed    Stats     // the counts at the last commit
	firstChange  time.Time // arrival of the oldest change not yet committed
	failures     int       // failed attempts since the last response began
	failingSince time.Time
	loadSize     int64 // a response of this many bytes is loading into an empty table, until expect
	expecting    bool  // the table was told to expect a load, and not yet told it is over
}

// The defaults of Config's durations.
const (
	DefaultFresh = 5 * time.Second
	// progressEvery: records between Progress calls while a backlog pours in.
	progressEvery = 4096
)

// New opens the store and returns an Engine ready to Run. A checkpoint
// that does not fit the endpoint is returned as Store.Open returns it.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Fresh <= 0 {
		cfg.Fresh = DefaultFresh
	}
	cfg.Follow.SkipBadRecords = cfg.BadRecords != FailOnBadRecord
	probe, err := follow.New(cfg.Follow)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, store: cfg.Store, table: cfg.Table, stats: Stats{Started: time.Now()},
		id: Identity{EndpointID: probe.EndpointID(), Endpoint: probe.Endpoint(), Fields: cfg.Follow.Fields}}
	if err := e.open(ctx, cfg.Resync); err != nil {
		return nil, err
	}
	return e, nil
}

// open opens the store and sets the follower up to resume from its
// checkpoint.
func (e *Engine) open(ctx context.Context, resync bool) error {
	fcfg := e.cfg.Follow
	if e.store != nil {
		cp, reason, err := e.store.Open(ctx, e.id, resync)
		if err != nil {
			return err
		}
		if t := e.store.Table(); t != nil {
			e.table = t
		}
		e.dirty, e.cpDirty = false, false
		switch {
		case reason != "":
			resync = true
			e.notify(Notice{Kind: NoticeResync, Err: errors.New(reason)})
		case cp != nil:
			if fcfg.Since == "" {
				fcfg.Since, fcfg.SinceKeys = cp.Cursor, cp.CursorKeys
			}
			e.caughtAt = cp.CaughtUpAt
		default:
			// A new store: write it even if the endpoint has nothing.
			e.dirty = true
		}
	}
	if e.table == nil {
		return errors.New("replica: no table: give Config.Table or a Store that keeps one")
	}
	_, fcfg.Batches = e.table.(Prefetcher)
	if e.cfg.CommitEvery > 0 && fcfg.Tick <= 0 {
		// A commit falls due CommitEvery after the last: the follower must
		// wake the engine then, not a second later, or a change that
		// arrives just after a commit waits for the next tick.
		// (Not below 50ms: an idle engine must not spin.)
		fcfg.Tick = max(min(e.cfg.CommitEvery, follow.DefaultTick), 50*time.Millisecond)
	}
	fcfg.Resync, e.resyncOwed = resync, resync
	f, err := follow.New(fcfg)
	if err != nil {
		return err
	}
	e.f = f
	return nil
}

// Endpoint is the endpoint's URL for display, credentials redacted.
func (e *Engine) Endpoint() string { return e.f.Endpoint() }

// Cursor is the cursor that is (or will be) committed.
func (e *Engine) Cursor() follow.Order {
	c, _ := e.f.Cursor()
	return c
}

// Len is the number of live records in the table.
func (e *Engine) Len() int { return e.table.Len() }

// Stats returns what the Engine has done so far.
func (e *Engine) Stats() Stats {
	st := e.stats
	st.LastCommit, st.CaughtUp, st.CaughtUpAt, st.LastContact = e.lastCommit, e.f.CaughtUp(), e.caughtAt, e.contact
	if c := e.f.LastContact(); c.After(st.LastContact) {
		st.LastContact = c
	}
	return st
}

// Run follows the endpoint and keeps the replica until ctx is cancelled,
// an error stops it, or, when not following, it has caught up. It commits
// before returning nil. When ctx is cancelled it returns ctx.Err(), having
// committed what it applied if it commits as it goes (following, or
// CommitEvery set) and no resync is under way; an engine that commits only
// once caught up commits nothing then. Any other error leaves the store as
// it was at the last commit.
func (e *Engine) Run(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		pass := time.Now()
		err := e.f.Run(ctx, e.handle)
		cancelled := errors.Is(err, context.Canceled) && ctx.Err() != nil
		if err == nil || cancelled && (e.cfg.Follow.Follow || e.cfg.CommitEvery > 0) {
			if cerr := e.commit(context.WithoutCancel(ctx)); cerr != nil {
				return cerr
			}
		}
		var tmp temporary
		if !e.cfg.Follow.Follow || e.store == nil || !errors.As(err, &tmp) || !tmp.Temporary() {
			return err
		}
		// The store lost what it had not committed: resume from its last
		// commit, once it is back. A store that worked for a while starts
		// its backoff over.
		if time.Since(pass) > time.Minute {
			attempt = 0
		}
		for ; ; attempt++ {
			delay := min(time.Second<<min(attempt, 5), 30*time.Second)
			e.notify(Notice{Kind: NoticeRetry, Err: err, Delay: delay})
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(delay):
			}
			if err = e.open(ctx, e.resyncOwed); err == nil {
				break
			}
			if !errors.As(err, &tmp) || !tmp.Temporary() {
				return err
			}
		}
	}
}

func (e *Engine) notify(n Notice) {
	if e.cfg.Notify != nil {
		e.cfg.Notify(n)
	}
}

func (e *Engine) handle(ev follow.Event) error {
	switch ev.Kind {
	case follow.EventConnected:
		e.contact = time.Now()
		if e.failures > 0 {
			e.notify(Notice{Kind: NoticeReconnected, Count: e.failures, Delay: e.contact.Sub(e.failingSince)})
			e.failures = 0
		}
		// A load of known size into an empty table: the first batch
		// tells how large its records are (expect).
		e.loadSize = 0
		if _, ok := e.table.(Expecter); ok && e.table.Len() == 0 && e.table.Tombstones() == 0 {
			e.loadSize = ev.Size
		}
		return e.forgetTombstones()
	case follow.EventRecord:
		return e.apply(ev.Record)
	case follow.EventBatch:
		if e.loadSize > 0 {
			e.expect(ev.Batch)
		}
		if p, ok := e.table.(Prefetcher); ok {
			return p.Prefetch(ev.Batch)
		}
	case follow.EventQuiet:
		return e.quiet()
	case follow.EventCaughtUp:
		if e.expecting {
			// A load of known size is over, or what it said was not so.
			e.table.(Expecter).Expect(0)
			e.expecting = false
		}
		return e.caughtUp(ev)
	case follow.EventRetry:
		if e.failures == 0 {
			e.failingSince = time.Now()
		}
		e.failures++
		e.notify(Notice{Kind: NoticeRetry, Err: ev.Err, Delay: ev.Delay})
	case follow.EventResync:
		if err := e.table.BeginResync(); err != nil {
			return err
		}
		e.resyncOwed = true
		e.notify(Notice{Kind: NoticeResync, Err: ev.Err})
	case follow.EventBadRecord:
		e.stats.Skipped++
		if e.cfg.BadRecords == WarnOnBadRecord {
			e.notify(Notice{Kind: NoticeBadRecord, Err: ev.Err})
		}
	case follow.EventWarning:
		e.notify(Notice{Kind: NoticeWarning, Err: ev.Err})
	}
	return nil
}

// expect tells a table that can use it how many keys the load will
// bring: the response's size over the mean size of the batch's records.
func (e *Engine) expect(batch []follow.Record) {
	if len(batch) == 0 {
		return
	}
	var bytes int
	for i := range batch {
		bytes += len(batch[i].Bytes) + 1
	}
	keys := float64(e.loadSize) * float64(len(batch)) / float64(bytes)
	e.loadSize = 0
	e.table.(Expecter).Expect(int(min(keys, 1<<31)))
	e.expecting = true
}

func (e *Engine) apply(r *follow.Record) error {
	op, err := e.table.Apply(r)
	if err != nil {
		return err
	}
	switch op {
	case state.OpNone:
		return follow.Unchanged
	case state.OpSeen:
		// Nothing to write, but the resync's backlog is still coming.
		return nil
	case state.OpInsert:
		e.stats.Inserts++
	case state.OpUpdate:
		e.stats.Updates++
	case state.OpDelete:
		e.stats.Deletes++
	}
	if e.firstChange.IsZero() {
		e.firstChange = time.Now()
	}
	e.dirty, e.cpDirty = true, true
	e.stats.Applied++
	if e.cfg.Progress != nil && e.stats.Applied%progressEvery == 0 {
		e.cfg.Progress(e.Stats())
	}
	if e.cfg.Sink != nil {
		return e.cfg.Sink.Change(op, r, false)
	}
	return nil
}

func (e *Engine) quiet() error {
	if c := e.f.LastContact(); c.After(e.contact) {
		e.contact = c
	}
	if e.cfg.Progress != nil {
		e.cfg.Progress(e.Stats())
	}
	if e.cfg.Sink != nil {
		if err := e.cfg.Sink.Flush(); err != nil {
			return err
		}
	}
	if e.cfg.Follow.Follow && e.f.CaughtUp() {
		// Caught up and still connected (or polling): the replica is as
		// current as the endpoint, and readers judging its age must see so.
		e.caughtAt = time.Now()
		if time.Since(e.lastCommit) >= e.cfg.Fresh {
			e.cpDirty = true
		}
	}
	return e.maybeCommit()
}

func (e *Engine) caughtUp(ev follow.Event) error {
	now := time.Now()
	e.contact, e.caughtAt, e.cpDirty = now, now, true
	if ev.Resynced {
		if err := e.sweep(ev.Previous); err != nil {
			return err
		}
	}
	e.notify(Notice{Kind: NoticeCaughtUp, Cursor: e.Cursor()})
	if e.cfg.Follow.Follow || e.cfg.CommitEvery > 0 {
		return e.commit(context.Background())
	}
	return nil
}

// sweep ends a resync: the keys it did not send are gone from the endpoint.
func (e *Engine) sweep(previous follow.Order) error {
	cur := e.Cursor()
	var infer func(state.Removed) error
	if e.cfg.Sink != nil {
		infer = func(r state.Removed) error {
			order := []byte(cur)
			if len(order) == 0 || follow.CompareOrder(r.Order, order) > 0 {
				order = r.Order
			}
			rec := InferredTombstone(e.cfg.Follow.Fields, r.Key, order)
			return e.cfg.Sink.Change(state.OpDelete, &rec, true)
		}
	}
	n, err := e.table.EndResync(e.cfg.MaxDelete, infer)
	if err != nil {
		return err
	}
	if cur != "" {
		// The cursor may have moved back (an endpoint restored from a
		// backup): deletions above it are unknown to the endpoint now.
		if _, err := e.table.ForgetTombstonesAbove(cur); err != nil {
			return err
		}
	}
	e.stats.Deletes += n
	if n > 0 {
		if e.firstChange.IsZero() {
			e.firstChange = time.Now()
		}
		e.dirty = true
		e.notify(Notice{Kind: NoticeSwept, Count: n})
	}
	if previous != "" && cur.Compare(previous) < 0 {
		e.notify(Notice{Kind: NoticeCursorBack, Cursor: cur, Previous: previous})
	}
	return nil
}

// InferredTombstone is the tombstone that stands for a key a resync swept
// away: {key, order: order, deleted: order}, with the given field names.
func InferredTombstone(f follow.DecoderOptions, key, order []byte) follow.Record {
	name := func(s string) []byte { b, _ := json.Marshal(s); return b }
	var b []byte
	b = append(append(append(append(b, '{'), name(f.Key)...), ':'), key...)
	b = append(append(append(append(b, ','), name(f.OrderBy)...), ':'), order...)
	b = append(append(append(append(b, ','), name(f.Deleted)...), ':'), order...)
	b = append(b, '}')
	rec, _ := follow.ParseRecord(b, f)
	return rec
}

// forgetTombstones bounds the tombstones a long-running engine remembers:
// once they outnumber both the live records and 10,000, those below the
// cursor just asked for, which can no longer matter (the follower drops
// anything below it), are dropped.
func (e *Engine) forgetTombstones() error {
	if e.f.Resyncing() || e.table.Tombstones() <= max(10_000, e.table.Len()) {
		return nil
	}
	_, err := e.table.ForgetTombstones(e.Cursor())
	return err
}

// maybeCommit commits if something changed and a commit is due.
func (e *Engine) maybeCommit() error {
	if e.cfg.CommitEvery <= 0 && !e.cfg.Follow.Follow {
		return nil
	}
	every := e.cfg.CommitEvery
	if every <= 0 {
		every = time.Second
	}
	if time.Since(e.lastCommit) < max(every, 6*e.commitCost) {
		return nil
	}
	return e.commit(context.Background())
}

// commit flushes the sink, then gives the store the changes and the
// cursor that covers them. Nothing is committed in the middle of a resync:
// readers keep the old table until the new one is complete.
func (e *Engine) commit(ctx context.Context) error {
	if e.store == nil || e.f.Resyncing() || !e.dirty && !e.cpDirty {
		return nil
	}
	if e.cfg.Sink != nil {
		if err := e.cfg.Sink.Flush(); err != nil {
			return err
		}
	}
	start := time.Now()
	cur, keys := e.f.Cursor()
	fields := e.cfg.Follow.Fields
	cp := &state.Checkpoint{
		Endpoint: e.f.Endpoint(), EndpointID: e.f.EndpointID(),
		Key: fields.Key, OrderBy: fields.OrderBy, Deleted: fields.Deleted,
		Cursor: cur, CursorKeys: keys,
		CaughtUpAt: e.caughtAt, LastContactAt: e.contact,
	}
	if err := e.store.Commit(ctx, cp, e.dirty); err != nil {
		return err
	}
	e.dirty, e.cpDirty, e.resyncOwed = false, false, false
	e.lastCommit = time.Now()
	e.commitCost = e.lastCommit.Sub(start)
	e.stats.Committing += e.commitCost
	e.stats.Commits++
	if e.cfg.Committed != nil {
		c := Commit{
			Inserts: e.stats.Inserts - e.committed.Inserts, Updates: e.stats.Updates - e.committed.Updates,
			Deletes: e.stats.Deletes - e.committed.Deletes,
			Records: e.table.Len(), Cursor: cur, Duration: e.commitCost,
		}
		if !e.firstChange.IsZero() {
			c.Lag = e.lastCommit.Sub(e.firstChange)
		}
		e.cfg.Committed(c)
	}
	e.committed, e.firstChange = e.stats, time.Time{}
	return nil
}
