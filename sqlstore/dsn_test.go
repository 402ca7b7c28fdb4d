package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn                     string
		sqlite, postgres, table string
		secret, err             string
	}{
		{dsn: "sqlite:servers.db", sqlite: "servers.db"},
		{dsn: "sqlite:servers.db?table=Servers", sqlite: "servers.db", table: "servers"},
		{dsn: "sqlite:servers.db?mode=ro", err: `unknown parameter "mode"`},
		{dsn: "sqlite:", err: "wants a file"},
		{dsn: "sqlite:x.db?table=lockstep_meta", err: "lockstep's own"},
		{dsn: "sqlite:x.db?table=servers_tombstones", err: "lockstep's own"},
		{dsn: "sqlite:x.db?table=1x", err: "not starting with a digit"},
		{dsn: "postgres://app@db/ops?table=servers&sslmode=disable", postgres: "postgres://app@db/ops?sslmode=disable", table: "servers"},
		// Passwords pasted raw: each reaches the driver escaped, whole.
		{dsn: "postgres://app:s3cr?et@127.0.0.1:5432/ops?table=x", postgres: "postgres://app:s3cr%3Fet@127.0.0.1:5432/ops", table: "x", secret: "s3cr?et"},
		{dsn: "postgres://app:2024#Summer@127.0.0.1:1/ops", postgres: "postgres://app:2024%23Summer@127.0.0.1:1/ops", secret: "2024#Summer"},
		{dsn: "postgres://app:p@ss@db/ops", postgres: "postgres://app:p%40ss@db/ops", secret: "p@ss"},
		{dsn: "postgres://app:a/b+c=@db/ops", postgres: "postgres://app:a%2Fb+c=@db/ops", secret: "a/b+c="},
		{dsn: "postgres://app:p%40ss@db/ops", postgres: "postgres://app:p%40ss@db/ops", secret: "p@ss"},
		{dsn: "postgres://app:p@ss?w#rd@127.0.0.1:5432/ops?sslmode=disable&table=t1", postgres: "postgres://app:p%40ss%3Fw%23rd@127.0.0.1:5432/ops?sslmode=disable", table: "t1", secret: "p@ss?w#rd"},
		{dsn: "postgres://app:p@ss/w@db/ops", postgres: "postgres://app:p%40ss%2Fw@db/ops", secret: "p@ss/w"},
		{dsn: "postgres://app:p@ss#w@db:5432", postgres: "postgres://app:p%40ss%23w@db:5432", secret: "p@ss#w"},
		// What pgx reads as it is stays as it is.
		{dsn: "postgresql://app:pw@/ops?host=/run/pg", postgres: "postgresql://app:pw@/ops?host=/run/pg", secret: "pw"},
		{dsn: "postgres://app:pw@[::1]:5432/ops", postgres: "postgres://app:pw@[::1]:5432/ops", secret: "pw"},
		{dsn: "postgres://app@[::1]:1,[::1]:2/ops?table=m", postgres: "postgres://app@[::1]:1,[::1]:2/ops", table: "m"},
		{dsn: "postgres://app@h1:5432,h2/ops", postgres: "postgres://app@h1:5432,h2/ops"},
		{dsn: "postgresql://%2Ftmp/postgres?table=m", postgres: "postgresql://%2Ftmp/postgres", table: "m"},
		{dsn: "postgres://u:pw@127.0.0.1/db?table=mine&application_name=ops@x", postgres: "postgres://u:pw@127.0.0.1/db?application_name=ops@x", table: "mine", secret: "pw"},
		{dsn: "postgresql:///db?host=/tmp&user=alice@corp", postgres: "postgresql:///db?host=/tmp&user=alice@corp"},
		{dsn: "postgres://db/ops?application_name=a@b", postgres: "postgres://db/ops?application_name=a@b"},
		{dsn: "postgres://u@h/db?options=-c%20search_path%3Dsb&table=t", postgres: "postgres://u@h/db?options=-c%20search_path%3Dsb", table: "t"},
		{dsn: "postgres:ops", err: "want a URL"},
		// An '@' that ends a password or a query value: refused.
		{dsn: "postgres://u:p@ss?w=rd@db.example:5432/app", err: "percent-encode that '@'"},
		{dsn: "postgres://h:5432?application_name=me@corp:1/x", err: "percent-encode that '@'"},
		{dsn: "sqlite:x.db?table=a&table=b", err: "more than once"},
		{dsn: "postgres://u@h/db?table=a&table=b", err: "more than once"},
		{dsn: "postgres://u@h/db?table=pg_x", err: "the database's own"},
		{dsn: "postgres://u@h/db?table=" + strings.Repeat("a", 51), err: "at most 50"},
	} {
		got, err := parseDSN(tc.dsn)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.dsn, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.dsn, err)
			continue
		}
		if got.sqlite != tc.sqlite || got.postgres != tc.postgres || got.table != tc.table || got.secret != tc.secret {
			t.Errorf("%s: got %+v\nwant sqlite %q postgres %q table %q secret %q", tc.dsn, got, tc.sqlite, tc.postgres, tc.table, tc.secret)
		}
	}
}

// Redact hides the password however it was written, as parseDSN reads it.
func TestRedact(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://app:2024#Summer@127.0.0.1:1/ops":     "postgres://app:***@127.0.0.1:1/ops",
		"postgres://app:1234?x@db/ops":                   "postgres://app:***@db/ops",
		"postgres://app:?Secr3t@db/ops":                  "postgres://app:***@db/ops",
		"postgres://app:#Secr3t@db/ops":                  "postgres://app:***@db/ops",
		"postgres://app:p@ss@db/ops?table=x":             "postgres://app:***@db/ops?table=x",
		"postgres://app:p@ss?w#rd@db:5432/ops":           "postgres://app:***@db:5432/ops",
		"postgres://u:p@ss?w=rd@db.example:5432/app":     "postgres://***@db.example:5432/app",
		"postgres://h:5432?application_name=me@corp:1/x": "postgres://***@corp:1/x",
		"host=db dbname=ops user=app password=hunter2":   "host=db dbname=ops user=app password=***",
		"sqlite:servers.db?table=t":                      "sqlite:servers.db?table=t",
	} {
		if got := Redact(dsn); got != want {
			t.Errorf("Redact(%s) = %s, want %s", dsn, got, want)
		}
	}
}

func TestDefaultTable(t *testing.T) {
	for endpoint, want := range map[string]string{
		"http://h/servers/":                 "servers",
		"http://h/v1/Servers?since={since}": "servers",
		"http://h/servers/{since}":          "servers",
		"http://h/x/lockstep_meta/":         "x",
		"http://h/eu-west.routes/":          "eu_west_routes",
		"http://h/":                         "records",
		"http://h/servers_tombstones/":      "records",
	} {
		if got := defaultTable(endpoint); got != want {
			t.Errorf("defaultTable(%s) = %s, want %s", endpoint, got, want)
		}
	}
}

// The driver's errors never carry the password, however it was written.
func TestOpen_ErrorsHidePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://app:s3cr?et@127.0.0.1:1/ops?connect_timeout=1",
		"postgres://app:p@ssw0rd@127.0.0.1:1/ops?connect_timeout=1",
		"postgres://app:pa/ss#w@127.0.0.1:1/ops?connect_timeout=1",
		"postgres://app:2024#Summer@127.0.0.1:1/ops?connect_timeout=1",
		"postgres://app:hunter2@db:54x2/ops",
		"postgres://app:hunter2@[fe80::1%eth0]/ops",
		"host=db dbname=ops user=app password=hunter2",
		"postgres://Sup3rSecretToken@127.0.0.1:1/ops?connect_timeout=1",
	} {
		_, err := Open(context.Background(), dsn, "http://h/servers/", Options{})
		if err == nil {
			t.Fatalf("%s: opened", dsn)
		}
		for _, leak := range []string{"s3cr", "et@", "ssw0rd", "pa/ss", "ss#w", "%3F", "%40", "Summer", "hunter2", "Sup3rSecret"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%s: error shows %q: %v", dsn, leak, err)
			}
		}
	}
}

// A SQLite file whose write lock another connection holds gives an error
// that busy recognises: a following sync retries it.
func TestBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_txlock=immediate")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	if _, err := a.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	tx, err := a.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	_, err = b.Exec(`INSERT INTO t VALUES (1)`)
	if err == nil || !busy(err) {
		t.Fatalf("insert beside a writer: %v, want SQLITE_BUSY", err)
	}
	if busy(errors.New("database is locked")) {
		t.Fatal("busy took a plain error for SQLite's")
	}
}
