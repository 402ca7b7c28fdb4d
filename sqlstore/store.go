// Package sqlstore keeps a lockstep replica in a SQL database, SQLite
// (embedded, no server) or PostgreSQL, as a replica.Store: one row per live
// record, queryable with the database's own JSON operators, and the
// checkpoint in a metadata table, committed in the same transaction as the
// changes it covers.
//
// Schema, for a table T (by default the endpoint's last path segment):
//
//	T              key (the key's JSON text: 42 and "42" differ), key_sort,
//	               ord (the order value's JSON text), ord_sort, record (the
//	               record's exact bytes: JSON text in SQLite; in PostgreSQL
//	               record is jsonb and raw holds the exact bytes), digest, mark
//	T_tombstones   the deleted keys remembered: key, ord, ord_sort, digest, mark
//	lockstep_meta  tbl, checkpoint (the checkpoint file's JSON), gen, and
//	               the counts of live and tombstone rows
//
// key_sort and ord_sort are follow.AppendSortKey's bytes: ORDER BY
// key_sort, key lists records as a snapshot file does. mark is the resync
// generation that last saw a row: a resync's sweep removes the rows it did
// not see, in the transaction that commits its cursor.
//
// The table is not held in memory: records are looked up in bulk, a batch
// at a time, and written in bulk (COPY in PostgreSQL) inside one
// transaction per commit.
package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/replica"
	"github.com/lockstep/lockstep/state"
)

// Options configure a Store.
type Options struct {
	Wait bool // wait for another writer instead of failing
}

// IsDSN reports whether out names a database rather than a file:
// sqlite:PATH, postgres://… or postgresql://…. A libpq keyword=value string
// ("host=db dbname=ops") counts too, so that it is refused, not taken for a
// file name.
func IsDSN(out string) bool {
	return strings.HasPrefix(out, "sqlite:") || strings.HasPrefix(out, "postgres:") || strings.HasPrefix(out, "postgresql:") ||
		keywordDSN.MatchString(out)
}

var keywordDSN = regexp.MustCompile(`^\s*(host|hostaddr|dbname|user|password|port|sslmode|service)\s*=`)

// Redact shows a DSN with its password hidden.
func Redact(dsn string) string {
	if keywordDSN.MatchString(dsn) {
		return regexp.MustCompile(`(password\s*=\s*)('[^']*'|\S*)`).ReplaceAllString(dsn, "${1}***")
	}
	if strings.HasPrefix(dsn, "postgres") && strings.Contains(dsn, "://") {
		norm, _, ambiguous := escapeUserinfo(dsn)
		if ambiguous >= 0 {
			// Hidden whichever way it reads.
			head, _, _ := strings.Cut(dsn, "://")
			return follow.Redact(head + "://***@" + dsn[ambiguous+1:])
		}
		dsn = norm
	}
	return follow.Redact(dsn)
}

// row is what the Store knows of one key: what the database holds, and what
// it must hold after the next flush.
type row struct {
	key    string
	exists bool // live or a tombstone
	live   bool
	ord    []byte
	digest uint64
	mark   int64
	record []byte // live: the record's bytes, when changed

	inDB        bool // the database holds the key (live if dbLive, else as a tombstone)
	dbLive      bool
	changed     bool // record, ord or liveness changed since the database's
	markChanged bool
}

// db is what a Store needs of a database.
type db interface {
	// setup creates the tables if need be.
	setup(ctx context.Context) error
	begin(ctx context.Context) error
	commit(ctx context.Context) error
	rollback()
	// meta reads the table's row of lockstep_meta; ok is false if none.
	meta(ctx context.Context) (m metaRow, ok bool, err error)
	setMeta(ctx context.Context, m metaRow) error
	// counts counts the rows, for a table that has no row in lockstep_meta.
	counts(ctx context.Context) (live, tombs int, err error)
	// maxKey is the longest key, in bytes, the table can hold (0: any).
	maxKey() int
	// hasRows reports whether the table holds a live row, at once.
	hasRows(ctx context.Context) (bool, error)
	// lookup fills in what the database holds for keys, calling fn for each
	// key it holds.
	lookup(ctx context.Context, keys []string, fn func(key string, live bool, ord []byte, digest uint64, mark int64)) error
	write(ctx context.Context, rows []*row) error
	// unmarked counts the live rows a sweep for gen would remove.
	unmarked(ctx context.Context, gen int64) (int, error)
	// sweep removes them, calling fn (if not nil) for each in key order.
	sweep(ctx context.Context, gen int64, fn func(key, ord []byte) error) (int, error)
	// forget removes the tombstones below an order (as a sort key), or
	// above it.
	forget(ctx context.Context, order []byte, above bool) (int, error)
	// each calls fn with every live record in key order, in one read
	// transaction with meta's checkpoint.
	each(ctx context.Context, fn func(rec []byte) error) (cp []byte, err error)
	lock(ctx context.Context, wait bool) error
	close() error
}

// metaRow is a table's row of lockstep_meta: its checkpoint, and what a run
// needs without reading the table (which could take as long as the table
// is large).
type metaRow struct {
	cp          []byte
	gen         int64
	live, tombs int
}

// A Store keeps a replica in a database table. It is a replica.Store and
// its Table.
type Store struct {
	db      db
	table   string
	secret  string // the password, scrubbed from errors
	fields  follow.DecoderOptions
	opened  bool
	inTx    bool
	gen     int64 // the resync generation rows are marked with
	resync  bool
	live    int
	tombs   int
	rows    map[string]*row
	pending int // rows with changes to write
	// liveAtBegin is the table's size when a resync began: what the
	// mass-deletion guard protects.
	liveAtBegin int

	// fresh: the table was empty when opened, so only keys in written can
	// be in it.
	fresh   bool
	written written
}

// flushAt is how many rows a Store keeps in memory before it writes them
// (within the transaction): enough for bulk writes to pay, small enough to
// keep memory flat whatever the table's size.
const flushAt = 8192

// Open connects to the database named by dsn (sqlite:PATH[?table=T] or a
// postgres:// URL with an optional table=T parameter) and takes its
// writer's lock: a lock file beside a SQLite database, an advisory lock in
// PostgreSQL. The table is created on first use.
func Open(ctx context.Context, dsn string, endpoint string, opts Options) (*Store, error) {
	tg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if tg.table == "" {
		tg.table = defaultTable(endpoint)
	}
	s := &Store{table: tg.table, secret: tg.secret, rows: map[string]*row{}}
	if tg.sqlite != "" {
		s.db, err = openSQLite(ctx, tg.sqlite, tg.table, true)
	} else {
		s.db, err = openPostgres(ctx, tg.postgres, tg.table)
	}
	if err != nil {
		return nil, scrubErr(err, s.secret)
	}
	if err := s.db.lock(ctx, opts.Wait); err != nil {
		s.db.close()
		return nil, scrubErr(err, s.secret)
	}
	return s, nil
}

// Temporary marks errors a following engine may outlive by opening the
// store again: a lost connection, a SQLite file busy with another writer.
type temporaryError struct{ error }

func (e temporaryError) Temporary() bool { return true }
func (e temporaryError) Unwrap() error   { return e.error }

// Open implements replica.Store.
func (s *Store) Open(ctx context.Context, id replica.Identity, resync bool) (*state.Checkpoint, string, error) {
	s.fields = id.Fields
	if s.inTx {
		s.db.rollback()
		s.inTx = false
	}
	clear(s.rows)
	s.pending, s.resync = 0, false
	if err := s.db.setup(ctx); err != nil {
		return nil, "", s.wrap(err)
	}
	m, ok, err := s.db.meta(ctx)
	if err != nil {
		return nil, "", s.wrap(err)
	}
	s.gen, s.live, s.tombs = m.gen, m.live, m.tombs
	if !ok {
		if s.live, s.tombs, err = s.db.counts(ctx); err != nil {
			return nil, "", s.wrap(err)
		}
	}
	// A table dropped (and so created again, empty) or emptied by hand
	// behind a checkpoint that counts records: what the checkpoint covers
	// is gone. (Cheap to tell, unlike rows deleted one by one.)
	emptied := false
	if ok && m.live > 0 {
		has, err := s.db.hasRows(ctx)
		if err != nil {
			return nil, "", s.wrap(err)
		}
		if !has {
			emptied = true
			if s.live, s.tombs, err = s.db.counts(ctx); err != nil {
				return nil, "", s.wrap(err)
			}
		}
	}
	s.opened = true
	s.fresh = s.live+s.tombs == 0
	s.written = written{}
	var cp *state.Checkpoint
	if ok {
		if cp, err = state.DecodeCheckpoint(m.cp, "lockstep_meta of table "+s.table); err != nil && !resync {
			return nil, "", err
		}
	}
	if cp != nil {
		err := cp.Check(state.KindSync, id.EndpointID, id.Endpoint, id.Fields)
		var mm *state.MismatchError
		if errors.As(err, &mm) && mm.What == "kind" || err != nil && !resync {
			return nil, "", fmt.Errorf("table %s: %w", s.table, err)
		}
	}
	switch {
	case resync && cp != nil && cp.Check(state.KindSync, id.EndpointID, id.Endpoint, id.Fields) == nil:
		return cp, "", nil
	case resync:
		return nil, "", nil
	case emptied:
		return nil, fmt.Sprintf("table %s is empty, but its checkpoint was written with %d records in it (dropped or emptied by hand?)", s.table, m.live), nil
	case cp == nil && s.live+s.tombs > 0:
		return nil, fmt.Sprintf("table %s holds records but no checkpoint", s.table), nil
	}
	return cp, "", nil
}

// wrap names the table in an error, and marks those that may pass
// temporary.
func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	if notADatabase(err) {
		return fmt.Errorf("table %s: %w (the file is not a SQLite database: give sqlite: a file of its own)", s.table, err)
	}
	if busy(err) {
		return temporaryError{fmt.Errorf("table %s: %w (a writer of another table in this SQLite file held its write lock for over 10s; a file per table avoids that)", s.table, err)}
	}
	err = fmt.Errorf("table %s: %w", s.table, scrubErr(err, s.secret))
	if connectionLost(err) {
		return temporaryError{err}
	}
	return err
}

// Table implements replica.Store.
func (s *Store) Table() replica.Table { return s }

func (s *Store) tx(ctx context.Context) error {
	if s.inTx {
		return nil
	}
	if err := s.db.begin(ctx); err != nil {
		return s.wrap(err)
	}
	s.inTx = true
	return nil
}

// Prefetch implements replica.Prefetcher: it learns what the database holds
// for the batch's keys, in one query.
func (s *Store) Prefetch(batch []follow.Record) error {
	ctx := context.Background()
	var want []string
	for i := range batch {
		k := batch[i].Key
		if _, ok := s.rows[string(k)]; !ok {
			ks := string(k)
			s.rows[ks] = &row{key: ks}
			if !s.fresh || s.written.mayHave(ks) {
				want = append(want, ks)
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	if err := s.tx(ctx); err != nil {
		return err
	}
	err := s.db.lookup(ctx, want, func(key string, live bool, ord []byte, digest uint64, mark int64) {
		r := s.rows[key]
		r.exists, r.live, r.ord, r.digest, r.mark = true, live, ord, digest, mark
		r.inDB, r.dbLive = true, live
	})
	return s.wrap(err)
}

// Apply implements replica.Table, by the same rules as state.Table.Apply.
func (s *Store) Apply(rec *follow.Record) (state.Op, error) {
	if limit := s.db.maxKey(); limit > 0 && len(rec.Key) > limit {
		return state.OpNone, fmt.Errorf("table %s: a record's key is %d bytes (%.40s…), over the %d that the database's index holds: keep this endpoint in SQLite or a file",
			s.table, len(rec.Key), rec.Key, limit)
	}
	r, ok := s.rows[string(rec.Key)]
	if !ok {
		if err := s.Prefetch([]follow.Record{*rec}); err != nil {
			return state.OpNone, err
		}
		r = s.rows[string(rec.Key)]
	}
	if err := s.tx(context.Background()); err != nil {
		return state.OpNone, err
	}
	wasPending := r.changed || r.markChanged
	op := s.decide(r, rec)
	if !wasPending && (r.changed || r.markChanged) {
		s.pending++
		if s.fresh {
			s.written.add(r.key)
		}
	}
	if s.pending >= flushAt || len(s.rows) >= 4*flushAt {
		if err := s.flush(context.Background()); err != nil {
			return op, err
		}
	}
	return op, nil
}

func (s *Store) decide(r *row, rec *follow.Record) state.Op {
	digest := rec.Digest()
	if r.exists {
		authoritative := s.resync && r.mark != s.gen
		if s.resync && r.mark != s.gen {
			r.mark, r.markChanged = s.gen, true
		}
		same := digest == r.digest && rec.Deleted == !r.live
		if !authoritative {
			c := follow.CompareOrder(rec.Order, r.ord)
			if c < 0 || c == 0 && same {
				return state.OpNone
			}
		} else if same {
			return state.OpSeen
		}
	}
	wasLive, existed := r.live, r.exists
	r.exists, r.live = true, !rec.Deleted
	r.ord = append(r.ord[:0], rec.Order...)
	r.digest, r.mark = digest, s.gen
	r.record = append(r.record[:0], rec.Bytes...)
	r.changed = true
	switch {
	case rec.Deleted && wasLive:
		s.live--
		s.tombs++
		return state.OpDelete
	case rec.Deleted:
		if !existed {
			s.tombs++
		}
		return state.OpTombstone
	case wasLive:
		return state.OpUpdate
	}
	if existed {
		s.tombs--
	}
	s.live++
	return state.OpInsert
}

// flush writes the changed rows and forgets every row it knows.
func (s *Store) flush(ctx context.Context) error {
	if s.pending > 0 {
		batch := make([]*row, 0, s.pending)
		for _, r := range s.rows {
			if r.changed || r.markChanged {
				batch = append(batch, r)
			}
		}
		// In key order, as the tables' primary keys are: each insert lands
		// beside the last, not on a page of its own.
		slices.SortFunc(batch, func(a, b *row) int { return strings.Compare(a.key, b.key) })
		if err := s.db.write(ctx, batch); err != nil {
			return s.wrap(err)
		}
	}
	clear(s.rows)
	s.pending = 0
	return nil
}

// BeginResync implements replica.Table: rows seen from now on are marked
// with a new generation.
func (s *Store) BeginResync() error {
	if err := s.flush(context.Background()); err != nil {
		return err
	}
	s.gen++
	s.resync = true
	s.liveAtBegin = s.live
	return nil
}

// EndResync implements replica.Table: the mark and sweep, in the database.
func (s *Store) EndResync(maxDelete float64, removed func(state.Removed) error) (int, error) {
	ctx := context.Background()
	if !s.resync {
		return 0, state.ErrNotResyncing
	}
	if err := s.tx(ctx); err != nil {
		return 0, err
	}
	if err := s.flush(ctx); err != nil {
		return 0, err
	}
	n, err := s.db.unmarked(ctx, s.gen)
	if err != nil {
		return 0, s.wrap(err)
	}
	if s.liveAtBegin >= state.MassDeleteMinimum && float64(n) > maxDelete*float64(s.liveAtBegin) {
		return 0, &state.MassDeleteError{Remove: n, Of: s.liveAtBegin, Limit: maxDelete}
	}
	var each func(key, ord []byte) error
	if removed != nil {
		each = func(key, ord []byte) error { return removed(state.Removed{Key: key, Order: ord}) }
	}
	n, err = s.db.sweep(ctx, s.gen, each)
	if err != nil {
		return n, s.wrap(err)
	}
	s.live -= n
	s.resync = false
	return n, nil
}

// Len implements replica.Table.
func (s *Store) Len() int { return s.live }

// Tombstones implements replica.Table.
func (s *Store) Tombstones() int { return s.tombs }

// ForgetTombstones implements replica.Table.
func (s *Store) ForgetTombstones(below follow.Order) (int, error) { return s.forget(below, false) }

// ForgetTombstonesAbove implements replica.Table.
func (s *Store) ForgetTombstonesAbove(above follow.Order) (int, error) { return s.forget(above, true) }

func (s *Store) forget(order follow.Order, above bool) (int, error) {
	ctx := context.Background()
	if err := s.tx(ctx); err != nil {
		return 0, err
	}
	if err := s.flush(ctx); err != nil {
		return 0, err
	}
	n, err := s.db.forget(ctx, follow.AppendSortKey(nil, []byte(order)), above)
	if err != nil {
		return 0, s.wrap(err)
	}
	s.tombs -= n
	return n, nil
}

// Commit implements replica.Store: the changes and the checkpoint, in one
// transaction.
func (s *Store) Commit(ctx context.Context, cp *state.Checkpoint, _ bool) error {
	if err := s.tx(ctx); err != nil {
		return err
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	cp.Kind = state.KindSync
	cp.Snapshot = state.SnapshotID{Records: s.live}
	var b strings.Builder
	if err := state.EncodeCheckpoint(&b, cp); err != nil {
		return err
	}
	if err := s.db.setMeta(ctx, metaRow{cp: []byte(b.String()), gen: s.gen, live: s.live, tombs: s.tombs}); err != nil {
		return s.wrap(err)
	}
	if err := s.db.commit(ctx); err != nil {
		s.inTx = false
		return s.wrap(err)
	}
	s.inTx = false
	return nil
}

// Close implements replica.Store: what was not committed is rolled back.
func (s *Store) Close() error {
	if s.inTx {
		s.db.rollback()
	}
	return s.db.close()
}

// Read calls fn with every live record of the table in dsn, in key order,
// and returns its checkpoint (nil if it has none), both from one read
// transaction: what dump prints. It takes no lock; writers go on.
func Read(ctx context.Context, dsn string, fn func(rec []byte) error) (*state.Checkpoint, error) {
	tg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	table := tg.table
	var d db
	if tg.sqlite != "" {
		if table == "" {
			if table, err = onlyTable(ctx, tg.sqlite); err != nil {
				return nil, err
			}
		}
		d, err = openSQLite(ctx, tg.sqlite, table, false)
	} else {
		if table == "" {
			return nil, errors.New("which table? add ?table=NAME")
		}
		d, err = openPostgres(ctx, tg.postgres, table)
	}
	if err != nil {
		return nil, scrubErr(err, tg.secret)
	}
	defer d.close()
	raw, err := d.each(ctx, fn)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", table, scrubErr(err, tg.secret))
	}
	if raw == nil {
		return nil, nil
	}
	return state.DecodeCheckpoint(raw, "lockstep_meta of table "+table)
}

// sortGone sorts swept rows as a snapshot is sorted: by sort key, then key
// text.
func sortGone[T any](rows []T, keys func(T) (sortKey, key []byte)) {
	slices.SortFunc(rows, func(a, b T) int {
		sa, ka := keys(a)
		sb, kb := keys(b)
		if c := bytes.Compare(sa, sb); c != 0 {
			return c
		}
		return bytes.Compare(ka, kb)
	})
}

// eachRecord calls fn with the one column of each row: database/sql's rows
// and pgx's both.
func eachRecord(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}, fn func([]byte) error) error {
	for rows.Next() {
		var rec []byte
		if err := rows.Scan(&rec); err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return rows.Err()
}
