package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/state"
	"modernc.org/sqlite" // a pure Go SQLite: the binary stays one static file
)

// sqliteDB is a table in a SQLite database, in WAL mode so that readers
// never block the writer nor it them.
type sqliteDB struct {
	path  string
	t     string // quoted table name
	tomb  string // quoted tombstones table name
	name  string
	db    *sql.DB
	tx    *sql.Tx
	lockF *state.Lock
}

// openSQLite opens the database at path: to write (creating it), or, for
// readers, read-only, never creating it and never waiting for the writer.
func openSQLite(_ context.Context, path, table string, write bool) (*sqliteDB, error) {
	if path == "" {
		return nil, errors.New("sqlite: wants a file, as in sqlite:servers.db")
	}
	resolved, err := state.ResolveFile(path)
	if err != nil {
		return nil, err
	}
	// FULL: a commit is on disk when it returns, as a snapshot is once
	// renamed. IMMEDIATE: the writer's transactions take the write lock at
	// once, so none fails half way for want of it.
	dsn := "file:" + (&url.URL{Path: resolved}).EscapedPath() +
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=temp_store(MEMORY)&_txlock=immediate"
	if !write {
		if _, err := os.Stat(resolved); err != nil {
			return nil, err
		}
		dsn = "file:" + (&url.URL{Path: resolved}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	// One connection: the writer's transaction and its reads are one.
	db.SetMaxOpenConns(1)
	return &sqliteDB{path: resolved, name: table, t: quote(table), tomb: quote(table + "_tombstones"), db: db}, nil
}

// busy reports SQLite's "database is locked": a writer of another table in
// the same file held the write lock longer than busy_timeout.
func busy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code()&0xff == 5 || se.Code()&0xff == 6)
}

// notADatabase reports SQLITE_NOTADB: the file is something else.
func notADatabase(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == 26
}

func quote(ident string) string { return `"` + ident + `"` }

func (d *sqliteDB) lock(ctx context.Context, wait bool) error {
	var err error
	// One writer per table, as in PostgreSQL: syncs of other tables in the
	// same file take turns at SQLite's own write lock, a commit at a time.
	name := d.path + "-" + d.name
	if wait {
		d.lockF, err = state.WaitLock(ctx, name)
	} else {
		d.lockF, err = state.TryLock(name)
	}
	return err
}

func (d *sqliteDB) close() error {
	err := d.db.Close()
	if d.lockF != nil {
		d.lockF.Unlock()
	}
	return err
}

func (d *sqliteDB) setup(ctx context.Context) error {
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS ` + d.t + ` (
			key TEXT PRIMARY KEY, key_sort BLOB NOT NULL,
			ord TEXT NOT NULL, ord_sort BLOB NOT NULL,
			record TEXT NOT NULL, digest INTEGER NOT NULL, mark INTEGER NOT NULL) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS ` + d.tomb + ` (
			key TEXT PRIMARY KEY, ord TEXT NOT NULL, ord_sort BLOB NOT NULL,
			digest INTEGER NOT NULL, mark INTEGER NOT NULL) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS lockstep_meta (tbl TEXT PRIMARY KEY, checkpoint TEXT NOT NULL, gen INTEGER NOT NULL,
			live INTEGER NOT NULL, tombstones INTEGER NOT NULL)`,
	} {
		if _, err := d.db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func (d *sqliteDB) begin(ctx context.Context) (err error) {
	d.tx, err = d.db.BeginTx(ctx, nil)
	return err
}

func (d *sqliteDB) commit(context.Context) error {
	err := d.tx.Commit()
	d.tx = nil
	return err
}

func (d *sqliteDB) rollback() {
	if d.tx != nil {
		d.tx.Rollback()
		d.tx = nil
	}
}

// q is the transaction when one is open, else the database.
func (d *sqliteDB) q() interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
	PrepareContext(context.Context, string) (*sql.Stmt, error)
} {
	if d.tx != nil {
		return d.tx
	}
	return d.db
}

func (d *sqliteDB) meta(ctx context.Context) (m metaRow, ok bool, err error) {
	err = d.q().QueryRowContext(ctx, `SELECT checkpoint, gen, live, tombstones FROM lockstep_meta WHERE tbl = ?`, d.name).Scan(&m.cp, &m.gen, &m.live, &m.tombs)
	if errors.Is(err, sql.ErrNoRows) {
		// Lockstep once kept the case of table names. SQLite's ignore it:
		// "Servers" is this very table, whose row is renamed.
		res, err := d.q().ExecContext(ctx, `UPDATE lockstep_meta SET tbl = ? WHERE lower(tbl) = ?`, d.name, d.name)
		if err != nil {
			return m, false, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return d.meta(ctx)
		}
		return m, false, nil
	}
	return m, err == nil, err
}

func (d *sqliteDB) setMeta(ctx context.Context, m metaRow) error {
	_, err := d.q().ExecContext(ctx, `INSERT INTO lockstep_meta (tbl, checkpoint, gen, live, tombstones) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (tbl) DO UPDATE SET checkpoint = excluded.checkpoint, gen = excluded.gen, live = excluded.live, tombstones = excluded.tombstones`,
		d.name, string(m.cp), m.gen, m.live, m.tombs)
	return err
}

func (d *sqliteDB) maxKey() int { return 0 }

func (d *sqliteDB) hasRows(ctx context.Context) (has bool, err error) {
	err = d.q().QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+d.t+`)`).Scan(&has)
	return has, err
}

func (d *sqliteDB) counts(ctx context.Context) (live, tombs int, err error) {
	err = d.q().QueryRowContext(ctx, `SELECT (SELECT count(*) FROM `+d.t+`), (SELECT count(*) FROM `+d.tomb+`)`).Scan(&live, &tombs)
	return live, tombs, err
}

func (d *sqliteDB) lookup(ctx context.Context, keys []string, fn func(string, bool, []byte, uint64, int64)) error {
	list, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	rows, err := d.q().QueryContext(ctx, `
		SELECT key, 1, ord, digest, mark FROM `+d.t+` WHERE key IN (SELECT value FROM json_each(?1))
		UNION ALL
		SELECT key, 0, ord, digest, mark FROM `+d.tomb+` WHERE key IN (SELECT value FROM json_each(?1))`, string(list))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var live bool
		var ord []byte
		var digest, mark int64
		if err := rows.Scan(&key, &live, &ord, &digest, &mark); err != nil {
			return err
		}
		fn(key, live, ord, uint64(digest), mark)
	}
	return rows.Err()
}

func (d *sqliteDB) write(ctx context.Context, batch []*row) error {
	q := d.q()
	stmts := map[string]*sql.Stmt{}
	stmt := func(query string) (*sql.Stmt, error) {
		if s, ok := stmts[query]; ok {
			return s, nil
		}
		s, err := q.PrepareContext(ctx, query)
		stmts[query] = s
		return s, err
	}
	defer func() {
		for _, s := range stmts {
			if s != nil {
				s.Close()
			}
		}
	}()
	var (
		upTomb = `INSERT INTO ` + d.tomb + ` (key, ord, ord_sort, digest, mark) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET ord = excluded.ord, ord_sort = excluded.ord_sort, digest = excluded.digest, mark = excluded.mark`
		delLive  = `DELETE FROM ` + d.t + ` WHERE key = ?`
		delTomb  = `DELETE FROM ` + d.tomb + ` WHERE key = ?`
		markLive = `UPDATE ` + d.t + ` SET mark = ? WHERE key = ?`
		markTomb = `UPDATE ` + d.tomb + ` SET mark = ? WHERE key = ?`
	)
	exec := func(query string, args ...any) error {
		s, err := stmt(query)
		if err != nil {
			return err
		}
		_, err = s.ExecContext(ctx, args...)
		return err
	}
	// New and changed live records, the bulk of a load, go in statements
	// of many rows each: a statement costs more than a row.
	var live []any
	flushLive := func() error {
		if len(live) == 0 {
			return nil
		}
		n := len(live) / 7
		query := `INSERT INTO ` + d.t + ` (key, key_sort, ord, ord_sort, record, digest, mark) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?),", n), ",") +
			` ON CONFLICT (key) DO UPDATE SET key_sort = excluded.key_sort, ord = excluded.ord, ord_sort = excluded.ord_sort,
			record = excluded.record, digest = excluded.digest, mark = excluded.mark`
		err := exec(query, live...)
		live = live[:0]
		return err
	}
	for _, r := range batch {
		var err error
		switch {
		case r.changed && r.live:
			live = append(live, r.key, follow.AppendSortKey(nil, []byte(r.key)), string(r.ord), follow.AppendSortKey(nil, r.ord), string(r.record), int64(r.digest), r.mark)
			if len(live) >= 7*rowsPerInsert {
				err = flushLive()
			}
			if err == nil && r.inDB && !r.dbLive {
				err = exec(delTomb, r.key)
			}
		case r.changed:
			err = exec(upTomb, r.key, string(r.ord), follow.AppendSortKey(nil, r.ord), int64(r.digest), r.mark)
			if err == nil && r.inDB && r.dbLive {
				err = exec(delLive, r.key)
			}
		case r.live:
			err = exec(markLive, r.mark, r.key)
		default:
			err = exec(markTomb, r.mark, r.key)
		}
		if err != nil {
			return fmt.Errorf("write key %s: %w", r.key, err)
		}
	}
	return flushLive()
}

// rowsPerInsert: 7 parameters a row stay well under SQLite's 32,766.
const rowsPerInsert = 256

func (d *sqliteDB) unmarked(ctx context.Context, gen int64) (n int, err error) {
	err = d.q().QueryRowContext(ctx, `SELECT count(*) FROM `+d.t+` WHERE mark <> ?`, gen).Scan(&n)
	return n, err
}

func (d *sqliteDB) sweep(ctx context.Context, gen int64, fn func(key, ord []byte) error) (int, error) {
	if fn == nil {
		// Nobody wants the keys: no sort of what may be most of the table.
		res, err := d.q().ExecContext(ctx, `DELETE FROM `+d.t+` WHERE mark <> ?`, gen)
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		return int(n), err
	}
	rows, err := d.q().QueryContext(ctx, `SELECT key, ord FROM `+d.t+` WHERE mark <> ? ORDER BY key_sort, key`, gen)
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		var key, ord []byte
		if err := rows.Scan(&key, &ord); err != nil {
			rows.Close()
			return n, err
		}
		if err := fn(key, ord); err != nil {
			rows.Close()
			return n, err
		}
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return n, err
	}
	_, err = d.q().ExecContext(ctx, `DELETE FROM `+d.t+` WHERE mark <> ?`, gen)
	return n, err
}

func (d *sqliteDB) forget(ctx context.Context, order []byte, above bool) (int, error) {
	cmp := "<"
	if above {
		cmp = ">"
	}
	res, err := d.q().ExecContext(ctx, `DELETE FROM `+d.tomb+` WHERE ord_sort `+cmp+` ?`, order)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (d *sqliteDB) each(ctx context.Context, fn func([]byte) error) ([]byte, error) {
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var cp []byte
	switch err := tx.QueryRowContext(ctx, `SELECT checkpoint FROM lockstep_meta WHERE lower(tbl) = ?`, d.name).Scan(&cp); {
	case errors.Is(err, sql.ErrNoRows), err != nil && strings.Contains(err.Error(), "no such table"):
		return nil, fmt.Errorf("no lockstep table %s here", d.name)
	case err != nil:
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT record FROM `+d.t+` ORDER BY key_sort, key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return cp, eachRecord(rows, fn)
}

// onlyTable is the one lockstep table in the SQLite database at path.
func onlyTable(ctx context.Context, path string) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", err
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	if err != nil {
		return "", err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT tbl FROM lockstep_meta ORDER BY tbl`)
	if err != nil {
		return "", fmt.Errorf("no lockstep table here (%v)", err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var t string
		rows.Scan(&t)
		tables = append(tables, t)
	}
	switch len(tables) {
	case 0:
		return "", errors.New("no lockstep table here")
	case 1:
		return tables[0], nil
	}
	return "", fmt.Errorf("it holds the tables %s: say which with ?table=NAME", strings.Join(tables, ", "))
}
