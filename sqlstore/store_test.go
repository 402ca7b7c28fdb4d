package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/lockstep/lockstep/internal/pgtest"
	"github.com/lockstep/lockstep/replica"
	"github.com/lockstep/lockstep/replica/storetest"
	"github.com/lockstep/lockstep/sqlstore"
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
