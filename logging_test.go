package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// Every line lockstep writes to a stderr that is not a terminal is dated,
// usage errors too, whether they are found before the command reads its
// flags or after; with --log-format json every line is a JSON object,
// wherever the flag is given.
func TestLogLines_AllDatedOrAllJSON(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--bogus"},
		{"snyc"},
		{"help", "snyc"},
		{"tail", "--bogus", "http://127.0.0.1:1/"},
		{"tail", "--idle", "-1s", "http://127.0.0.1:1/"},
		{"tail", ""},
		{"tail", "--once", "--retry-for", "0", "http://127.0.0.1:1/"},
		{"dump", "--format", "xml", "x"},
	} {
		r := lockstep(t, args...)
		if r.code == 0 || r.stderr == "" {
			t.Errorf("%q: exit %d, stderr %q: want an error", args, r.code, r.stderr)
		}
		for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
			if !dateRE.MatchString(l) {
				t.Errorf("%q: an undated line: %q", args, l)
			}
		}
		for _, jargs := range [][]string{
			append([]string{"--log-format", "json"}, args...),
			append(args[:1:1], append([]string{"--log-format=json"}, args[1:]...)...),
		} {
			r := lockstep(t, jargs...)
			for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["time"] == nil || rec["msg"] == nil {
					t.Errorf("%q: not a JSON log line: %q", jargs, l)
				}
			}
		}
	}
}

// The log flags work before the command as after it.
func TestLogFlags_BeforeTheCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 10))
	url := fileServer(t, src)
	out := filepath.Join(dir, "r.jsonl")
	r := lockstep(t, "--log-format", "json", "-q", "sync", url, "--out", out)
	if r.code != 0 || !strings.HasPrefix(r.stderr, `{"time":`) || !strings.Contains(r.stderr, `"inserts":1`) {
		t.Errorf("exit %d, stderr %q: want the summary as JSON", r.code, r.stderr)
	}
	if r := lockstep(t, "-q", "sync", url, "--out", out); r.code != 0 || r.stderr != "" {
		t.Errorf("-q before sync: exit %d, stderr %q: want nothing", r.code, r.stderr)
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}
}

// With --log-format json the --on-change command's output comes as JSON
// log lines too, a line of output each.
func TestOnChange_OutputInJSONLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 10))
	url := fileServer(t, src)
	r := lockstep(t, "sync", "--log-format", "json", "--on-change", `echo "hello $LOCKSTEP_INSERTS"; printf 'oops\nno newline' >&2`, url, "--out", filepath.Join(dir, "r.jsonl"))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
		var rec struct {
			Msg, Source, Stream string
			Time                any
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Time == nil {
			t.Errorf("not a JSON log line: %q", l)
			continue
		}
		if rec.Source == "on-change" {
			got = append(got, rec.Stream+": "+rec.Msg)
		}
	}
	slices.Sort(got)
	if want := []string{"stderr: no newline", "stderr: oops", "stdout: hello 1"}; !slices.Equal(got, want) {
		t.Errorf("hook output %q, want %q\n%s", got, want, r.stderr)
	}
}

// A --wait that a signal interrupts says so in words.
func TestWait_Interrupted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 10))
	url := serve(t, src) + "/"
	for _, cmd := range [][]string{
		{"sync", "--follow", url, "--out", filepath.Join(dir, "r.jsonl")},
		{"tail", "--checkpoint", filepath.Join(dir, "t.cursor"), url},
	} {
		holder, _, _ := start(t, cmd...)
		waitUntil(t, "the lock to be taken", func() bool {
			return holdsOpen(holder.Process.Pid, filepath.Join(dir, map[string]string{"sync": "r.jsonl.lock", "tail": "t.cursor.lock"}[cmd[0]]))
		})
		waiter, _, stderr := start(t, append([]string{cmd[0], "--wait"}, cmd[1:]...)...)
		waitUntil(t, "the waiter to say it waits", func() bool { return strings.Contains(stderr.String(), "--wait: waiting for pid") })
		waiter.Process.Signal(syscall.SIGTERM)
		waiter.Wait()
		if got := stderr.String(); strings.Contains(got, "context canceled") || !strings.Contains(got, "interrupted while waiting for pid") {
			t.Errorf("%s --wait, interrupted: %s", cmd[0], got)
		}
	}
}
