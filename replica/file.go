package replica

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/state"
)

// FileOptions configure a File store.
type FileOptions struct {
	Perm fs.FileMode // state.ModeShared or state.ModePrivate
	Wait bool        // wait for another process's lock instead of failing
	// Notify hears what the store decides on its own (a damaged snapshot
	// ignored for a resync); may be nil.
	Notify func(error)
}

// File is the store of lockstep sync: the JSONL snapshot FILE, its
// checkpoint FILE.checkpoint, and the lock FILE.lock, held from OpenFile to
// Close. The snapshot is loaded only once a record must be applied to it,
// so a run that finds nothing new reads the checkpoint and no more.
type File struct {
	path   string
	opts   FileOptions
	lock   *state.Lock
	fields follow.DecoderOptions

	table     *state.Table
	loaded    bool
	cp        *state.Checkpoint // the checkpoint on disk, trusted
	onDisk    *state.Checkpoint // the sync checkpoint on disk, trusted or not: a commit's intent rewrites it
	snap      state.SnapshotID  // the snapshot on disk
	haveSnap  bool
	mustWrite bool // the snapshot on disk must be replaced even if nothing changes
}

// OpenFile takes the lock of the snapshot at path and returns its store.
// When another process holds the lock, the error wraps state.ErrLocked.
func OpenFile(ctx context.Context, path string, opts FileOptions) (*File, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s is a folder, not a snapshot file", path)
	}
	lock, err := takeLock(ctx, path, opts.Wait)
	if err != nil {
		return nil, err
	}
	// Under the lock, no other run's temp files can be in use.
	removed, err := lock.RemoveStaleTemps(path, state.CheckpointPath(path))
	if err != nil {
		lock.Unlock()
		return nil, err
	}
	if err := tighten(opts.Perm, path, state.CheckpointPath(path)); err != nil {
		lock.Unlock()
		return nil, err
	}
	if len(removed) > 0 && opts.Notify != nil {
		what := "temp files"
		if len(removed) == 1 {
			what = "temp file"
		}
		opts.Notify(fmt.Errorf("removed %d %s an interrupted run left", len(removed), what))
	}
	return &File{path: path, opts: opts, lock: lock, table: state.NewTable()}, nil
}

// tighten takes from existing files what perm does not grant, at once:
// --private must not wait for the next write to hide a replica.
func tighten(perm fs.FileMode, paths ...string) error {
	if perm == 0 {
		return nil
	}
	for _, p := range paths {
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&^perm == 0 {
			continue
		}
		if err := os.Chmod(p, st.Mode().Perm()&perm); err != nil {
			return err
		}
	}
	return nil
}

func takeLock(ctx context.Context, path string, wait bool) (*state.Lock, error) {
	if wait {
		return state.WaitLock(ctx, path)
	}
	return state.TryLock(path)
}

// A BindingError is a snapshot that is not the one its checkpoint was
// written with: edited, truncated, or restored from elsewhere.
type BindingError struct {
	Path      string
	Have, Was state.SnapshotID
}

func (e *BindingError) Error() string {
	have := e.Have.String()
	if e.Have.Records < 0 {
		have = fmt.Sprintf("%d bytes", e.Have.Size)
	}
	return fmt.Sprintf("%s does not match its checkpoint (it has %s; the checkpoint was written with %s): was it edited, truncated or restored from elsewhere?",
		e.Path, have, e.Was)
}

// A NotSnapshotError is a file that a resync would overwrite but that is not
// a lockstep snapshot.
type NotSnapshotError struct {
	Path string
	Err  error
}

func (e *NotSnapshotError) Error() string {
	return fmt.Sprintf("%s is not a lockstep snapshot, so it is not overwritten: %v", e.Path, e.Err)
}

func (e *NotSnapshotError) Unwrap() error { return e.Err }

// Open implements Store.
func (s *File) Open(_ context.Context, id Identity, resync bool) (*state.Checkpoint, string, error) {
	s.fields = id.Fields
	cp, err := state.ReadCheckpoint(state.CheckpointPath(s.path))
	var damaged *state.DamagedError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		cp = nil
	case errors.As(err, &damaged) && resync:
		cp = nil
	case err != nil:
		return nil, "", err
	}
	if cp != nil {
		err := cp.Check(state.KindSync, id.EndpointID, id.Endpoint, id.Fields)
		s.onDisk = cp
		var mm *state.MismatchError
		if errors.As(err, &mm) && mm.What == "kind" {
			return nil, "", fmt.Errorf("%s: %w", state.CheckpointPath(s.path), err)
		}
		if err != nil && !resync {
			return nil, "", err
		}
	}
	st, err := os.Stat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, "", err
	default:
		s.haveSnap = true
	}
	if resync {
		if s.haveSnap {
			if err := s.load(nil); err != nil {
				if cp == nil && damaged == nil {
					return nil, "", &NotSnapshotError{s.path, err}
				}
				// Ours, but damaged: the resync rebuilds it from nothing.
				if s.opts.Notify != nil {
					s.opts.Notify(fmt.Errorf("ignoring the damaged snapshot for the resync: %w", err))
				}
				s.table, s.mustWrite = state.NewTable(), true
			}
		}
		s.loaded = true
		if cp != nil && cp.Check(state.KindSync, id.EndpointID, id.Endpoint, id.Fields) == nil {
			return cp, "", nil
		}
		return nil, "", nil
	}
	switch {
	case cp == nil && s.haveSnap:
		// A resync will reconcile it, if it is a snapshot at all: a file
		// that is not one is never overwritten.
		if err := s.load(nil); err != nil {
			return nil, "", &NotSnapshotError{s.path, err}
		}
		s.loaded = true
		return nil, "there is no checkpoint beside the snapshot", nil
	case cp == nil:
		s.loaded, s.mustWrite = true, true
		return nil, "", nil
	case !s.haveSnap && cp.Snapshot.Records > 0:
		s.loaded, s.mustWrite = true, true
		return nil, "the snapshot is missing", nil
	case !s.haveSnap:
		s.loaded, s.mustWrite = true, true
	case cp.Kind != "" && st.Size() != cp.Snapshot.Size && st.Size() != cp.Next.Size:
		return nil, "", &BindingError{Path: s.path, Have: state.SnapshotID{Size: st.Size(), Records: -1}, Was: cp.Snapshot}
	}
	s.cp, s.snap = cp, cp.Snapshot
	next := cp.Next != (state.SnapshotID{}) && st.Size() == cp.Next.Size
	if s.haveSnap && (next || !st.ModTime().Equal(cp.Snapshot.ModTime)) {
		// Touched since it was written (edited, restored, or only
		// touched), or perhaps the next one: check it whole now rather
		// than trust it.
		if err := s.load(cp); err != nil {
			return nil, "", err
		}
		if cp.Next != (state.SnapshotID{}) && s.snap.Same(cp.Next) && !s.snap.Same(cp.Snapshot) {
			// A commit a crash cut short between its two renames: the
			// snapshot is the next one, and goes with the cursor that
			// commit was writing (after a resync, lower than the old).
			adopted := *cp
			adopted.Snapshot, adopted.Next = cp.Next, state.SnapshotID{}
			adopted.Cursor, adopted.CursorKeys = cp.NextCursor, nil
			s.cp = &adopted
			return &adopted, "", nil
		}
	}
	return cp, "", nil
}

// load reads the snapshot, checking it against the checkpoint's binding
// when there is one.
func (s *File) load(cp *state.Checkpoint) error {
	st, err := os.Stat(s.path)
	if err != nil {
		return err
	}
	id, err := s.table.ReadSnapshot(s.path, s.fields)
	if err != nil {
		return err
	}
	id.ModTime = st.ModTime()
	s.loaded, s.snap = true, id
	if cp == nil {
		return nil
	}
	if cp.Kind == "" {
		// Version 1 checkpoints bound only the record count.
		if id.Records != cp.Snapshot.Records {
			return &BindingError{Path: s.path, Have: id, Was: cp.Snapshot}
		}
		return nil
	}
	// A snapshot a crash left in place before its checkpoint was written
	// is the checkpoint's next one (Open adopts that commit's cursor).
	if !id.Same(cp.Snapshot) && (cp.Next == state.SnapshotID{} || !id.Same(cp.Next)) {
		return &BindingError{Path: s.path, Have: id, Was: cp.Snapshot}
	}
	return nil
}

// ensure loads the snapshot on first use.
func (s *File) ensure() error {
	if s.loaded {
		return nil
	}
	if err := s.load(s.cp); err != nil {
		s.table = state.NewTable()
		return err
	}
	return nil
}

// Table implements Store.
func (s *File) Table() Table { return fileTable{s} }

// fileTable is the File's table, loaded on first use.
type fileTable struct{ s *File }

func (t fileTable) Apply(r *follow.Record) (state.Op, error) {
	if err := t.s.ensure(); err != nil {
		return state.OpNone, err
	}
	return t.s.table.Apply(r), nil
}

// Prefetch readies a loaded table. It never loads one: the batch may be
// only records the follower drops (those at the cursor, sent again), and a
// run with nothing new must not read the snapshot.
func (t fileTable) Prefetch(batch []follow.Record) error {
	if t.s.loaded {
		t.s.table.Prefetch(batch)
	}
	return nil
}

// Expect passes the hint on to the table, loaded or not: the Engine gives
// it only when the table is empty, and loading reads into the same table.
func (t fileTable) Expect(keys int) { t.s.table.Expect(keys) }

func (t fileTable) BeginResync() error {
	if err := t.s.ensure(); err != nil {
		return err
	}
	t.s.table.BeginResync()
	return nil
}

func (t fileTable) EndResync(maxDelete float64, each func(state.Removed) error) (int, error) {
	if err := t.s.ensure(); err != nil {
		return 0, err
	}
	return endResync(t.s.table, maxDelete, each)
}

func (t fileTable) Len() int {
	if !t.s.loaded {
		return t.s.snap.Records
	}
	return t.s.table.Len()
}

func (t fileTable) Tombstones() int { return t.s.table.Tombstones() }

func (t fileTable) ForgetTombstones(below follow.Order) (int, error) {
	return t.s.table.ForgetTombstones(below), nil
}

func (t fileTable) ForgetTombstonesAbove(above follow.Order) (int, error) {
	return t.s.table.ForgetTombstonesAbove(above), nil
}

// Commit implements Store: the snapshot (when the table changed), then the
// checkpoint that binds it, each replaced atomically.
func (s *File) Commit(_ context.Context, cp *state.Checkpoint, changed bool) error {
	if (changed || s.mustWrite) && s.loaded {
		id, err := s.table.ReplaceSnapshot(s.path, s.opts.Perm, func(next state.SnapshotID) error { return s.intend(next, cp.Cursor) })
		if err != nil {
			return fmt.Errorf("write snapshot: %w", err)
		}
		if st, err := os.Stat(s.path); err == nil {
			id.ModTime = st.ModTime()
		}
		s.snap, s.haveSnap, s.mustWrite = id, true, false
	}
	cp.Kind, cp.Snapshot = state.KindSync, s.snap
	if err := state.WriteCheckpoint(state.CheckpointPath(s.path), s.opts.Perm, cp); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	s.onDisk = cp
	return nil
}

// intend records, in the checkpoint on disk, the snapshot about to replace
// the one it binds, so that a crash between the two renames leaves a pair
// the next run accepts. Without a checkpoint there is nothing to bind: a
// snapshot left alone is reconciled by a resync.
func (s *File) intend(next state.SnapshotID, cursor follow.Order) error {
	if s.onDisk == nil {
		return nil
	}
	intent := *s.onDisk
	intent.Next, intent.NextCursor = next, cursor
	if err := state.WriteCheckpoint(state.CheckpointPath(s.path), s.opts.Perm, &intent); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// Records yields the live records of the table in key order, loading the
// snapshot if it is not loaded yet.
func (s *File) Records() (iter.Seq2[[]byte, []byte], error) {
	if err := s.ensure(); err != nil {
		return nil, err
	}
	return s.table.All(), nil
}

// Close implements Store.
func (s *File) Close() error { return s.lock.Unlock() }

// Cursor is the store of lockstep tail --checkpoint: a cursor file of its
// own kind (never a sync checkpoint), locked like a snapshot, keeping no
// table.
type Cursor struct {
	path string
	perm fs.FileMode
	lock *state.Lock
}

// OpenCursor takes the lock of the cursor file at path and returns its
// store.
func OpenCursor(ctx context.Context, path string, perm fs.FileMode, wait bool) (*Cursor, error) {
	lock, err := takeLock(ctx, path, wait)
	if err != nil {
		return nil, err
	}
	if err := tighten(perm, path); err != nil {
		lock.Unlock()
		return nil, err
	}
	return &Cursor{path: path, perm: perm, lock: lock}, nil
}

// Open implements Store. A tail cursor file has no resync: remove it to
// start over.
func (c *Cursor) Open(_ context.Context, id Identity, _ bool) (*state.Checkpoint, string, error) {
	cp, err := state.ReadCheckpoint(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	if err := cp.Check(state.KindTail, id.EndpointID, id.Endpoint, id.Fields); err != nil {
		return nil, "", fmt.Errorf("%s: %w", c.path, err)
	}
	return cp, "", nil
}

// Table implements Store: a cursor file keeps none.
func (c *Cursor) Table() Table { return nil }

// Commit implements Store.
func (c *Cursor) Commit(_ context.Context, cp *state.Checkpoint, _ bool) error {
	cp.Kind = state.KindTail
	if err := state.WriteCheckpoint(c.path, c.perm, cp); err != nil {
		return fmt.Errorf("write %s: %w", c.path, err)
	}
	return nil
}

// Close implements Store.
func (c *Cursor) Close() error { return c.lock.Unlock() }

// ReadFile loads the snapshot at path and its checkpoint (nil if it has
// none), without the lock: readers never wait for a writer. A snapshot that
// does not match its checkpoint is a *BindingError. A sync that replaces
// both while they are read is waited out.
func ReadFile(path string, fields func(*state.Checkpoint) follow.DecoderOptions) (*state.Table, *state.Checkpoint, error) {
	for attempt := 0; ; attempt++ {
		cp, err := state.ReadCheckpoint(state.CheckpointPath(path))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			cp = nil
		case err != nil:
			return nil, nil, err
		}
		s := &File{path: path, table: state.NewTable(), fields: fields(cp)}
		if cp != nil && cp.Kind != "" && cp.Kind != state.KindSync {
			return nil, nil, fmt.Errorf("%s: %w", state.CheckpointPath(path), &state.MismatchError{What: "kind", Was: cp.Kind, Now: state.KindSync})
		}
		err = s.load(cp)
		var bind *BindingError
		if errors.As(err, &bind) && attempt < 3 {
			if again, rerr := state.ReadCheckpoint(state.CheckpointPath(path)); rerr == nil && !again.Snapshot.Same(cp.Snapshot) {
				continue
			}
		}
		if err != nil {
			return nil, nil, err
		}
		return s.table, cp, nil
	}
}
