package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The redaction gaps of issue 8, through the binary: passwords that break
// URL parsing, a token as the user name, secret query names beyond the
// obvious ones, names added with --redact, malformed -H values.
func TestSecretsNeverShown_Gaps(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 1))
	base := serve(t, src, "--finite")
	hostPort := strings.TrimPrefix(base, "http://")
	refused := "127.0.0.1:1" // nothing listens: every run prints the URL in its error
	runs := []result{
		lockstep(t, "tail", "--once", "http://erin:PASSWORD1#x@"+refused+"/"),
		lockstep(t, "tail", "--once", "http://erin:PASSWORD2/x@"+refused+"/"),
		lockstep(t, "tail", "--once", "http://erin:PASSWORD3?x@"+refused+"/"),
		lockstep(t, "tail", "--once", "--retry-for", "200ms", "http://ghp_PASSWORD4@"+refused+"/"),
		lockstep(t, "tail", "--once", "--retry-for", "200ms", "http://"+refused+"/?sig=PASSWORD5&pass=PASSWORD6&X-Amz-Signature=PASSWORD7&jwt=PASSWORD10"),
		lockstep(t, "tail", "--once", "--retry-for", "200ms", "--redact", "tenant", "--redact", "X-Org", "http://"+refused+"/?tenant=PASSWORD8&x_org=PASSWORD9"),
		lockstep(t, "tail", "--once", "-H", "X-Org PASSWORD11", "--redact", "x-org", base+"/"),
		lockstep(t, "tail", "--once", "-H", "PASSWORD12", base+"/"),
		lockstep(t, "sync", "--user", "PASSWORD13", "--out", filepath.Join(dir, "s.jsonl"), "--retry-for", "200ms", "http://"+refused+"/"),
		lockstep(t, "dump", "http://erin:PASSWORD14%zz@"+hostPort+"/"),
	}
	var all strings.Builder
	for _, r := range runs {
		if r.code == 0 {
			t.Errorf("exit 0: %s", r.stderr)
		}
		all.WriteString(r.stdout + r.stderr)
	}
	if m := regexp.MustCompile(`PASSWORD\d+`).FindAllString(all.String(), -1); m != nil {
		t.Fatalf("secrets shown: %v\n%s", m, all.String())
	}
	for _, want := range []string{"erin:***@", "http://***@127.0.0.1:1/", "sig=***", "tenant=***", "x_org=***", "-H \"***: ***\""} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("%q not shown:\n%s", want, all.String())
		}
	}
}
