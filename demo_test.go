package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// make demo's headings can be copied into a shell: quote prints arguments
// so that the shell reads them back as they were.
func TestDemo_HeadingsCopyPaste(t *testing.T) {
	t.Parallel()
	script, err := os.ReadFile("scripts/demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	quote := regexp.MustCompile(`(?ms)^quote\(\) \{.*?^\}`).Find(script)
	if quote == nil {
		t.Fatal("no quote() in scripts/demo.sh")
	}
	if !regexp.MustCompile(`(?m)^run\(\) \{ show "\$\(quote "\$@"\)"`).Match(script) {
		t.Error("run does not show its command through quote")
	}
	args := []string{"sqlite3", "/tmp/a b/servers.db", "select key, record->>'ip' from servers where record->>'port' > 9000",
		"", `a"b$c`, "it's", "plain-word", "--out=sqlite:x.db"}
	cmd := exec.Command("bash", "-c", string(quote)+`
line=$(quote "$@")
printf '%s\n' "$line"
eval "printf '%s\0' $line"`, "bash")
	cmd.Args = append(cmd.Args, args...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	heading, back, _ := bytes.Cut(out, []byte("\n"))
	if got := strings.Split(strings.TrimSuffix(string(back), "\x00"), "\x00"); strings.Join(got, "|") != strings.Join(args, "|") {
		t.Errorf("the heading %s reads back as %q, want %q", heading, got, args)
	}
	if want := `"select key, record->>'ip' from servers where record->>'port' > 9000"`; !bytes.Contains(heading, []byte(want)) {
		t.Errorf("heading %s: want the query as %s", heading, want)
	}
}
