package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sync and dump on a database replica, as a user runs them: the same
// output as a file, --max-age, and no password anywhere.
func TestSyncDump_Database(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	outs := map[string]string{"sqlite": "sqlite:" + filepath.Join(dir, "servers.db")}
	if dsn, err := maybePostgres(t); err == nil {
		outs["postgres"] = strings.Replace(dsn, "postgres@", "postgres:"+secret+"@", 1) + "&table=servers"
	}
	for name, out := range outs {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			src, file := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "servers.jsonl")
			writeFile(t, src, line(2, 1, `,"ip":"10.0.0.2"`), line(`"web"`, 2, `,"ip":"10.0.0.9"`), line(1, 3, `,"ip":"10.0.0.1"`))
			url := serve(t, src, "--finite") + "/servers/"
			if r := lockstep(t, "sync", url, "--out", file); r.code != 0 {
				t.Fatal(r.stderr)
			}
			r := lockstep(t, "sync", url, "--out", out)
			if r.code != 0 || !strings.Contains(r.stderr, "3 records, cursor 3, +3 ~0 -0") {
				t.Fatalf("sync: exit %d %s", r.code, r.stderr)
			}
			d := lockstep(t, "dump", "--max-age", "1m", out)
			if d.code != 0 || d.stdout != readFile(t, file) {
				t.Fatalf("dump: exit %d %q %s, want %q", d.code, d.stdout, d.stderr, readFile(t, file))
			}
			appendFile(t, src, tomb(2, 4))
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(r.stderr, "cursor 4") && time.Now().Before(deadline) {
				r = lockstep(t, "sync", url, "--out", out)
			}
			if r.code != 0 || !strings.Contains(r.stderr, "2 records, cursor 4, +0 ~0 -1") {
				t.Fatalf("second sync: exit %d %s", r.code, r.stderr)
			}
			for _, s := range []string{r.stderr, d.stderr} {
				if strings.Contains(s, secret) {
					t.Fatalf("the password in the output: %s", s)
				}
			}
		})
	}
	if dsn, ok := outs["postgres"]; ok {
		// An unreachable server: a clear error, and still no password.
		bad := strings.Replace(dsn, "127.0.0.1:", "127.0.0.1:1", 1)
		r := lockstep(t, "sync", "http://127.0.0.1:1/", "--out", bad)
		if r.code != 1 || strings.Contains(r.stderr, secret) || !strings.Contains(r.stderr, "postgres://postgres:***@") {
			t.Fatalf("unreachable: exit %d %s", r.code, r.stderr)
		}
		if out, err := exec.Command("psql", strings.Replace(dsn, "&table=servers", "", 1), "-Atc", "select record->>'ip' from servers order by key_sort, key").CombinedOutput(); err == nil {
			if got := strings.TrimSpace(string(out)); got != "10.0.0.1\n10.0.0.9" {
				t.Fatalf("psql: %q", got)
			}
		}
	}
}
