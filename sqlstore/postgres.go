package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/state"
)

// pgDB is a table in PostgreSQL, written through one connection that also
// holds the advisory lock: if the connection is lost, so is the lock, and
// both are taken again before anything more is written.
type pgDB struct {
	dsn  string
	name string
	t    string
	tomb string
	conn *pgx.Conn
	tx   pgx.Tx
	wait bool
}

func openPostgres(ctx context.Context, dsn, table string) (*pgDB, error) {
	d := &pgDB{dsn: dsn, name: table, t: quote(table), tomb: quote(table + "_tombstones")}
	return d, d.connect(ctx)
}

func (d *pgDB) connect(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, d.dsn)
	if err != nil {
		return err
	}
	d.conn = conn
	return nil
}

// pgQuerier is what a connection and a transaction share.
type pgQuerier interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
	CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error)
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}

func (d *pgDB) q() pgQuerier {
	if d.tx != nil {
		return d.tx
	}
	return d.conn
}

func (d *pgDB) lock(ctx context.Context, wait bool) error {
	d.wait = wait
	for {
		var ok bool
		err := d.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended('lockstep:' || current_database() || '.' || current_schema() || '.' || $1, 0))`, d.name).Scan(&ok)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if !wait {
			return fmt.Errorf("%w: another lockstep sync writes table %s", state.ErrLocked, d.name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// close gives the lock back before it hangs up: the server would drop it
// only once it notices, and the next sync could find it still taken.
func (d *pgDB) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !d.conn.IsClosed() {
		d.conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
	}
	return d.conn.Close(ctx)
}

func (d *pgDB) setup(ctx context.Context) error {
	if d.conn.IsClosed() {
		// Reopened after the connection was lost: the lock went with it.
		if err := d.connect(ctx); err != nil {
			return err
		}
		if err := d.lock(ctx, d.wait); err != nil {
			return err
		}
	}
	// jsonb and the raw text hold any Unicode only in a UTF-8 database;
	// elsewhere one record would stop the replica.
	var enc string
	if err := d.conn.QueryRow(ctx, `SHOW server_encoding`).Scan(&enc); err != nil {
		return err
	}
	if enc != "UTF8" {
		return fmt.Errorf("database %s is encoded %s: lockstep needs UTF8 (CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0)", d.conn.Config().Database, enc)
	}
	// Two syncs setting up their first tables at once would both try to
	// create lockstep_meta: one waits for the other.
	err := pgx.BeginFunc(ctx, d.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('lockstep:setup:' || current_database(), 0))`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS lockstep_meta (tbl text PRIMARY KEY, checkpoint text NOT NULL, gen bigint NOT NULL,
			live bigint NOT NULL, tombstones bigint NOT NULL)`); err != nil {
			return err
		}
		// Lockstep once kept the case of table names: "Servers" is another
		// table than servers here, and must not be left behind unsaid.
		var old string
		switch err := tx.QueryRow(ctx, `SELECT tbl FROM lockstep_meta WHERE lower(tbl) = $1 AND tbl <> $1`, d.name).Scan(&old); {
		case err == nil:
			return fmt.Errorf(`an earlier lockstep wrote this replica as table "%[1]s" (table names are lower case now): rename it with ALTER TABLE "%[1]s" RENAME TO %[2]s; ALTER TABLE "%[1]s_tombstones" RENAME TO %[2]s_tombstones; UPDATE lockstep_meta SET tbl = '%[2]s' WHERE tbl = '%[1]s'`, old, d.name)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		for _, q := range []string{
			`CREATE TABLE IF NOT EXISTS ` + d.t + ` (
				key text PRIMARY KEY, key_sort bytea NOT NULL,
				ord text NOT NULL, ord_sort bytea NOT NULL,
				raw text NOT NULL, record jsonb, digest bigint NOT NULL, mark bigint NOT NULL)`,
			`CREATE TABLE IF NOT EXISTS ` + d.tomb + ` (
				key text PRIMARY KEY, ord text NOT NULL, ord_sort bytea NOT NULL,
				digest bigint NOT NULL, mark bigint NOT NULL)`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = d.conn.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS lockstep_stage (key text, key_sort bytea, ord text, ord_sort bytea,
		raw text, jsonb_ok bool, digest bigint, mark bigint, live bool, changed bool)`)
	return err
}

func (d *pgDB) begin(ctx context.Context) (err error) {
	d.tx, err = d.conn.Begin(ctx)
	return err
}

func (d *pgDB) commit(ctx context.Context) error {
	err := d.tx.Commit(ctx)
	d.tx = nil
	return err
}

func (d *pgDB) rollback() {
	if d.tx != nil {
		d.tx.Rollback(context.Background())
		d.tx = nil
	}
}

func (d *pgDB) meta(ctx context.Context) (m metaRow, ok bool, err error) {
	var cp string
	err = d.q().QueryRow(ctx, `SELECT checkpoint, gen, live, tombstones FROM lockstep_meta WHERE tbl = $1`, d.name).Scan(&cp, &m.gen, &m.live, &m.tombs)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, false, nil
	}
	m.cp = []byte(cp)
	return m, err == nil, err
}

func (d *pgDB) setMeta(ctx context.Context, m metaRow) error {
	_, err := d.q().Exec(ctx, `INSERT INTO lockstep_meta (tbl, checkpoint, gen, live, tombstones) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tbl) DO UPDATE SET checkpoint = excluded.checkpoint, gen = excluded.gen, live = excluded.live, tombstones = excluded.tombstones`,
		d.name, string(m.cp), m.gen, m.live, m.tombs)
	return err
}

// maxKey keeps keys within a btree index entry (2,704 bytes for an 8 KiB
// page), which the primary key needs: past it PostgreSQL refuses the row.
func (d *pgDB) maxKey() int { return 2600 }

func (d *pgDB) hasRows(ctx context.Context) (has bool, err error) {
	err = d.q().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+d.t+`)`).Scan(&has)
	return has, err
}

func (d *pgDB) counts(ctx context.Context) (live, tombs int, err error) {
	err = d.q().QueryRow(ctx, `SELECT (SELECT count(*) FROM `+d.t+`), (SELECT count(*) FROM `+d.tomb+`)`).Scan(&live, &tombs)
	return live, tombs, err
}

func (d *pgDB) lookup(ctx context.Context, keys []string, fn func(string, bool, []byte, uint64, int64)) error {
	rows, err := d.q().Query(ctx, `
		SELECT key, true, ord, digest, mark FROM `+d.t+` WHERE key = ANY($1)
		UNION ALL
		SELECT key, false, ord, digest, mark FROM `+d.tomb+` WHERE key = ANY($1)`, keys)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key, ord string
		var live bool
		var digest, mark int64
		if err := rows.Scan(&key, &live, &ord, &digest, &mark); err != nil {
			return err
		}
		fn(key, live, []byte(ord), uint64(digest), mark)
	}
	return rows.Err()
}

// write stages the rows with COPY, then merges them in one round trip; rows
// that are all new live records (loading a table) are copied straight in.
func (d *pgDB) write(ctx context.Context, batch []*row) error {
	if allNew(batch) {
		data := make([][]any, len(batch))
		for i, r := range batch {
			var record any
			if jsonbSafe(r.record) {
				record = string(r.record)
			}
			data[i] = []any{r.key, follow.AppendSortKey(nil, []byte(r.key)), string(r.ord), follow.AppendSortKey(nil, r.ord),
				string(r.record), record, int64(r.digest), r.mark}
		}
		_, err := d.q().CopyFrom(ctx, pgx.Identifier{d.name},
			[]string{"key", "key_sort", "ord", "ord_sort", "raw", "record", "digest", "mark"}, pgx.CopyFromRows(data))
		return err
	}
	data := make([][]any, len(batch))
	for i, r := range batch {
		var raw any
		ok := false
		if r.changed && r.live {
			raw, ok = string(r.record), jsonbSafe(r.record)
		}
		data[i] = []any{r.key, follow.AppendSortKey(nil, []byte(r.key)), string(r.ord), follow.AppendSortKey(nil, r.ord),
			raw, ok, int64(r.digest), r.mark, r.live, r.changed}
	}
	q := d.q()
	if _, err := q.CopyFrom(ctx, pgx.Identifier{"lockstep_stage"},
		[]string{"key", "key_sort", "ord", "ord_sort", "raw", "jsonb_ok", "digest", "mark", "live", "changed"},
		pgx.CopyFromRows(data)); err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM ` + d.t + ` t USING lockstep_stage s WHERE t.key = s.key AND s.changed AND NOT s.live`)
	b.Queue(`DELETE FROM ` + d.tomb + ` t USING lockstep_stage s WHERE t.key = s.key AND s.changed AND s.live`)
	b.Queue(`INSERT INTO ` + d.t + ` (key, key_sort, ord, ord_sort, raw, record, digest, mark)
		SELECT key, key_sort, ord, ord_sort, raw, CASE WHEN jsonb_ok THEN raw::jsonb END, digest, mark
		FROM lockstep_stage WHERE changed AND live
		ON CONFLICT (key) DO UPDATE SET key_sort = excluded.key_sort, ord = excluded.ord, ord_sort = excluded.ord_sort,
		raw = excluded.raw, record = excluded.record, digest = excluded.digest, mark = excluded.mark`)
	b.Queue(`INSERT INTO ` + d.tomb + ` (key, ord, ord_sort, digest, mark)
		SELECT key, ord, ord_sort, digest, mark FROM lockstep_stage WHERE changed AND NOT live
		ON CONFLICT (key) DO UPDATE SET ord = excluded.ord, ord_sort = excluded.ord_sort, digest = excluded.digest, mark = excluded.mark`)
	b.Queue(`UPDATE ` + d.t + ` t SET mark = s.mark FROM lockstep_stage s WHERE t.key = s.key AND NOT s.changed AND s.live`)
	b.Queue(`UPDATE ` + d.tomb + ` t SET mark = s.mark FROM lockstep_stage s WHERE t.key = s.key AND NOT s.changed AND NOT s.live`)
	b.Queue(`TRUNCATE lockstep_stage`)
	return q.SendBatch(ctx, b).Close()
}

// allNew reports whether every row is a live record for a key the table
// does not hold.
func allNew(batch []*row) bool {
	for _, r := range batch {
		if !r.changed || !r.live || r.inDB {
			return false
		}
	}
	return true
}

// jsonbSafe reports whether PostgreSQL's jsonb takes a valid JSON record:
// it refuses \u0000, lone surrogates and numbers beyond its numeric type,
// all of which JSON allows. Such a record keeps its exact bytes in raw, and
// a NULL record: one odd record must not stop the replica.
func jsonbSafe(b []byte) bool {
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch {
			case c == '"':
				inString = false
			case c == '\\' && i+5 < len(b) && b[i+1] == 'u':
				switch h := hex4(b[i+2 : i+6]); {
				case h == 0, h >= 0xdc00 && h < 0xe000:
					return false
				case h >= 0xd800 && h < 0xdc00:
					if i+11 >= len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
						return false
					}
					if l := hex4(b[i+8 : i+12]); l < 0xdc00 || l >= 0xe000 {
						return false
					}
					i += 6
				}
				i += 5
			case c == '\\':
				i++
			}
			continue
		}
		switch {
		case c == '"':
			inString = true
		case c == '-' || c >= '0' && c <= '9':
			j := i
			for j < len(b) && strings.IndexByte("+-.eE0123456789", b[j]) >= 0 {
				j++
			}
			if !numericSafe(b[i:j]) {
				return false
			}
			i = j - 1
		}
	}
	return true
}

// numericSafe reports whether PostgreSQL's numeric holds a JSON number: its
// exponent must stay within ±1000, and its digits within a few thousand
// (both well inside what numeric allows).
func numericSafe(num []byte) bool {
	if len(num) > 1000 {
		return false
	}
	e := bytes.IndexAny(num, "eE")
	if e < 0 {
		return true
	}
	exp := bytes.TrimLeft(bytes.TrimLeft(num[e+1:], "+-"), "0")
	return len(exp) < 4
}

// hex4 decodes the 4 hex digits of a \u escape (already validated).
func hex4(h []byte) int {
	n, _ := strconv.ParseUint(string(h), 16, 16)
	return int(n)
}

func (d *pgDB) unmarked(ctx context.Context, gen int64) (n int, err error) {
	err = d.q().QueryRow(ctx, `SELECT count(*) FROM `+d.t+` WHERE mark <> $1`, gen).Scan(&n)
	return n, err
}

func (d *pgDB) sweep(ctx context.Context, gen int64, fn func(key, ord []byte) error) (int, error) {
	if fn == nil {
		tag, err := d.q().Exec(ctx, `DELETE FROM `+d.t+` WHERE mark <> $1`, gen)
		return int(tag.RowsAffected()), err
	}
	rows, err := d.q().Query(ctx, `DELETE FROM `+d.t+` WHERE mark <> $1 RETURNING key, ord, key_sort`, gen)
	if err != nil {
		return 0, err
	}
	type gone struct{ key, ord, sort []byte }
	var removed []gone
	for rows.Next() {
		var g gone
		var key, ord string
		if err := rows.Scan(&key, &ord, &g.sort); err != nil {
			rows.Close()
			return 0, err
		}
		g.key, g.ord = []byte(key), []byte(ord)
		removed = append(removed, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	sortGone(removed, func(g gone) ([]byte, []byte) { return g.sort, g.key })
	for _, g := range removed {
		if err := fn(g.key, g.ord); err != nil {
			return len(removed), err
		}
	}
	return len(removed), nil
}

func (d *pgDB) forget(ctx context.Context, order []byte, above bool) (int, error) {
	cmp := "<"
	if above {
		cmp = ">"
	}
	tag, err := d.q().Exec(ctx, `DELETE FROM `+d.tomb+` WHERE ord_sort `+cmp+` $1`, order)
	return int(tag.RowsAffected()), err
}

func (d *pgDB) each(ctx context.Context, fn func([]byte) error) ([]byte, error) {
	tx, err := d.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	var cp string
	switch err := tx.QueryRow(ctx, `SELECT checkpoint FROM lockstep_meta WHERE tbl = $1`, d.name).Scan(&cp); {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("no lockstep table %s here", d.name)
	case err != nil:
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P01" {
			return nil, fmt.Errorf("no lockstep table %s here", d.name)
		}
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT raw FROM `+d.t+` ORDER BY key_sort, key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return []byte(cp), eachRecord(rows, fn)
}

// connectionLost reports errors after which the connection is gone but the
// database may come back: a restart, a network failure.
func connectionLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &ne) || errors.As(err, &ce) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.Timeout(err) || strings.Contains(err.Error(), "conn closed")
}
