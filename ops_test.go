package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/replica"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The tests in this file drive newApp in-process one at a time (its
// commands and flags are package variables, and urfave/cli keeps a value
// read from the environment in them, so those run the binary), except
// those that start the binary, which run in parallel.

// runApp runs lockstep in-process and returns stdout and what a user sees
// on stderr, error included, with timestamps removed.
func runApp(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := newApp(&out, &errOut)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append([]string{"lockstep"}, args...)
	app.Metadata[rawArgsKey] = args // as main keeps them
	err := app.RunContext(ctx, args)
	code = exitCode(err, commandLogger(app))
	return out.String(), dateRE.ReplaceAllString(errOut.String(), ""), code
}

// runBinary runs the binary with more environment variables.
func runBinary(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	// Every case here ends by itself at once: one still running after
	// 20s is a failure, not a wait.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("lockstep %v: still running after 20s; stderr:\n%s", args, errOut.String())
	}
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), dateRE.ReplaceAllString(errOut.String(), ""), code
}

// fileServer answers every request with the file as it is now.
func fileServer(t *testing.T, path string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := os.ReadFile(path)
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

var dateRE = regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) `)

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		os.WriteFile(path, []byte(got), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s:\n%s\nwant:\n%s", path, got, want)
	}
}

// The messages a new user met, as they read now: testdata/messages/NAME.
func TestMessages_Golden(t *testing.T) {
	t.Parallel()
	src := finiteServer([]byte(line(1, 10) + line(2, 20)))
	defer src.Close()
	one := finiteServer([]byte(line(1, 10)))
	defer one.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "servers.jsonl")
	// What a SQLite database begins with.
	sqliteFile := filepath.Join(dir, "servers.db")
	writeFile(t, sqliteFile, "SQLite format 3\x00", strings.Repeat("\x00", 84))
	notes := filepath.Join(dir, "notes.md")
	writeFile(t, notes, "# notes")
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"unknown-flag", nil, []string{"--bogus"}},
		{"unknown-command", nil, []string{"snyc"}},
		{"help-unknown-command", nil, []string{"help", "snyc"}},
		{"unknown-command-flag", nil, []string{"sync", "--ot", "x", "http://h/"}},
		{"env-format-meant", map[string]string{"LOCKSTEP_TAIL_FORMAT": "table"}, []string{"tail", "--once", src.URL + "/"}},
		{"env-format-wrong", map[string]string{"LOCKSTEP_TAIL_FORMAT": "csv"}, []string{"tail", "--once", src.URL + "/"}},
		// --format means something else to each command, so each has its
		// own variable: dump's csv is no concern of tail's or check's.
		{"env-format-other-command", map[string]string{"LOCKSTEP_DUMP_FORMAT": "csv"}, []string{"tail", "--once", src.URL + "/"}},
		{"env-format-dump", map[string]string{"LOCKSTEP_DUMP_FORMAT": "csv"}, []string{"dump", src.URL + "/"}},
		{"env-format-check", map[string]string{"LOCKSTEP_DUMP_FORMAT": "csv", "LOCKSTEP_CHECK_FORMAT": "xml"}, []string{"check", src.URL + "/"}},
		{"env-bool", map[string]string{"LOCKSTEP_ONCE": "yes"}, []string{"tail", src.URL + "/"}},
		{"env-format-old", map[string]string{"LOCKSTEP_FORMAT": "csv"}, []string{"tail", "--once", src.URL + "/"}},
		{"env-header-no-colon", map[string]string{"LOCKSTEP_HEADER": "Authorization Bearer s3cret"}, []string{"tail", "--once", src.URL + "/"}},
		{"env-duration", map[string]string{"LOCKSTEP_IDLE": "2"}, []string{"tail", src.URL + "/"}},
		{"duration-unit", nil, []string{"dump", "--max-age", "5", "servers.jsonl"}},
		{"duration-negative", nil, []string{"tail", "--idle", "-1s", src.URL + "/"}},
		{"insecure-http", nil, []string{"tail", "--insecure", "--once", "--retry-for", "0", "http://127.0.0.1:1/"}},
		{"dump-bad-url", nil, []string{"dump", "http://"}},
		{"sync-one-record", nil, []string{"sync", "--out", out + "1", one.URL + "/"}},
		{"sync-changes", nil, []string{"sync", "--out", out, src.URL + "/"}},
		{"sync-nothing-new", nil, []string{"sync", "--out", out, src.URL + "/"}},
		{"sync-quiet-nothing-new", nil, []string{"sync", "-q", "--out", out, src.URL + "/"}},
		{"completion-unknown", nil, []string{"completion", "tcsh"}},
		{"tail-invalid-port", nil, []string{"tail", "http://h:99999/x/"}},
		{"sync-invalid-port", nil, []string{"sync", "--follow", "--out", out + "2", "https://user:pw@h:0/x/"}},
		{"tail-empty-url", nil, []string{"tail", ""}},
		{"tail-no-scheme", nil, []string{"tail", "127.0.0.1:4567/x/"}},
		{"check-no-scheme", nil, []string{"check", "user:pw@localhost/x/"}},
		{"dump-no-scheme", nil, []string{"dump", "user:hunter2@127.0.0.1:1/"}},
		{"tail-password-hash", nil, []string{"tail", "--once", "http://user:p@ss#w@127.0.0.1:1/"}},
		{"sync-out-not-a-snapshot", nil, []string{"sync", "--out", notes, src.URL + "/"}},
		{"sync-resync-not-a-snapshot", nil, []string{"sync", "--resync", "--out", notes, src.URL + "/"}},
		{"sync-out-sqlite-not-a-db", nil, []string{"sync", "--out", "sqlite:" + notes, src.URL + "/"}},
		{"sync-out-bad-table", nil, []string{"sync", "--out", "sqlite:x.db?table=lockstep_meta", "http://127.0.0.1:1/"}},
		{"sync-out-keyword-dsn", nil, []string{"sync", "--out", "host=db dbname=ops password=hunter2", "http://127.0.0.1:1/"}},
		{"sync-out-password-at", nil, []string{"sync", "--retry-for", "0", "--out", "postgres://app:p@ss?w#rd@127.0.0.1:1/ops?connect_timeout=1&table=t1", "http://127.0.0.1:1/"}},
		{"tail-not-a-url", nil, []string{"tail", "servers"}},
		{"tail-a-file", nil, []string{"tail", "testdata/servers.jsonl"}},
		{"dump-empty", nil, []string{"dump", ""}},
		{"dump-ftp", nil, []string{"dump", "ftp://x/"}},
		{"dump-sqlite-empty", nil, []string{"dump", "sqlite:"}},
		{"sync-out-sqlite-empty", nil, []string{"sync", "--out", "sqlite:", "http://127.0.0.1:1/"}},
		{"dump-sqlite-file", nil, []string{"dump", sqliteFile}},
		{"serve-empty", nil, []string{"serve", ""}},
		{"dump-url-empty-key", nil, []string{"dump", "--key", "", "http://127.0.0.1:1/"}},
		{"serve-addr-bogus", nil, []string{"serve", "--addr", "4567", "servers.jsonl"}},
		{"tail-metrics-bogus", nil, []string{"tail", "--once", "--retry-for", "0", "--metrics", "bogus", "http://127.0.0.1:1/"}},
		{"sync-metrics-bad-port", nil, []string{"sync", "--follow", "--metrics", "127.0.0.1:http", "--out", out + "2", "http://127.0.0.1:1/"}},
		{"sync-out-sqlite-file", nil, []string{"sync", "--out", sqliteFile, "http://127.0.0.1:1/"}},
		{"check-timeout-zero", nil, []string{"check", "--timeout", "0", "http://127.0.0.1:1/"}},
		{"check-max-silence-negative", nil, []string{"check", "--max-silence", "-1s", "http://127.0.0.1:1/"}},
		{"check-max-bytes-zero", nil, []string{"check", "--max-bytes", "0", "http://127.0.0.1:1/"}},
		{"sync-flush-interval-zero", nil, []string{"sync", "--follow", "--flush-interval", "0", "--out", out + "2", "http://127.0.0.1:1/"}},
		{"serve-heartbeat-negative", nil, []string{"serve", "--heartbeat", "-1s", "servers.jsonl"}},
		{"tail-poll-zero", map[string]string{"LOCKSTEP_POLL": "0s"}, []string{"tail", "--once", "--retry-for", "0", "http://127.0.0.1:1/"}},
		{"tail-health-max-age-zero", nil, []string{"tail", "--once", "--retry-for", "0", "--metrics", "127.0.0.1:0", "--health-max-age", "0", "http://127.0.0.1:1/"}},
		{"tail-max-record-size-zero", nil, []string{"tail", "--once", "--retry-for", "0", "--max-record-size", "0", "http://127.0.0.1:1/"}},
		{"sync-max-delete-bad", nil, []string{"sync", "--retry-for", "0", "--max-delete", "150%", "--out", out + "2", "http://127.0.0.1:1/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runBinary(t, tt.env, tt.args...)
			shown := make([]string, len(tt.args))
			for i, a := range tt.args {
				if shown[i] = a; a == "" {
					shown[i] = "''"
				}
			}
			got := fmt.Sprintf("$ %s lockstep %s\nexit %d\n%s%s", envText(tt.env), strings.Join(shown, " "), code, stdout, stderr)
			got = strings.NewReplacer(src.URL, "URL", one.URL, "URL", dir, "DIR").Replace(got)
			golden(t, filepath.Join("testdata", "messages", tt.name), got)
		})
	}
}

func envText(env map[string]string) string {
	var s []string
	for k, v := range env {
		s = append(s, k+"="+v)
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}

// The completion scripts and the words completion offers, from the same
// definitions as --help.
func TestCompletion_Golden(t *testing.T) {
	for _, args := range [][]string{
		{"completion", "bash"},
		{"completion", "zsh"},
		{"completion", "fish"},
		{"--generate-bash-completion"},
		{"dump", "--generate-bash-completion"},
		{"sync", "--o", "--generate-bash-completion"},
		{"completion", "--generate-bash-completion"},
		{"--log-format", "json", "sync", "--re", "--generate-bash-completion"},
		{"tail", "--format", "--generate-bash-completion"},
		{"dump", "--on-bad-record", "--generate-bash-completion"},
		{"-q", "--generate-bash-completion"},
	} {
		// urfave/cli's completion reads os.Args, so it runs the binary.
		stdout, stderr, code := runBinary(t, nil, args...)
		if code != 0 || stderr != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, stderr)
		}
		golden(t, filepath.Join("testdata", "completion", strings.NewReplacer(" ", "_", "-", "").Replace(strings.Join(args, " "))), stdout)
	}
	if stdout, _, code := runApp(t, "man"); code != 0 || !strings.Contains(stdout, ".SH") || !strings.Contains(stdout, "on-change") ||
		!strings.Contains(stdout, ".SH ENVIRONMENT") || !strings.Contains(stdout, ".SH EXIT STATUS") {
		t.Errorf("man: exit %d, not a man page with every command, its environment and exit status:\n%.300s", code, stdout)
	}
	if _, _, code := runApp(t, "man", "extra"); code != exitUsage {
		t.Errorf("man extra: exit %d, want %d", code, exitUsage)
	}
}

// -v shows each request and response, and no credential of any kind.
func TestVerbose_ShowsExchangesNeverSecrets(t *testing.T) {
	src := finiteServer([]byte(line(1, 10)))
	defer src.Close()
	u := strings.Replace(src.URL, "http://", "http://alice:hunter2@", 1) + "/?token=tok3n&region=eu"
	_, stderr, code := runApp(t, "tail", "-v", "--once", "-H", "X-Api-Key: k3y", "-H", "X-Trace: tr4ce", u)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"> GET http://127.0.0.1:", "token=***", "region=eu", "> Authorization: ***", "> X-Api-Key: ***", "> X-Trace: ***", "< HTTP/1.1 200 OK", "bytes in"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("no %q in:\n%s", want, stderr)
		}
	}
	for _, secret := range []string{"hunter2", "tok3n", "k3y", "tr4ce", "YWxpY2U6aHVudGVyMg"} {
		if strings.Contains(stderr, secret) {
			t.Errorf("%q shown:\n%s", secret, stderr)
		}
	}
	_, stderr, _ = runApp(t, "tail", "-v", "--log-format", "json", "--once", "--user", "bob:s3cret", u)
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["time"] == nil || rec["level"] == nil || rec["msg"] == nil {
			t.Errorf("not a JSON log line with time, level and msg: %q (%v)", l, err)
		}
	}
	if strings.Contains(stderr, "s3cret") || strings.Contains(stderr, "hunter2") {
		t.Errorf("a password shown:\n%s", stderr)
	}
}

// A redirect's Location is shown redacted, in text and in JSON logs, and
// a JSON log line keeps one "time", the timestamp.
func TestVerbose_RedirectLocationRedacted(t *testing.T) {
	src := finiteServer([]byte(line(1, 10)))
	defer src.Close()
	target := strings.Replace(src.URL, "http://", "http://ruser:rpass99@", 1) + "/?access_token=QQQ&region=eu"
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", target)
		w.Header().Set("Link", "<"+target+">; rel=next, </next?token=QQQ>; rel=\"next\"")
		w.Header().Set("Content-Location", "//bob:rpass99@host/c?sig=QQQ")
		w.Header().Add("Refresh", "0; url=/b/?access_token=QQQ")
		w.WriteHeader(http.StatusFound)
	}))
	defer redir.Close()
	for _, format := range []string{"text", "json"} {
		_, stderr, _ := runApp(t, "tail", "-v", "--log-format", format, "--once", "--retry-for", "0", redir.URL+"/")
		if !strings.Contains(stderr, "Location") || !strings.Contains(stderr, "region=eu") {
			t.Errorf("%s: no Location shown:\n%s", format, stderr)
		}
		for _, secret := range []string{"rpass99", "QQQ"} {
			if strings.Contains(stderr, secret) {
				t.Errorf("%s: %q shown:\n%s", format, secret, stderr)
			}
		}
		if format == "json" {
			for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
				if strings.Count(l, `"time":`) != 1 {
					t.Errorf("not one time key: %s", l)
				}
			}
		}
	}
}

// -q says nothing unless something changed; the summary of a change stays.
func TestQuiet_OnlyChanges(t *testing.T) {
	data := []byte(line(1, 10))
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	defer src.Close()
	out := filepath.Join(t.TempDir(), "s.jsonl")
	if _, stderr, code := runApp(t, "sync", "-q", "--out", out, src.URL+"/"); code != 0 || !strings.Contains(stderr, "+1 ~0 -0") {
		t.Errorf("first sync: exit %d, stderr %q; want the summary of a change", code, stderr)
	}
	if _, stderr, code := runApp(t, "sync", "-q", "--out", out, src.URL+"/"); code != 0 || stderr != "" {
		t.Errorf("sync with nothing new: exit %d, stderr %q; want nothing", code, stderr)
	}
}

func TestDump_FieldsAndFormats(t *testing.T) {
	src := finiteServer([]byte(line(2, 20, `,"ip":"10.0.0.2","port":80,"note":"a\tb, \"c\""`) + line(1, 10, `,"ip":"10.0.0.1","tags":["x"]`)))
	defer src.Close()
	for _, tt := range []struct{ name, format, fields string }{
		{"fields.json", "json", "ip,id,port"},
		{"all.csv", "csv", ""},
		{"fields.csv", "csv", "id,note"},
		{"all.tsv", "tsv", ""},
		{"fields.table", "table", "id,ip,port"},
	} {
		args := []string{"dump", "--format", tt.format, "--color", "never"}
		if tt.fields != "" {
			args = append(args, "--fields", tt.fields)
		}
		stdout, stderr, code := runApp(t, append(args, src.URL+"/")...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tt.name, code, stderr)
		}
		golden(t, filepath.Join("testdata", "dump", tt.name), stdout)
	}
	if _, stderr, code := runApp(t, "dump", "--fields", "id,,ip", src.URL+"/"); code != exitUsage || !strings.Contains(stderr, "empty field name") {
		t.Errorf("--fields id,,ip: exit %d %q", code, stderr)
	}
}

// --on-change runs a real command after a change, with the counts, not
// after a run that changed nothing; its failure does not fail the sync.
func TestSync_OnChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 10), line(2, 20))
	url := fileServer(t, src)
	out, log := filepath.Join(dir, "replica.jsonl"), filepath.Join(dir, "hook.log")
	hook := `echo "+$LOCKSTEP_INSERTS ~$LOCKSTEP_UPDATES -$LOCKSTEP_DELETES $LOCKSTEP_RECORDS $LOCKSTEP_CURSOR $(basename $LOCKSTEP_SNAPSHOT)" >>` + log
	for i, change := range []string{"", "", tomb(1, 30) + line(3, 30)} {
		if change != "" {
			appendFile(t, src, change)
		}
		if r := lockstep(t, "sync", "--on-change", hook, url, "--out", out); r.code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	if got, want := readFile(t, log), "+2 ~0 -0 2 20 replica.jsonl\n+1 ~0 -1 2 30 replica.jsonl\n"; got != want {
		t.Errorf("hook runs:\n%s\nwant:\n%s", got, want)
	}
	appendFile(t, src, line(4, 40))
	r := lockstep(t, "sync", "--on-change", "echo failing >&2; exit 3", url, "--out", out)
	if r.code != 0 || !strings.Contains(r.stderr, "failing") || !strings.Contains(r.stderr, "--on-change: exited 3") {
		t.Errorf("failing hook: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	appendFile(t, src, line(5, 50))
	r = lockstep(t, "sync", "--on-change", "sleep 10", "--on-change-timeout", "200ms", url, "--out", out)
	if r.code != 0 || !strings.Contains(r.stderr, "killed after --on-change-timeout 200ms") {
		t.Errorf("slow hook: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// A hook does not inherit the LOCKSTEP_ variables that configure lockstep,
// which may hold credentials; it gets its own.
func TestHook_NoInheritedCredentials(t *testing.T) {
	t.Parallel()
	src := finiteServer([]byte(line(1, 10)))
	defer src.Close()
	dir := t.TempDir()
	log := filepath.Join(dir, "env")
	_, stderr, code := runBinary(t, map[string]string{"LOCKSTEP_USER": "bob:envsecret", "LOCKSTEP_HEADER": "X-Token: hdrenvsecret", "HOME_TEST_KEPT": "kept"},
		"sync", "--on-change", "env > "+log, "--out", filepath.Join(dir, "r.jsonl"), src.URL+"/")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	env := readFile(t, log)
	for _, secret := range []string{"envsecret", "hdrenvsecret"} {
		if strings.Contains(env, secret) {
			t.Errorf("the hook's environment holds %q", secret)
		}
	}
	if !strings.Contains(env, "HOME_TEST_KEPT=kept") || !strings.Contains(env, "LOCKSTEP_RECORDS=1") {
		t.Errorf("the hook's environment lacks what it should have:\n%s", env)
	}
}

// Commits made while the hook runs are merged into one more run: never
// two at once, nothing lost.
func TestHook_NeverTwoAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	var stderr lines
	h := &hook{
		cmd:     fmt.Sprintf(`mkdir %[1]s/running || echo overlap >>%[2]s; sleep 0.2; echo $LOCKSTEP_INSERTS >>%[2]s; rmdir %[1]s/running`, dir, log),
		timeout: 10 * time.Second, log: plainLogger(&stderr),
	}
	for range 3 {
		h.committed(replica.Commit{Inserts: 1})
	}
	h.committed(replica.Commit{}) // no change: no run
	h.wait()
	if got := readFile(t, log); got != "1\n2\n" {
		t.Errorf("runs:\n%s\nwant 1 then 2 (merged); stderr: %s", got, stderr.String())
	}
}

// /metrics is valid Prometheus text, /healthz says whether the replica is
// fresh.
func TestMetrics_PrometheusText(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 10), line(2, 20), line(3, 30))
	url := serve(t, src) + "/"
	_, _, stderr := start(t, "sync", "--follow", "--idle", "100ms", "--metrics", "127.0.0.1:0", url, "--out", filepath.Join(dir, "r.jsonl"))
	addrRE := regexp.MustCompile(`metrics on http://(\S+)/metrics`)
	var base string
	deadline := time.Now().Add(20 * time.Second)
	for base == "" && time.Now().Before(deadline) {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			base = "http://" + m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	if base == "" {
		t.Fatalf("no metrics address in stderr:\n%s", stderr.String())
	}
	appendFile(t, src, tomb(1, 40))
	var families map[string]*dto.MetricFamily
	for {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err = parser.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("/metrics does not parse as Prometheus text: %v", err)
		}
		if value(families, "lockstep_records_applied_total", "delete") == 1 && value(families, "lockstep_records", "") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed 3 inserts and 1 delete; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for name, want := range map[string]float64{"lockstep_caught_up": 1, "lockstep_reconnects_total": 0} {
		if got := value(families, name, ""); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if value(families, "lockstep_records_applied_total", "insert") != 3 || value(families, "lockstep_received_bytes_total", "") == 0 {
		t.Errorf("inserts %v, bytes %v", value(families, "lockstep_records_applied_total", "insert"), value(families, "lockstep_received_bytes_total", ""))
	}
	for _, name := range []string{"lockstep_last_contact_timestamp_seconds", "lockstep_last_caught_up_timestamp_seconds"} {
		if ts := value(families, name, ""); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
			t.Errorf("%s = %v, not recent", name, ts)
		}
	}
	for _, name := range []string{"lockstep_write_duration_seconds", "lockstep_commit_lag_seconds"} {
		if f := families[name]; f == nil || f.Metric[0].GetHistogram().GetSampleCount() == 0 {
			t.Errorf("%s: no observation", name)
		}
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz %d, want 200 while caught up", resp.StatusCode)
	}
}

// value is a counter's or gauge's value, with label kind when given.
func value(families map[string]*dto.MetricFamily, name, kind string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		if kind != "" {
			ok := false
			for _, l := range m.Label {
				ok = ok || l.GetName() == "kind" && l.GetValue() == kind
			}
			if !ok {
				continue
			}
		}
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	return -1
}

func TestHealth_StaleAfterMaxAge(t *testing.T) {
	m := newMetrics(time.Minute)
	now := time.Now()
	if ok, _ := m.health(now); ok {
		t.Error("healthy before catching up")
	}
	m.setCaughtUp(now.Add(-30 * time.Second))
	if ok, msg := m.health(now); !ok {
		t.Errorf("unhealthy 30s after catching up: %s", msg)
	}
	if ok, msg := m.health(now.Add(time.Minute)); ok || !strings.Contains(msg, "--health-max-age 1m") {
		t.Errorf("healthy 90s after catching up: %s", msg)
	}
}

func TestBuildVersion_NotEmpty(t *testing.T) {
	if v := buildVersion(); v == "" {
		t.Error("empty version")
	}
}

// --max-age is --health-max-age for the commands that serve /healthz,
// as dump's --max-age is for a file.
func TestHealth_MaxAgeAlias(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 10))
	url := serve(t, src, "--finite") + "/"
	_, _, stderr := start(t, "tail", "--poll", "10s", "--max-age", "1ns", "--metrics", "127.0.0.1:0", url)
	base := metricsAddr(t, stderr)
	waitUntil(t, "/healthz to say stale", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 503 && strings.Contains(string(body), "stale")
	})
	if r := lockstep(t, "sync", "--help"); !strings.Contains(r.stdout, "--health-max-age value, --max-age value") {
		t.Errorf("sync --help does not show --max-age:\n%s", r.stdout)
	}
}

// metricsAddr waits for the line that says where --metrics listens.
func metricsAddr(t *testing.T, stderr *lines) string {
	t.Helper()
	addrRE := regexp.MustCompile(`metrics on http://(\S+)/metrics`)
	var base string
	waitUntil(t, "the metrics address", func() bool {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			base = "http://" + m[1]
		}
		return base != ""
	})
	return base
}

// The manual page is for section 1 (a user command), keeps the text in
// angle brackets, and has one section per command.
func TestMan_Page(t *testing.T) {
	stdout, _, code := runApp(t, "man")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{".TH lockstep 1", "LOCKSTEP_<FLAG>", "LOCKSTEP_DUMP_FORMAT"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no %q in the man page", want)
		}
	}
	if n := strings.Count(stdout, "help, h\n"); n != 1 {
		t.Errorf("%d sections for help, want 1", n)
	}
	// Each command is a subsection with its synopsis and its examples.
	for _, want := range []string{".SS tail", ".SS sync", `lockstep sync\fP [OPTIONS] URL`, "lockstep sync --follow --metrics :9100 --log-format json", ".SH ENVIRONMENT"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no %q in the man page", want)
		}
	}
	if strings.Contains(stdout, ".SH tail") {
		t.Error("the tail command is a section of its own, not a subsection of COMMANDS")
	}
	md, _, _ := runApp(t, "man", "--markdown")
	if !strings.Contains(md, `LOCKSTEP_\<FLAG\>`) || strings.Count(md, "help, h\n") != 1 {
		t.Errorf("markdown: the angle brackets not escaped, or help twice:\n%.2000s", md)
	}
}

// tail's lockstep_records is the number of live keys it tracks.
func TestMetrics_TailRecords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 10), line(2, 20), line(3, 30), tomb(2, 40))
	url := serve(t, src) + "/"
	_, _, stderr := start(t, "tail", "--idle", "100ms", "--metrics", "127.0.0.1:0", url)
	base := metricsAddr(t, stderr)
	waitUntil(t, "lockstep_records to be 2", func() bool {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return value(families, "lockstep_records", "") == 2
	})
}

// serve takes -q and -v as every command does, before or after its name;
// -v shows each request, its secrets redacted.
func TestServe_LogFlags(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "s.jsonl")
	writeFile(t, file, line(1, 10))
	for _, args := range [][]string{{"serve", "-q", "-v"}, {"-v", "serve"}} {
		_, _, stderr := start(t, append(args, "--addr", "127.0.0.1:0", file)...)
		var url string
		waitUntil(t, "the serving line", func() bool {
			url = regexp.MustCompile(`http://\S+/`).FindString(stderr.String())
			return url != ""
		})
		resp, err := http.Get(url + "0?token=abc")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		waitUntil(t, "the request shown", func() bool { return strings.Contains(stderr.String(), "GET /0?token=*** from") })
		if strings.Contains(stderr.String(), "abc") {
			t.Errorf("%v: the token shown:\n%s", args, stderr)
		}
	}
}

// A snapshot is read with the fields its checkpoint names: a flag that
// names another is refused, saying which the file was written with.
func TestDump_FieldsOtherThanTheCheckpoints(t *testing.T) {
	src := finiteServer([]byte(line(1, 10) + line(2, 20)))
	defer src.Close()
	out := filepath.Join(t.TempDir(), "r.jsonl")
	if _, stderr, code := runApp(t, "sync", "--out", out, src.URL+"/"); code != 0 {
		t.Fatalf("sync: exit %d: %s", code, stderr)
	}
	for _, args := range [][]string{{"--key", "name"}, {"--order-by", "ts"}, {"--deleted-field", "gone"}} {
		_, stderr, code := runApp(t, append(append([]string{"dump"}, args...), out)...)
		flag, value := args[0], args[1]
		want := fmt.Sprintf("was written with %s %s, not %s (drop %s)", flag, map[string]string{"--key": "id", "--order-by": "updated_at", "--deleted-field": "deleted_at"}[flag], value, flag)
		if code != exitUsage || !strings.Contains(stderr, want) {
			t.Errorf("dump %s: exit %d %q, want %d and %q", args, code, stderr, exitUsage, want)
		}
	}
	if stdout, stderr, code := runApp(t, "dump", "--key", "id", out); code != 0 || strings.Count(stdout, "\n") != 2 {
		t.Errorf("dump --key id (the checkpoint's): exit %d %q %q", code, stdout, stderr)
	}
	// In a process of its own: the app's flags keep what the environment set.
	if _, stderr, code := runBinary(t, map[string]string{"LOCKSTEP_ORDER_BY": "ts"}, "dump", out); code != exitUsage || !strings.Contains(stderr, "not ts (unset LOCKSTEP_ORDER_BY)") {
		t.Errorf("LOCKSTEP_ORDER_BY=ts dump: exit %d %q", code, stderr)
	}
}
