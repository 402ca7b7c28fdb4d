package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep/lockstep/state"
)

// The tests in this file run the real binary, as a user would.
//
// The process-level tests (here and in faults_test.go, crash_test.go,
// disk_test.go, db_e2e_test.go, replica_e2e_test.go, security_test.go and
// part of ops_test.go) spend most of their time waiting on timeouts and
// retries, so they run side by side (make test passes -parallel 16). A new
// one stays parallel-safe if it:
//   - calls t.Parallel() first, and t.Parallel() in each subtest that runs
//     a process (collect per-case results under a mutex, report them in
//     t.Cleanup);
//   - keeps its files under t.TempDir() and starts its endpoints on port 0:
//     serve(t, file) for `lockstep serve`, followtest.NewServer for faults;
//   - runs the binary through lockstep(t, ...) or start(t, ...), giving a
//     process its environment by cmd.Env, never t.Setenv or os.Setenv;
//   - waits on a condition (waitUntil, waitServed), never for a while: under
//     -parallel on a shared 2-core machine a sleep that is long enough
//     alone is not long enough.
//
// Two kinds stay serial (they run before the parallel ones start):
//   - a test that keeps the CPU busy for seconds, such as
//     TestHostileInput_BoundedMemory: it would starve the 500ms stall
//     timeouts of the tests that wait (its own cases run side by side);
//   - an in-process test that calls newApp (tail_test.go, check_test.go,
//     ops_test.go's runApp): setting up an app writes to the package-level
//     commands (OnUsageError, urfave/cli's help flag), so two at once race.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lockstep-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "lockstep")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	if raceEnabled && !strings.Contains(os.Getenv("GORACE"), "atexit_sleep_ms") {
		// A race-built process sleeps 1s before it exits, to let a
		// report in progress finish; the tests start hundreds of them.
		// Races are still reported as they happen, and still make the
		// process exit 66.
		os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=100"))
	}
	code := m.Run()
	stopPostgres()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what a finished lockstep process left.
type result struct {
	stdout, stderr string
	code           int
}

func lockstep(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("lockstep %v: still running after 60s; stderr:\n%s", args, errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// start runs lockstep in the background and returns its stdout and
// stderr; the process is killed when the test ends.
func start(t *testing.T, args ...string) (*exec.Cmd, io.ReadCloser, *lines) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lines{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, stdout, stderr
}

// serve starts `lockstep serve` on a free port and returns its base URL.
func serve(t *testing.T, file string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append(append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), file)...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := regexp.MustCompile(`http://\S+`).FindString(sc.Text()); m != "" && strings.Contains(sc.Text(), "serving") {
				urls <- strings.TrimSuffix(m, "/")
			}
		}
	}()
	select {
	case u := <-urls:
		return u
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	return ""
}

// waitUntil polls cond until it holds, and fails the test after 20s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after 20s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitServed waits until `lockstep serve` at url (as given to tail or sync,
// ending in /) serves rec, a line just appended to its file: serve reads
// the file's tail a moment after it is written. rec has the default field
// names.
func waitServed(t *testing.T, url, rec string) {
	t.Helper()
	var r struct {
		Order json.RawMessage `json:"updated_at"`
	}
	if err := json.Unmarshal([]byte(rec), &r); err != nil {
		t.Fatalf("waitServed: %v", err)
	}
	want := strings.TrimSpace(rec)
	waitUntil(t, "the endpoint to serve "+want, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", url+"?since="+string(r.Order), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
			if sc.Text() == want {
				return true
			}
		}
		return false
	})
}

// holdsOpen tells whether process pid has file open (Linux).
func holdsOpen(pid int, file string) bool {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && target == file {
			return true
		}
	}
	return false
}

func writeFile(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(strings.Join(lines, ""))
}

func line(id, order any, extra ...string) string {
	return fmt.Sprintf(`{"id":%v,"updated_at":%v,"deleted_at":null%s}`+"\n", id, order, strings.Join(extra, ""))
}

func tomb(id, order any) string {
	return fmt.Sprintf(`{"id":%v,"updated_at":%v,"deleted_at":%v}`+"\n", id, order, order)
}

func TestServeTail_EndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(2, 20, `,"ip":"b"`), line(1, 10, `,"ip":"a"`), line(3, 9007199254740993), tomb(4, 30))
	url := serve(t, src)
	r := lockstep(t, "tail", "--once", "--idle", "300ms", url+"/servers/")
	want := line(1, 10, `,"ip":"a"`) + line(2, 20, `,"ip":"b"`) + line(3, 9007199254740993)
	if r.code != 0 || r.stdout != want {
		t.Fatalf("exit %d stdout:\n%s\nwant:\n%s\nstderr: %s", r.code, r.stdout, want, r.stderr)
	}
	// From a cursor, tombstones come too, and since is inclusive.
	r = lockstep(t, "tail", "--once", "--idle", "300ms", "--since", "20", url+"/servers/")
	if want := line(2, 20, `,"ip":"b"`) + tomb(4, 30) + line(3, 9007199254740993); r.stdout != want {
		t.Fatalf("--since 20:\n%s\nwant:\n%s", r.stdout, want)
	}
	// All three cursor styles reach the same records.
	for _, u := range []string{url + "/servers?from={since}", url + "/x/{since}"} {
		if r := lockstep(t, "tail", "--once", "--idle", "300ms", "--since", "20", u); r.stdout != line(2, 20, `,"ip":"b"`)+tomb(4, 30)+line(3, 9007199254740993) && !strings.Contains(u, "from") {
			t.Fatalf("%s: %q", u, r.stdout)
		}
	}
	if r := lockstep(t, "tail", "--once", "--idle", "300ms", "--since-param", "since", "--since", "20", url+"/servers"); !strings.HasPrefix(r.stdout, line(2, 20, `,"ip":"b"`)) {
		t.Fatalf("--since-param: %q %s", r.stdout, r.stderr)
	}
}

func TestTail_LiveChangesAndDeletions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 10), line(2, 11))
	url := serve(t, src)
	_, stdout, stderr := start(t, "tail", url+"/")
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text() + "\n"
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatalf("no line within 10s; stderr: %s", stderr.String())
		}
		return ""
	}
	if a, b := next(), next(); a != line(1, 10) || b != line(2, 11) {
		t.Fatalf("backlog %q %q", a, b)
	}
	appendFile(t, src, line(1, 12, `,"v":2`))
	if got := next(); got != line(1, 12, `,"v":2`) {
		t.Fatalf("live change %q", got)
	}
	appendFile(t, src, tomb(2, 13), line(1, 5, `,"stale":true`), line(3, 14))
	if a, b := next(), next(); a != tomb(2, 13) || b != line(3, 14) {
		t.Fatalf("live deletion and insert: %q %q", a, b)
	}
}

// A cron job printing each change once across runs.
func TestTail_CheckpointAcrossRuns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, cp := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "cursor")
	writeFile(t, src, line(1, 10), line(2, 11), line(3, 11))
	url := serve(t, src, "--finite")
	run := func() string {
		r := lockstep(t, "tail", "--once", "--checkpoint", cp, url+"/")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		return r.stdout
	}
	if got := run(); got != line(1, 10)+line(2, 11)+line(3, 11) {
		t.Fatalf("first run %q", got)
	}
	if got := run(); got != "" {
		t.Fatalf("second run printed again: %q", got)
	}
	appendFile(t, src, line(4, 11), line(1, 12))
	waitServed(t, url+"/", line(1, 12))
	if got := run(); got != line(4, 11)+line(1, 12) {
		t.Fatalf("third run %q", got)
	}
	// Another endpoint's checkpoint is refused.
	r := lockstep(t, "tail", "--once", "--checkpoint", cp, url+"/other/")
	if r.code != 1 || !strings.Contains(r.stderr, "checkpoint was written for endpoint") {
		t.Fatalf("exit %d stderr %s", r.code, r.stderr)
	}
}

// lockstep tail URL | head -1: exit 0, at once, without a word.
func TestTail_ReaderGoneExitsZero(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 10), line(2, 11))
	url := serve(t, src)
	cmd, stdout, stderr := start(t, "tail", url+"/")
	br := bufio.NewReader(stdout)
	if l, err := br.ReadString('\n'); err != nil || l != line(1, 10) {
		t.Fatalf("first line %q %v", l, err)
	}
	stdout.Close() // the reader goes away; the endpoint stays quiet
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || stderr.String() != "" {
			t.Fatalf("exit %v, stderr %q", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("tail still running 5s after its reader went away")
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 1))
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"tail"}, 2, "want one URL"},
		// "--" ends the flags; it is not an argument.
		{[]string{"tail", "http://127.0.0.1:1/", "--", "-q"}, 2, "want one URL argument, got 2"},
		{[]string{"dump", src, "--", "x"}, 2, "want one FILE or URL argument, got 2"},
		{[]string{"serve", src, "--", "x"}, 2, "want one FILE argument, got 2"},
		{[]string{"tail", "--once", "--retry-for", "0", "http://127.0.0.1:1/", "--"}, 1, "connection refused"},
		// A --user without a colon is a password forgotten, or a token
		// given without its user: refused, and never shown.
		{[]string{"tail", "--user", "s3cret-token", "http://127.0.0.1:1/"}, 2, "--user: want USER:PASS, with a colon (USER: for an empty password)"},
		// After a "--" that ended the flags, a "--" is an argument.
		{[]string{"dump", "--", "--", src}, 2, "want one FILE or URL argument, got 2"},
		{[]string{"tail", "--", "http://127.0.0.1:1/", "--"}, 2, "want one URL argument, got 2"},
		// A "--" that is a flag's value ends nothing.
		{[]string{"tail", "--once", "--retry-for", "0", "--since-param", "--", "http://127.0.0.1:1/", "--"}, 1, "connection refused"},
		{[]string{"tail", "--no-such-flag", "http://x/"}, 2, "no-such-flag"},
		{[]string{"tail", "--on-bad-record", "maybe", "http://x/"}, 2, "must be one of"},
		{[]string{"tail", "ftp://x/"}, 2, "scheme"},
		{[]string{"sync", "http://127.0.0.1:1/"}, 2, "--out"},
		{[]string{"dump", src + ".missing"}, 1, "no such file"},
		{[]string{"nonsense"}, 2, ""},
		{[]string{"tail", "--once", "--retry-for", "300ms", "http://127.0.0.1:1/"}, 1, "(--retry-for 300ms)"},
		{[]string{"tail", "--once", "--retry-for", "0", "http://127.0.0.1:1/"}, 1, "connection refused (--retry-for 0: no retries)"},
	}
	for _, tt := range tests {
		r := lockstep(t, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) || strings.Contains(r.stderr, "s3cret") {
			t.Errorf("%v: exit %d stderr %q, want %d and %q", tt.args, r.code, r.stderr, tt.code, tt.msg)
		}
	}
	cmd := exec.Command(binary, "tail", "http://127.0.0.1:1/")
	cmd.Env = append(os.Environ(), "LOCKSTEP_USER=s3cret-token")
	if out, err := cmd.CombinedOutput(); !strings.Contains(string(out), "LOCKSTEP_USER: want USER:PASS") || strings.Contains(string(out), "s3cret") {
		t.Errorf("LOCKSTEP_USER without a colon: %v %q", err, out)
	}
	if r := lockstep(t, "--version"); r.code != 0 || !strings.Contains(r.stdout, "lockstep version") {
		t.Errorf("--version: %d %q", r.code, r.stdout)
	}
	for _, cmd := range []string{"tail", "sync", "dump", "serve"} {
		if r := lockstep(t, cmd, "--help"); r.code != 0 || !strings.Contains(r.stdout, "Example") {
			t.Errorf("%s --help: exit %d, no examples:\n%s", cmd, r.code, r.stdout)
		}
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 10), line(2, 20))
	url := serve(t, src, "--finite")
	cmd := exec.Command(binary, "tail", url+"/")
	cmd.Env = append(os.Environ(), "LOCKSTEP_ONCE=true", "LOCKSTEP_SINCE=20")
	out, err := cmd.Output()
	if err != nil || string(out) != line(2, 20) {
		t.Fatalf("out %q err %v", out, err)
	}
}

// dumpSorted is lockstep dump's view of a snapshot file.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSyncDump_EndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "servers.jsonl")
	writeFile(t, src, line(2, 20), line(1, 10), line(`"b"`, 5), tomb(9, 30))
	url := serve(t, src)
	r := lockstep(t, "sync", url+"/servers/", "--out", out, "--idle", "300ms")
	if r.code != 0 || !strings.Contains(r.stderr, "3 records") {
		t.Fatalf("exit %d stderr %s", r.code, r.stderr)
	}
	if got, want := readFile(t, out), line(1, 10)+line(2, 20)+line(`"b"`, 5); got != want {
		t.Fatalf("snapshot:\n%s\nwant:\n%s", got, want)
	}
	appendFile(t, src, tomb(1, 31), line(3, 32))
	waitServed(t, url+"/servers/", line(3, 32))
	r = lockstep(t, "sync", url+"/servers/", "--out", out, "--idle", "300ms")
	if got, want := readFile(t, out), line(2, 20)+line(3, 32)+line(`"b"`, 5); got != want || !strings.Contains(r.stderr, "+1 ~0 -1") {
		t.Fatalf("after changes:\n%s\nwant:\n%s\nstderr %s", got, want, r.stderr)
	}
	// dump FILE and dump URL print the same table.
	f := lockstep(t, "dump", out)
	u := lockstep(t, "dump", "--idle", "300ms", url+"/servers/")
	if f.stdout != readFile(t, out) || u.stdout != f.stdout {
		t.Fatalf("dump FILE:\n%s\ndump URL:\n%s", f.stdout, u.stdout)
	}
	if r := lockstep(t, "dump", "--max-age", "1m", out); r.code != 0 {
		t.Fatalf("--max-age 1m: %d %s", r.code, r.stderr)
	}
	time.Sleep(50 * time.Millisecond)
	if r := lockstep(t, "dump", "--max-age", "10ms", out); r.code != 1 || !strings.Contains(r.stderr, "stale") {
		t.Fatalf("--max-age 10ms: %d %s", r.code, r.stderr)
	}
	if r := lockstep(t, "dump", "--sort", "order", "--format", "table", out); !strings.HasPrefix(r.stdout, "id") || strings.Index(r.stdout, `b `) > strings.Index(r.stdout, "\n3 ") {
		t.Fatalf("table by order:\n%s", r.stdout)
	}
	// Another endpoint's checkpoint is refused, and the files stay.
	before := readFile(t, out)
	r = lockstep(t, "sync", url+"/other/", "--out", out)
	if r.code != 1 || !strings.Contains(r.stderr, "checkpoint was written for endpoint") || !strings.Contains(r.stderr, "--resync") {
		t.Fatalf("other endpoint: %d %s", r.code, r.stderr)
	}
	if readFile(t, out) != before {
		t.Fatal("refused sync changed the snapshot")
	}
}

func TestSync_SecondRunFailsAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "s.jsonl")
	writeFile(t, src, line(1, 1))
	url := serve(t, src)
	first, _, _ := start(t, "sync", "--follow", url+"/", "--out", out)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(out + ".checkpoint"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("first sync wrote no checkpoint")
		}
		time.Sleep(20 * time.Millisecond)
	}
	began := time.Now()
	r := lockstep(t, "sync", url+"/", "--out", out)
	if r.code != 1 || !strings.Contains(r.stderr, "another lockstep process") || !strings.Contains(r.stderr, "--wait") || time.Since(began) > 5*time.Second {
		t.Fatalf("second sync: exit %d after %s: %s", r.code, time.Since(began), r.stderr)
	}
	// --wait waits for the lock instead; SIGINT makes the follower write
	// what it applied, exit 0 and release it.
	waiter, _, waitErr := start(t, "sync", "--wait", url+"/", "--out", out)
	waitUntil(t, "sync --wait to open the lock file", func() bool { return holdsOpen(waiter.Process.Pid, state.LockPath(out)) })
	first.Process.Signal(os.Interrupt)
	if err := first.Wait(); err != nil {
		t.Fatalf("sync --follow after SIGINT: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- waiter.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(waitErr.String(), "1 record,") {
			t.Fatalf("sync --wait: %v %s", err, waitErr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("sync --wait still waiting after the lock was released")
	}
}

func TestSync_ResyncAndMassDeleteGuard(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "s.jsonl")
	var lines []string
	for i := 1; i <= 150; i++ {
		lines = append(lines, line(i, i))
	}
	writeFile(t, src, lines...)
	url := serve(t, src, "--finite")
	if r := lockstep(t, "sync", url+"/", "--out", out); r.code != 0 {
		t.Fatal(r.stderr)
	}
	full := readFile(t, out)
	// The endpoint loses most of its table.
	writeFile(t, filepath.Join(dir, "small.jsonl"), line(1, 1), line(2, 500))
	small := serve(t, filepath.Join(dir, "small.jsonl"), "--finite")
	os.WriteFile(out+".checkpoint", bytes.ReplaceAll([]byte(readFile(t, out+".checkpoint")), []byte(url), []byte(small)), 0o644)
	r := lockstep(t, "sync", small+"/", "--out", out, "--resync")
	if r.code != 1 || !strings.Contains(r.stderr, "would remove 148 of 150") {
		t.Fatalf("guard: exit %d %s", r.code, r.stderr)
	}
	if readFile(t, out) != full {
		t.Fatal("refused resync changed the snapshot")
	}
	r = lockstep(t, "sync", small+"/", "--out", out, "--resync", "--max-delete", "100%")
	if r.code != 0 || readFile(t, out) != line(1, 1)+line(2, 500) {
		t.Fatalf("--max-delete 100%%: exit %d %s\n%s", r.code, r.stderr, readFile(t, out))
	}
}

func TestSync_DamagedSnapshotRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "s.jsonl")
	writeFile(t, src, line(1, 1), line(2, 2), line(3, 3))
	url := serve(t, src, "--finite")
	if r := lockstep(t, "sync", url+"/", "--out", out); r.code != 0 {
		t.Fatal(r.stderr)
	}
	damaged := line(1, 1) + `{"id":2,"updated_` + "\n" + line(3, 3)
	os.WriteFile(out, []byte(damaged), 0o644)
	r := lockstep(t, "sync", url+"/", "--out", out)
	if r.code != 1 || !strings.Contains(r.stderr, out+" does not match its checkpoint") || !strings.Contains(r.stderr, "--resync") {
		t.Fatalf("exit %d %s", r.code, r.stderr)
	}
	if readFile(t, out) != damaged {
		t.Fatal("damaged snapshot was rewritten without --resync")
	}
	if r := lockstep(t, "sync", url+"/", "--out", out, "--resync"); r.code != 0 || readFile(t, out) != line(1, 1)+line(2, 2)+line(3, 3) {
		t.Fatalf("--resync: %d %s", r.code, r.stderr)
	}
}

// Credentials never reach any output or file.
func TestSecretsNeverShown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, out, cp := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "s.jsonl"), filepath.Join(dir, "cursor")
	writeFile(t, src, line(1, 1))
	base := serve(t, src, "--finite")
	withUser := strings.Replace(base, "http://", "http://alice:PASSWORD1@", 1) + "/?token=PASSWORD2"
	runs := []result{
		lockstep(t, "tail", "--once", "--checkpoint", cp, "-H", "Authorization: Bearer PASSWORD3", "-H", "X-Api-Key: PASSWORD4", withUser),
		lockstep(t, "sync", "--user", "bob:PASSWORD5", withUser, "--out", out),
		lockstep(t, "tail", "--once", "--retry-for", "200ms", "http://carol:PASSWORD6@127.0.0.1:1/"),
		lockstep(t, "tail", "-H", "Authorization PASSWORD7", base+"/"),
		lockstep(t, "dump", "--user", "dan:PASSWORD8", base+"/%zz"),
	}
	var all strings.Builder
	for _, r := range runs {
		all.WriteString(r.stdout + r.stderr)
	}
	for _, f := range []string{cp, out, out + ".checkpoint", out + ".lock"} {
		all.WriteString(readFile(t, f))
	}
	env := exec.Command(binary, "sync", "--help")
	env.Env = append(os.Environ(), "LOCKSTEP_USER=eve:PASSWORD9", "LOCKSTEP_HEADER=Authorization: PASSWORD0")
	help, _ := env.CombinedOutput()
	all.Write(help)
	if m := regexp.MustCompile(`PASSWORD\d`).FindAllString(all.String(), -1); m != nil {
		t.Fatalf("secrets shown: %v\n%s", m, all.String())
	}
	if !strings.Contains(all.String(), "alice:***@") {
		t.Fatalf("redacted URL not shown:\n%s", all.String())
	}
}

// For the fault tests: a line-buffered view of a running process's stderr.
type lines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Other field names, end to end; dump FILE takes them from the checkpoint.
func TestCustomFieldNames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "r.jsonl")
	writeFile(t, src, `{"k":"b","v":"2024-01-02","gone":null}`+"\n", `{"k":"a","v":"2024-01-01"}`+"\n", `{"k":"c","v":"2024-01-03","gone":"2024-01-03"}`+"\n")
	url := serve(t, src, "--finite", "--key", "k", "--order-by", "v", "--deleted-field", "gone")
	r := lockstep(t, "sync", "--key", "k", "--order-by", "v", "--deleted-field", "gone", url+"/", "--out", out)
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	want := `{"k":"a","v":"2024-01-01"}` + "\n" + `{"k":"b","v":"2024-01-02","gone":null}` + "\n"
	if got := lockstep(t, "dump", out); got.stdout != want {
		t.Fatalf("dump: %q %s", got.stdout, got.stderr)
	}
	if !strings.Contains(readFile(t, out+".checkpoint"), `"cursor": "2024-01-02"`) {
		t.Fatalf("checkpoint: %s", readFile(t, out+".checkpoint"))
	}
}
