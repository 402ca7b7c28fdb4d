package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/endpoint"
	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/follow/followtest"
)

// checkFlags keep each check to a second or two: the data is small and
// local, so a short --idle ends a backlog, and a short --max-silence
// judges heartbeats.
var checkFlags = []string{"--timeout", "10s", "--idle", "200ms", "--max-silence", "1s"}

// checkRecords hold tombstones and two records at one order value, so that
// every probe has something to judge.
var checkRecords = []string{
	`{"id":1,"updated_at":10,"deleted_at":null,"ip":"10.0.0.1"}`,
	`{"id":2,"updated_at":20,"deleted_at":null,"ip":"10.0.0.2"}`,
	`{"id":3,"updated_at":20,"deleted_at":null,"ip":"10.0.0.3"}`,
	`{"id":4,"updated_at":30,"deleted_at":30}`,
	`{"id":5,"updated_at":40,"deleted_at":null,"ip":"10.0.0.5"}`,
	`{"id":6,"updated_at":50,"deleted_at":50}`,
}

// serverJS emulates the seed's server.js: it ignores the cursor, sends its
// records out of order with nothing between them, and never ends.
func serverJS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	for _, i := range []int{0, 2, 1, 4, 3, 5} {
		fmt.Fprint(w, checkRecords[i])
	}
	http.NewResponseController(w).Flush()
	<-r.Context().Done()
}

// serverRB emulates the seed's server.rb: every request gets every record,
// whatever the cursor.
func serverRB(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	for _, rec := range checkRecords {
		fmt.Fprintln(w, rec)
	}
}

// retained is a Source with a retention horizon, served by
// endpoint.Handler.
type retained struct{ *endpoint.Server }

func (retained) Horizon() follow.Order { return "5" }

func TestCheck(t *testing.T) {
	file := filepath.Join(t.TempDir(), "servers.jsonl")
	writeFile(t, file, strings.Join(checkRecords, "\n")+"\n")
	httpServer := func(h http.Handler) func(t *testing.T) string {
		return func(t *testing.T) string {
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			return srv.URL + "/servers/"
		}
	}
	fault := func(f followtest.Fault) func(t *testing.T) string {
		return func(t *testing.T) string {
			srv := followtest.NewUnstartedServer(checkRecords...)
			srv.Finite = true
			srv.Faults(f)
			srv.Start()
			t.Cleanup(srv.Close)
			return srv.URL + "/servers/"
		}
	}
	table := endpoint.New(endpoint.Options{})
	for _, r := range checkRecords {
		if err := table.Append([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		server func(t *testing.T) string
		code   int
	}{
		{"serve-finite", func(t *testing.T) string { return serve(t, file, "--finite") + "/servers/" }, exitOK},
		{"serve-endless", func(t *testing.T) string { return serve(t, file, "--heartbeat", "100ms", "--gzip") + "/servers/" }, exitOK},
		{"handler", httpServer(endpoint.NewHandler(retained{table}, endpoint.Options{Heartbeat: 100 * time.Millisecond, Gzip: true})), exitOK},
		{"server-js", httpServer(http.HandlerFunc(serverJS)), exitFailure},
		{"server-rb", httpServer(http.HandlerFunc(serverRB)), exitFailure},
		{"big-numbers", func(t *testing.T) string {
			srv := followtest.NewUnstartedServer(append(checkRecords, `{"id":7,"updated_at":9007199254740993,"deleted_at":null}`)...)
			srv.Finite = true
			srv.Start()
			t.Cleanup(srv.Close)
			return srv.URL + "/servers/"
		}, exitOK},
		{"fault-500", fault(followtest.Fault{Status: 500, Body: "database is down"}), exitFailure},
		{"fault-garbage", fault(followtest.Fault{After: 2, Inject: []byte("<html>oops</html>\n")}), exitFailure},
		{"fault-truncated", fault(followtest.Fault{After: 3, Inject: []byte(`{"id":9,"upda`), End: true}), exitFailure},
	}
	// One at a time: newApp's commands and flags are package variables.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.server(t)
			var out, errOut bytes.Buffer
			app := newApp(&out, &errOut)
			err := app.RunContext(context.Background(), append(append([]string{"lockstep", "check"}, checkFlags...), url))
			if code := exitCode(err, commandLogger(app)); code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s\n%s", code, tt.code, errOut.String(), out.String())
			}
			got := maskCheck(out.String(), strings.TrimSuffix(url, "/servers/"))
			golden(t, filepath.Join("testdata", "check", tt.name+".golden"), got)
		})
	}
}

var durationRE = regexp.MustCompile(`\b\d[\d.hmµn]*s\b`)

// maskCheck makes a report comparable across runs: the server's address
// and every duration vary.
func maskCheck(report, base string) string {
	return durationRE.ReplaceAllString(strings.ReplaceAll(report, base, "URL"), "<T>")
}

func TestCheck_JSONAndUsage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(serverRB))
	defer srv.Close()
	var out, errOut bytes.Buffer
	app := newApp(&out, &errOut)
	err := app.RunContext(context.Background(), append([]string{"lockstep", "check", "--format", "json"}, append(checkFlags, srv.URL+"/servers/")...))
	if code := exitCode(err, commandLogger(app)); code != exitFailure {
		t.Errorf("exit %d, want 1", code)
	}
	var report struct {
		Failed  bool
		Results []struct{ Probe, Status string }
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	failed := []string{}
	for _, r := range report.Results {
		if r.Status == "FAIL" {
			failed = append(failed, r.Probe)
		}
	}
	if !report.Failed || strings.Join(failed, " ") != "cursor" {
		t.Errorf("failed %v (%v), want the cursor probe", report.Failed, failed)
	}
	for _, args := range [][]string{{"check"}, {"check", "--format", "xml", srv.URL}, {"check", "--max-bytes", "lots", srv.URL}} {
		err := newApp(&out, &errOut).RunContext(context.Background(), append([]string{"lockstep"}, args...))
		if code := exitCode(err, plainLogger(&errOut)); code != exitUsage {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// No credential reaches check's output, whatever the endpoint answers.
func TestCheck_NoSecretsInOutput(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(serverRB))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, base := range []string{srv.URL, closed.URL} {
		u := strings.Replace(base, "http://", "http://alice:pw-in-url@", 1) + "/servers?token=tok-in-query"
		for _, format := range []string{"text", "json"} {
			var out, errOut bytes.Buffer
			args := append([]string{"lockstep", "check", "--format", format, "--since-param", "since", "--user", "bob:pw-in-flag", "-H", "X-Api-Key: key-in-header"}, checkFlags...)
			err := newApp(&out, &errOut).RunContext(context.Background(), append(args, u))
			exitCode(err, plainLogger(&errOut))
			all := out.String() + errOut.String()
			for _, secret := range []string{"pw-in-url", "tok-in-query", "pw-in-flag", "key-in-header"} {
				if strings.Contains(all, secret) {
					t.Errorf("%s (%s): %q in the output:\n%s", base, format, secret, all)
				}
			}
			if base == closed.URL && format == "text" && !strings.Contains(out.String(), "FAIL  status        no response at cursor 0") {
				t.Errorf("unreachable endpoint:\n%s", out.String())
			}
		}
	}
}
