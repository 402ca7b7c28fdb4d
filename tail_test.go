package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// tail's output is a function of its input: testdata/tail/NAME.ndjson,
// served as one response, gives NAME.json (piped) and NAME.text (terminal
// format, no colour).
func TestTail_Golden(t *testing.T) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "tail", "*.ndjson"))
	if len(inputs) == 0 {
		t.Fatal("no testdata/tail/*.ndjson")
	}
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		srv := finiteServer(data)
		for _, format := range []string{"json", "text"} {
			var out, errOut bytes.Buffer
			err := newApp(&out, &errOut).RunContext(context.Background(),
				[]string{"lockstep", "tail", "--once", "--format", format, "--color", "never", srv.URL + "/"})
			if err != nil {
				t.Fatalf("%s: %v %s", in, err, errOut.String())
			}
			golden := strings.TrimSuffix(in, ".ndjson") + "." + format
			if *update {
				os.WriteFile(golden, out.Bytes(), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Errorf("%s:\n%s\nwant:\n%s", golden, out.String(), want)
			}
		}
		srv.Close()
	}
}

func TestFlagsFirst(t *testing.T) {
	app := newApp(nil, nil)
	tests := []struct{ in, want string }{
		{"lockstep sync URL --out f", "lockstep sync --out f URL"},
		{"lockstep sync URL --out=f --follow", "lockstep sync --out=f --follow URL"},
		{"lockstep tail --once URL -H X:1", "lockstep tail --once -H X:1 URL"},
		{"lockstep tail URL -- --not-a-flag", "lockstep tail URL -- --not-a-flag"},
		{"lockstep dump f --max-age 5m", "lockstep dump --max-age 5m f"},
		{"lockstep nope a --b", "lockstep nope a --b"},
		{"lockstep --log-format json sync URL --out f", "lockstep sync --log-format json --out f URL"},
		{"lockstep -q --log-format=json -v tail URL", "lockstep tail -q --log-format=json -v URL"},
		// Before what is not a command that logs, the log flags are
		// dropped: the error is about what is wrong.
		{"lockstep --log-format json --bogus sync URL", "lockstep --bogus sync URL"},
		{"lockstep -q completion bash", "lockstep completion bash"},
		{"lockstep -q snyc", "lockstep snyc"},
		{"lockstep --log-format json help sync", "lockstep help sync"},
		{"lockstep -q --help", "lockstep --help"},
		// Nothing after them, a missing value, "--": left as they are.
		{"lockstep --log-format json", "lockstep --log-format json"},
		{"lockstep -q -v", "lockstep -q -v"},
		{"lockstep -v --log-format", "lockstep -v --log-format"},
		{"lockstep --log-format json -v", "lockstep --log-format json -v"},
		{"lockstep -v -- tail URL", "lockstep -v -- tail URL"},
		{"lockstep --log-format --generate-bash-completion", "lockstep --log-format --generate-bash-completion"},
	}
	for _, tt := range tests {
		if got := strings.Join(flagsFirst(app, strings.Fields(tt.in)), " "); got != tt.want {
			t.Errorf("flagsFirst(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
