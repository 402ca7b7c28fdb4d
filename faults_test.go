package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep/lockstep/follow/followtest"
)

// The fault matrix: tail and sync, as real processes, through every fault
// followtest can inject. For each: no crash, no hang, a message that names
// the fault, a retry exactly when PROTOCOL 3 says, no secret in any output,
// and, once the fault clears, a snapshot equal to the endpoint's table.

type faultCase struct {
	name   string
	faults []followtest.Fault
	args   []string // extra flags for both commands
	tls    bool
	gzip   bool
	// setup runs a clean sync first, then changes the table; the fault
	// then applies to a sync that resumes from a checkpoint.
	resume func(srv *followtest.Server)

	tailExit, syncExit int
	retry              bool   // a second request is expected
	msg                string // in stderr (tail's, then sync's)
}

const secret = "S3CRET-PASSWORD"

func faultRecords() []string {
	var out []string
	for i := 1; i <= 40; i++ {
		out = append(out, strings.TrimSuffix(line(i, 100+i, `,"ip":"10.0.0.`+fmt.Sprint(i)+`"`), "\n"))
	}
	return out
}

func faultCases() []faultCase {
	bad := func(inject string) []followtest.Fault {
		return []followtest.Fault{{After: 3, Inject: []byte(inject)}}
	}
	return []faultCase{
		{name: "drop after 5 records", faults: []followtest.Fault{{After: 5, Drop: true}}, retry: true, msg: "connection lost at byte"},
		{name: "drop mid-record", faults: []followtest.Fault{{After: 3, DropBytes: 17}}, retry: true, msg: "retrying in"},
		{name: "drop mid-chunk, gzip", gzip: true, faults: []followtest.Fault{{After: 7, DropBytes: 5}}, retry: true, msg: "retrying in"},
		{name: "body ends mid-record", faults: []followtest.Fault{{After: 4, Inject: []byte(`{"id":99,"updated_at":1`), End: true, Finite: true}}, retry: true, msg: "response ended mid-record"},
		{name: "stall, nothing sent", faults: []followtest.Fault{{After: 3, Stall: 5 * time.Second}}, retry: true, msg: "no data for 500ms"},
		{name: "stall, heartbeats only", faults: []followtest.Fault{{After: 3, Stall: 700 * time.Millisecond, Heartbeat: 100 * time.Millisecond}}, msg: ""},
		{name: "500", faults: []followtest.Fault{{Status: 500}}, retry: true, msg: "500 Internal Server Error"},
		{name: "503 Retry-After 1", faults: []followtest.Fault{{Status: 503, RetryAfter: "1"}}, retry: true, msg: "retrying in 1s"},
		{name: "429 no Retry-After", faults: []followtest.Fault{{Status: 429}}, retry: true, msg: "429 Too Many Requests"},
		{name: "401", faults: []followtest.Fault{{Status: 401, Body: "bad password"}}, tailExit: 1, syncExit: 1, msg: `401 Unauthorized from http://alice:***@`},
		{name: "404", faults: []followtest.Fault{{Status: 404}}, tailExit: 1, syncExit: 1, msg: "404 Not Found"},
		{name: "410 at cursor 0", faults: []followtest.Fault{{Status: 410}}, tailExit: 1, syncExit: 1, msg: "410 Gone to cursor 0"},
		{name: "410 after a checkpoint: resync", resume: func(srv *followtest.Server) {
			srv.Append(`{"id":41,"updated_at":200,"deleted_at":null}`)
			srv.Faults(followtest.Fault{Status: 410})
		}, args: []string{"--resync-quiet", "2s"}, retry: true, msg: "full resync"}, // not 30s: followtest sends the whole table at once
		{name: "garbage bytes", faults: bad("\x00\x01garbage\n"), syncExit: 1, msg: `bad record at byte`},
		{name: "invalid UTF-8 in a string", faults: bad("{\"id\":77,\"updated_at\":1,\"s\":\"\xff\xfe\"}\n"), syncExit: 1, msg: "invalid UTF-8"},
		{name: "record over --max-record-size", faults: bad(`{"id":78,"updated_at":1,"pad":"` + strings.Repeat("x", 3000) + "\"}\n"), args: []string{"--max-record-size", "1KiB"}, syncExit: 1, msg: "over the 1024-byte limit"},
		{name: "value not an object", faults: bad("[1,2,3]\n"), syncExit: 1, msg: "expected a JSON object, found '['"},
		{name: "record without its key", faults: bad(`{"updated_at":5,"deleted_at":null}` + "\n"), syncExit: 1, msg: `no "id" field`},
		{name: "record without its order", faults: bad(`{"id":5,"deleted_at":null}` + "\n"), syncExit: 1, msg: `no "updated_at" field`},
		{name: "order value of the wrong kind", faults: bad(`{"id":5,"updated_at":"yesterday"}` + "\n"), syncExit: 1, msg: "order values are numbers"},
		{name: "records out of order", faults: bad(line(2, 90, `,"old":1`) + line(1, 101, `,"ip":"10.0.0.1"`)), msg: ""},
		{name: "duplicates at the cursor", faults: []followtest.Fault{{After: 40, Inject: []byte(strings.Repeat(line(40, 140, `,"ip":"10.0.0.40"`), 3))}}, msg: ""},
		{name: "tombstone for a key never seen", faults: bad(tomb(500, 90)), msg: ""},
		{name: "stale update after a delete", resume: func(srv *followtest.Server) {
			srv.Append(`{"id":7,"updated_at":300,"deleted_at":300}`)
			srv.Faults(followtest.Fault{After: 1, Inject: []byte(line(7, 250, `,"stale":true`))})
		}, msg: ""},
		{name: "TLS, self-signed, with --cacert", tls: true, msg: ""},
		{name: "TLS, self-signed, untrusted", tls: true, args: []string{"--no-cacert", "--retry-for", "1s"}, tailExit: 1, syncExit: 1, msg: "(pass --cacert FILE to trust its CA)"},
	}
}

// Each case has its own server and folder, and runs in parallel with the
// others; the table is logged, in the cases' order, once all have finished.
func TestFaultMatrix(t *testing.T) {
	t.Parallel()
	cases := faultCases()
	var mu sync.Mutex
	rows := make([]string, len(cases))
	t.Cleanup(func() {
		table := append([]string{"| fault | tail | sync | requests |", "|---|---|---|---|"}, slices.DeleteFunc(rows, func(r string) bool { return r == "" })...)
		t.Log("fault matrix:\n" + strings.Join(table, "\n"))
	})
	for i, fc := range cases {
		t.Run(regexp.MustCompile(`\W+`).ReplaceAllString(fc.name, "_"), func(t *testing.T) {
			t.Parallel()
			tailOut, syncOut, reqs := runFault(t, fc)
			mu.Lock()
			rows[i] = fmt.Sprintf("| %s | %s | %s | %d |", fc.name, tailOut, syncOut, reqs)
			mu.Unlock()
		})
	}
}

func outcome(code int, stderr string) string {
	switch {
	case code != 0:
		return fmt.Sprintf("exit %d", code)
	case strings.Contains(stderr, "resync"):
		return "resynced, exit 0"
	case strings.Contains(stderr, "retrying"):
		return "retried, exit 0"
	case strings.Contains(stderr, "skipped"):
		return "warned, exit 0"
	}
	return "exit 0"
}

// runFault runs tail and sync through one fault and checks the outcome.
func runFault(t *testing.T, fc faultCase) (tailOut, syncOut string, requests int) {
	dir := t.TempDir()
	out := filepath.Join(dir, "replica.jsonl")
	srv := followtest.NewUnstartedServer(faultRecords()...)
	srv.Gzip = fc.gzip
	// Heartbeats tell a quiet stream from a stalled one; --idle must be
	// longer than a heartbeat, --stall-timeout too.
	srv.Heartbeat = 100 * time.Millisecond
	if fc.tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	defer srv.Close()
	url := strings.Replace(srv.URL, "://", "://alice:"+secret+"@", 1) + "/servers/"
	args := []string{"--idle", "1s", "--stall-timeout", "500ms", "--retry-for", "20s", "-H", "Authorization: Bearer " + secret}
	for _, a := range fc.args {
		if a != "--no-cacert" {
			args = append(args, a)
		}
	}
	if fc.tls {
		// A TLS handshake on a loaded machine under the race detector
		// can take longer than the 500ms stall limit; these cases test
		// certificates, not stalls.
		args = append(args, "--stall-timeout", "5s")
	}
	if fc.tls && !contains(fc.args, "--no-cacert") {
		ca := filepath.Join(dir, "ca.pem")
		os.WriteFile(ca, srv.CertificatePEM(), 0o644)
		args = append(args, "--cacert", ca)
	}
	args = append(args, "-H", "X-Session-Token: "+secret)
	var all strings.Builder
	check := func(what string, r result, wantExit int) {
		t.Helper()
		all.WriteString(r.stdout + r.stderr)
		if r.code != wantExit {
			t.Fatalf("%s: exit %d, want %d; stderr:\n%s", what, r.code, wantExit, r.stderr)
		}
		if fc.msg != "" && !strings.Contains(r.stderr, fc.msg) {
			t.Fatalf("%s: stderr does not say %q:\n%s", what, fc.msg, r.stderr)
		}
	}

	// tail --once, from 0 (or from a cursor for the resume cases).
	srv.Faults(fc.faults...)
	tailArgs := append([]string{"tail", "--once"}, args...)
	if fc.resume != nil {
		// A first run to get a cursor, clean.
		cp := filepath.Join(dir, "tail.cursor")
		tailArgs = append(tailArgs, "--checkpoint", cp)
		if r := lockstep(t, append(tailArgs, url)...); r.code != 0 {
			t.Fatalf("tail, clean first run: %s", r.stderr)
		}
		fc.resume(srv)
	}
	before := len(srv.Requests())
	r := lockstep(t, append(tailArgs, url)...)
	check("tail", r, fc.tailExit)
	tailOut = outcome(r.code, r.stderr)
	tailReqs := len(srv.Requests()) - before
	checkRetries(t, "tail", fc, tailReqs)

	// sync, to a file and to SQLite, then again once the fault has cleared.
	db := "sqlite:" + filepath.Join(dir, "replica.db")
	for i, out := range []string{out, db} {
		read := func() string {
			if out == db {
				return lockstep(t, "dump", db).stdout
			}
			b, _ := os.ReadFile(out)
			return string(b)
		}
		syncArgs := append([]string{"sync", "--out", out}, args...)
		if fc.resume != nil {
			// A clean first run, then the change and the fault.
			if r := lockstep(t, append(syncArgs, url)...); r.code != 0 {
				t.Fatalf("sync --out %s, clean first run: %s", out, r.stderr)
			}
			fc.resume(srv)
		} else {
			srv.Faults(fc.faults...)
		}
		before = len(srv.Requests())
		replicaBefore := read()
		r = lockstep(t, append(syncArgs, url)...)
		check("sync --out "+out, r, fc.syncExit)
		if i == 0 {
			syncOut = outcome(r.code, r.stderr)
			requests = len(srv.Requests()) - before
		}
		checkRetries(t, "sync --out "+out, fc, len(srv.Requests())-before)
		if r.code != 0 && read() != replicaBefore {
			t.Fatalf("a failed sync --out %s changed the replica", out)
		}
		// The fault clears: the next run converges.
		cleared := args
		if fc.tls {
			cleared = append(slices.Clip(args), "--cacert", writeCA(t, dir, srv))
		}
		r = lockstep(t, append(append([]string{"sync", "--out", out}, cleared...), url)...)
		all.WriteString(r.stdout + r.stderr)
		if r.code != 0 {
			t.Fatalf("sync --out %s after the fault cleared: %s", out, r.stderr)
		}
		if got, want := read(), strings.Join(srv.Table(), "\n")+"\n"; got != want {
			t.Fatalf("sync --out %s differs from the endpoint once the fault cleared:\n%s", out, diffLines(got, want))
		}
	}
	for _, f := range []string{out + ".checkpoint", out + ".lock", filepath.Join(dir, "replica.db")} {
		all.WriteString(readFile(t, f))
	}
	if strings.Contains(all.String(), secret) {
		t.Fatalf("the secret appears in an output:\n%s", all.String())
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(entries) > 0 {
		t.Fatalf("temp files left: %v", entries)
	}
	return tailOut, syncOut, requests
}

func writeCA(t *testing.T, dir string, srv *followtest.Server) string {
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, srv.CertificatePEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return ca
}

func checkRetries(t *testing.T, what string, fc faultCase, n int) {
	t.Helper()
	switch {
	case fc.retry && n < 2:
		t.Fatalf("%s: %d request(s); the fault should have been retried", what, n)
	case !fc.retry && fc.tailExit != 0 && n != 1 && !fc.tls:
		t.Fatalf("%s: %d requests; a permanent failure must not be retried", what, n)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Random combinations of transient faults, one connection after another:
// sync always converges.
func TestFaultMatrix_RandomCombinations(t *testing.T) {
	t.Parallel()
	transient := []followtest.Fault{
		{After: 5, Drop: true},
		{After: 2, DropBytes: 11},
		{Status: 500},
		{Status: 503, RetryAfter: "0"},
		{Status: 429},
		{After: 9, Stall: 3 * time.Second},
		{After: 20, Inject: []byte(line(3, 1, `,"stale":1`) + line(20, 120, `,"ip":"10.0.0.20"`))},
		{After: 1, Inject: []byte(`{"id":1,"upd`), End: true, Finite: true},
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for round := range 4 {
		var picked []followtest.Fault
		for range 3 {
			picked = append(picked, transient[rng.IntN(len(transient))])
		}
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			t.Parallel()
			srv := followtest.NewUnstartedServer(faultRecords()...)
			srv.Gzip = round%2 == 1
			srv.Heartbeat = 100 * time.Millisecond
			srv.Start()
			defer srv.Close()
			srv.Faults(picked...)
			out := filepath.Join(t.TempDir(), "r.jsonl")
			r := lockstep(t, "sync", "--out", out, "--idle", "1s", "--stall-timeout", "500ms", "--retry-for", "30s", srv.URL+"/s/")
			if r.code != 0 {
				t.Fatalf("round %d (%+v): exit %d %s", round, picked, r.code, r.stderr)
			}
			if got, want := readFile(t, out), strings.Join(srv.Table(), "\n")+"\n"; got != want {
				t.Fatalf("round %d: snapshot differs:\n%s", round, diffLines(got, want))
			}
		})
	}
}

// A key that a resync does not send again is printed by tail as a
// tombstone it infers, and said so on stderr.
func TestTail_ResyncInfersTombstones(t *testing.T) {
	t.Parallel()
	srv := followtest.NewUnstartedServer(faultRecords()[:5]...)
	srv.Heartbeat = 50 * time.Millisecond
	srv.Start()
	defer srv.Close()
	// An endless resync is complete only after --resync-quiet with no
	// change (heartbeats do not count).
	_, stdout, stderr := start(t, "tail", "--resync-quiet", "1s", srv.URL+"/s/")
	sc := bufio.NewScanner(stdout)
	for range 5 {
		if !sc.Scan() {
			t.Fatalf("backlog ended early; stderr %s", stderr.String())
		}
	}
	// Key 3 vanishes while the client is away, and its cursor expires.
	srv.Faults(followtest.Fault{Status: 410})
	srv.DropConnections()
	srv.Append(`{"id":3,"updated_at":300,"deleted_at":300}`)
	done := make(chan string)
	go func() {
		sc.Scan()
		done <- sc.Text()
	}()
	select {
	case got := <-done:
		if want := `{"id":3,"updated_at":105,"deleted_at":105}`; got != want {
			t.Fatalf("inferred tombstone %s, want %s", got, want)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no inferred tombstone; stderr:\n%s", stderr.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stderr.String(), "as inferred tombstones") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), "full resync") || !strings.Contains(stderr.String(), "no longer has 1 record printed before") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
}

// --insecure works and says so, every run; --private makes files 0600.
func TestInsecureAndPrivate(t *testing.T) {
	t.Parallel()
	srv := followtest.NewUnstartedServer(faultRecords()[:3]...)
	srv.Finite = true
	srv.StartTLS()
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "s.jsonl")
	for range 2 {
		r := lockstep(t, "sync", "--insecure", "--private", srv.URL+"/", "--out", out)
		if r.code != 0 || !strings.Contains(r.stderr, "warning: --insecure") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	}
	for _, f := range []string{out, out + ".checkpoint"} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st.Mode(), err)
		}
	}
}
