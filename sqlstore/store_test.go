package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/follow/followtest"
	"github.com/lockstep/lockstep/internal/pgtest"
	"github.com/lockstep/lockstep/replica"
	"github.com/lockstep/lockstep/replica/storetest"
	"github.com/lockstep/lockstep/sqlstore"
	"github.com/lockstep/lockstep/state"
)

var postgres *pgtest.Cluster

func TestMain(m *testing.M) {
	var err error
	postgres, err = pgtest.Start()
	if err != nil {
		if pgtest.Required() {
			fmt.Fprintf(os.Stderr, "PostgreSQL is required here (LOCKSTEP_REQUIRE_POSTGRES): %v\n", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "\n*** SKIPPING the PostgreSQL tests: %v ***\n\n", err)
	}
	code := m.Run()
	if postgres != nil {
		postgres.Stop()
	}
	os.Exit(code)
}

// needPostgres skips loudly where PostgreSQL is missing.
func needPostgres(t *testing.T) *pgtest.Cluster {
	t.Helper()
	if postgres == nil {
		t.Skip("*** SKIPPED: no PostgreSQL on this machine (apt-get install postgresql) ***")
	}
	return postgres
}

var tables atomic.Int32

// place is a new table at dsn (a SQLite file or a PostgreSQL database).
func place(dsn string) storetest.Place {
	return storetest.Place{
		Open: func(t *testing.T) replica.Store {
			s, err := sqlstore.Open(context.Background(), dsn, "http://h/", sqlstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Read: func(t *testing.T) []string {
			var out []string
			if _, err := sqlstore.Read(context.Background(), dsn, func(rec []byte) error {
				out = append(out, string(rec))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return out
		},
	}
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Place {
		return place("sqlite:" + filepath.Join(t.TempDir(), "r.db") + "?table=servers")
	})
}

func TestPostgres(t *testing.T) {
	pg := needPostgres(t)
	storetest.Run(t, func(t *testing.T) storetest.Place {
		return place(fmt.Sprintf("%s&table=t%d", pg.DSN, tables.Add(1)))
	})
}

// A PostgreSQL restart under a following sync is survived: what was not
// committed is replayed from the last commit, and changes after the
// restart arrive.
func TestPostgres_RestartSurvived(t *testing.T) {
	pg := needPostgres(t)
	srv := followtest.NewServer(rec(1, 1), rec(2, 2))
	defer srv.Close()
	dsn := fmt.Sprintf("%s&table=restart%d", pg.DSN, tables.Add(1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := sqlstore.Open(ctx, dsn, srv.URL+"/", sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var retries atomic.Int32
	e, err := replica.New(ctx, replica.Config{
		Follow: follow.Config{URL: srv.URL + "/", Follow: true, Idle: 50 * time.Millisecond}, Store: store,
		CommitEvery: 20 * time.Millisecond, MaxDelete: 1,
		Notify: func(n replica.Notice) {
			if n.Kind == replica.NoticeRetry {
				retries.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	read := func() []string {
		var out []string
		sqlstore.Read(context.Background(), dsn, func(r []byte) error { out = append(out, string(r)); return nil })
		return out
	}
	waitFor(t, func() bool { return len(read()) == 2 })
	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	srv.Append(rec(3, 3))
	waitFor(t, func() bool { return len(read()) == 3 })
	srv.Append(rec(4, 4))
	waitFor(t, func() bool { return len(read()) == 4 })
	if retries.Load() == 0 {
		t.Log("the restart was not noticed (no commit fell in it)")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v", err)
	}
	if got := read(); !slices.Equal(got, []string{rec(1, 1), rec(2, 2), rec(3, 3), rec(4, 4)}) {
		t.Fatalf("replica %q", got)
	}
}

// A resync that a PostgreSQL restart interrupts is taken up again, not
// dropped: the records the endpoint lost are still swept.
func TestPostgres_RestartDuringResync(t *testing.T) {
	pg := needPostgres(t)
	dsn := fmt.Sprintf("%s&table=resync%d", pg.DSN, tables.Add(1))
	old := followtest.NewUnstartedServer(rec(1, 1), rec(2, 2), rec(3, 3))
	old.Finite = true
	old.Start()
	defer old.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := func(url string, follows bool, done chan<- error) {
		store, err := sqlstore.Open(ctx, dsn, url, sqlstore.Options{})
		if err != nil {
			done <- err
			return
		}
		defer store.Close()
		e, err := replica.New(ctx, replica.Config{
			Follow: follow.Config{URL: url, Follow: follows, Idle: 50 * time.Millisecond, ResyncQuiet: 2 * time.Second},
			Store:  store, Resync: follows, CommitEvery: 20 * time.Millisecond, MaxDelete: 1,
		})
		if err == nil {
			err = e.Run(ctx)
		}
		done <- err
	}
	done := make(chan error, 1)
	run(old.URL+"/", false, done)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	restored := followtest.NewServer(rec(1, 1), rec(2, 2))
	defer restored.Close()
	go run(restored.URL+"/", true, done)
	time.Sleep(300 * time.Millisecond) // the resync has its records, and waits for quiet
	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	read := func() []string {
		var out []string
		sqlstore.Read(context.Background(), dsn, func(r []byte) error { out = append(out, string(r)); return nil })
		return out
	}
	waitFor(t, func() bool {
		select {
		case err := <-done:
			t.Fatalf("run: %v", err)
		default:
		}
		return len(read()) == 2
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("run: %v", err)
	}
	if got := read(); !slices.Equal(got, []string{rec(1, 1), rec(2, 2)}) {
		t.Fatalf("replica %q", got)
	}
}

func rec(id, order int) string {
	return fmt.Sprintf(`{"id":%d,"updated_at":%d,"deleted_at":null}`, id, order)
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The records jsonb refuses keep their bytes in raw and a NULL record; the
// others, a surrogate pair included, are queryable.
func TestPostgres_RecordColumn(t *testing.T) {
	pg := needPostgres(t)
	table := fmt.Sprintf("odd%d", tables.Add(1))
	var recs []string
	for i, odd := range storetest.Odd {
		recs = append(recs, rec(i+1, i+1)[:len(rec(i+1, i+1))-1]+odd+"}")
	}
	srv := followtest.NewUnstartedServer(recs...)
	srv.Finite = true
	srv.Start()
	defer srv.Close()
	ctx := context.Background()
	if err := syncOnce(pg.DSN+"&table="+table, srv.URL+"/", nil); err != nil {
		t.Fatal(err)
	}
	conn := pgAdmin(t, pg)
	rows, err := conn.Query(ctx, `SELECT key FROM `+table+` WHERE record IS NOT NULL ORDER BY key`)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"2"}) {
		t.Fatalf("keys with a jsonb record: %v, want [2] (the surrogate pair)", keys)
	}
}

// One writer per table: a second writer of the same table is refused, and
// writers of other tables in the same SQLite file or PostgreSQL database
// go on side by side.
func TestOneWriterPerTable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "r.db")
	dbs := map[string]func(table string) string{
		"sqlite": func(table string) string { return "sqlite:" + file + "?table=" + table },
	}
	if postgres != nil {
		dbs["postgres"] = func(table string) string { return postgres.DSN + "&table=" + table }
	}
	for name, dsn := range dbs {
		t.Run(name, func(t *testing.T) {
			n := tables.Add(1)
			a := fmt.Sprintf("a%d", n)
			ctx := context.Background()
			first, err := sqlstore.Open(ctx, dsn(a), "http://h/", sqlstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			if _, err := sqlstore.Open(ctx, dsn(a), "http://h/", sqlstore.Options{}); !errors.Is(err, state.ErrLocked) {
				t.Fatalf("second writer of table %s: %v, want ErrLocked", a, err)
			}
			other, err := sqlstore.Open(ctx, dsn(fmt.Sprintf("b%d", n)), "http://h/", sqlstore.Options{})
			if err != nil {
				t.Fatalf("writer of another table: %v", err)
			}
			other.Close()
		})
	}
}

// Syncs that set up their first tables in a new database at the same time
// all succeed: none trips over another's lockstep_meta.
func TestPostgres_ConcurrentSetup(t *testing.T) {
	pg := needPostgres(t)
	ctx := context.Background()
	admin := pgAdmin(t, pg)
	for round := range 3 {
		name := fmt.Sprintf("setup%d_%d", tables.Add(1), round)
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatal(err)
		}
		dsn := strings.Replace(pg.DSN, "/postgres?", "/"+name+"?", 1)
		errs := make(chan error, 6)
		for i := range cap(errs) {
			go func() {
				s, err := sqlstore.Open(ctx, fmt.Sprintf("%s&table=t%d", dsn, i), "http://h/", sqlstore.Options{})
				if err == nil {
					_, _, err = s.Open(ctx, replica.Identity{}, false)
					s.Close()
				}
				errs <- err
			}()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

// A table an earlier lockstep named with capitals ("Servers") is taken up
// in SQLite, where it is the same table as servers, and named in a clear
// error in PostgreSQL, where it is another.
func TestStore_TableWrittenWithCapitals(t *testing.T) {
	srv := followtest.NewUnstartedServer(rec(1, 1), rec(2, 2))
	srv.Finite = true
	srv.Start()
	defer srv.Close()
	sync := func(dsn string) error { return syncOnce(dsn, srv.URL+"/", nil) }
	t.Run("sqlite", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "r.db")
		if err := sync("sqlite:" + file + "?table=servers"); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", file)
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.Exec(`UPDATE lockstep_meta SET tbl = 'Servers'`)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := sync("sqlite:" + file + "?table=Servers"); err != nil {
			t.Fatal(err)
		}
		var got []string
		if _, err := sqlstore.Read(context.Background(), "sqlite:"+file, func(r []byte) error { got = append(got, string(r)); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, []string{rec(1, 1), rec(2, 2)}) {
			t.Fatalf("replica %q", got)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		pg := needPostgres(t)
		name := fmt.Sprintf("caps%d", tables.Add(1))
		if err := sync(pg.DSN + "&table=" + name); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		conn := pgAdmin(t, pg)
		upper := strings.ToUpper(name[:1]) + name[1:]
		for _, q := range []string{
			fmt.Sprintf(`ALTER TABLE %s RENAME TO "%s"`, name, upper),
			fmt.Sprintf(`ALTER TABLE %s_tombstones RENAME TO "%s_tombstones"`, name, upper),
			fmt.Sprintf(`UPDATE lockstep_meta SET tbl = '%s' WHERE tbl = '%s'`, upper, name),
		} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		err := sync(pg.DSN + "&table=" + upper)
		if err == nil || !strings.Contains(err.Error(), `ALTER TABLE "`+upper+`" RENAME TO `+name) {
			t.Fatalf("err %v, want one that says how to rename the table", err)
		}
		// Renamed as it says, the replica is taken up again.
		if _, err := conn.Exec(ctx, strings.SplitN(err.Error(), "rename it with ", 2)[1]); err != nil {
			t.Fatal(err)
		}
		if err := sync(pg.DSN + "&table=" + upper); err != nil {
			t.Fatal(err)
		}
	})
}

// A database that is not UTF-8 is refused at once, by name, rather than
// stopping at the first record it cannot hold.
func TestPostgres_NotUTF8(t *testing.T) {
	pg := needPostgres(t)
	ctx := context.Background()
	admin := pgAdmin(t, pg)
	name := fmt.Sprintf("ascii%d", tables.Add(1))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"); err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.Open(ctx, strings.Replace(pg.DSN, "/postgres?", "/"+name+"?", 1)+"&table=t", "http://h/", sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Open(ctx, replica.Identity{}, false); err == nil || !strings.Contains(err.Error(), "encoded SQL_ASCII: lockstep needs UTF8") {
		t.Fatalf("err %v", err)
	}
}

// A table dropped or emptied by hand behind its checkpoint is rebuilt by a
// full resync, said as such, instead of staying empty under a cursor that
// covers what it lost.
func TestStore_TableEmptiedByHand(t *testing.T) {
	srv := followtest.NewUnstartedServer(rec(1, 1), rec(2, 2), rec(3, 3))
	srv.Finite = true
	srv.Start()
	defer srv.Close()
	type place struct {
		dsn  string
		exec func(q string) error
	}
	places := map[string]place{}
	file := filepath.Join(t.TempDir(), "r.db")
	places["sqlite"] = place{"sqlite:" + file + "?table=servers", func(q string) error {
		db, err := sql.Open("sqlite", file)
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.Exec(q)
		return err
	}}
	if postgres != nil {
		conn := pgAdmin(t, postgres)
		places["postgres"] = place{fmt.Sprintf("%s&table=servers%d", postgres.DSN, tables.Add(1)), func(q string) error {
			_, err := conn.Exec(context.Background(), q)
			return err
		}}
	}
	for name, p := range places {
		t.Run(name, func(t *testing.T) {
			table := p.dsn[strings.LastIndex(p.dsn, "table=")+len("table="):]
			for _, how := range []string{"DROP TABLE " + table, "DELETE FROM " + table} {
				var notices []string
				ctx := context.Background()
				for run := range 2 {
					if err := syncOnce(p.dsn, srv.URL+"/", func(n replica.Notice) {
						if n.Kind == replica.NoticeResync && n.Err != nil {
							notices = append(notices, n.Err.Error())
						}
					}); err != nil {
						t.Fatal(err)
					}
					if run == 0 {
						if err := p.exec(how); err != nil {
							t.Fatal(err)
						}
						notices = nil
					}
				}
				var got []string
				if _, err := sqlstore.Read(ctx, p.dsn, func(r []byte) error { got = append(got, string(r)); return nil }); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, []string{rec(1, 1), rec(2, 2), rec(3, 3)}) {
					t.Errorf("%s: replica %q", how, got)
				}
				if len(notices) != 1 || !strings.Contains(notices[0], "is empty, but its checkpoint was written with 3 records") {
					t.Errorf("%s: notices %q", how, notices)
				}
			}
		})
	}
}

// A key longer than PostgreSQL's index holds stops the sync with an error
// that says so, not the database's; SQLite holds it.
func TestStore_LongKey(t *testing.T) {
	long := fmt.Sprintf(`{"id":"%s","updated_at":1,"deleted_at":null}`, strings.Repeat("k", 6000))
	srv := followtest.NewUnstartedServer(rec(1, 1), long)
	srv.Finite = true
	srv.Start()
	defer srv.Close()
	run := func(dsn string) error { return syncOnce(dsn, srv.URL+"/", nil) }
	if err := run("sqlite:" + filepath.Join(t.TempDir(), "r.db") + "?table=t"); err != nil {
		t.Errorf("sqlite: %v", err)
	}
	pg := needPostgres(t)
	err := run(fmt.Sprintf("%s&table=long%d", pg.DSN, tables.Add(1)))
	if err == nil || !strings.Contains(err.Error(), "a record's key is 6002 bytes") {
		t.Errorf("postgres: %v", err)
	}
}

// syncOnce is one lockstep sync of url into dsn.
func syncOnce(dsn, url string, notify func(replica.Notice)) error {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, dsn, url, sqlstore.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	e, err := replica.New(ctx, replica.Config{Follow: follow.Config{URL: url}, Store: store, MaxDelete: 1, Notify: notify})
	if err != nil {
		return err
	}
	return e.Run(ctx)
}

// pgAdmin is a connection to the test cluster's postgres database, closed
// when the test ends.
func pgAdmin(t *testing.T, pg *pgtest.Cluster) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
