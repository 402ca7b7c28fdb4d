// Command testfmt shows `go test -json` as go test's usual output plus a
// line for each test as it finishes, so that a package that runs for a
// minute is not a minute of silence:
//
//	set -o pipefail; go test -json -race ./... | go run ./scripts/testfmt
//
// For each test: a passing one prints "--- PASS: TestX (1.23s)" (with its
// package when it is not the module's root), a skipped one its reason, and
// a failing one everything it logged, as go test prints a failure. Output
// outside any test (the closing "ok" and "FAIL" lines, build errors,
// panics) is printed as go test prints it, and a last "FAIL" line if
// anything failed, so what reads those lines still finds them. Tests
// faster than -min print nothing when they pass.
//
// testfmt exits 1 if any test, package or build failed; the pipeline
// should also keep go test's own status (pipefail).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output, build-fail
	Test       string
	Elapsed    float64
	Output     string
}

func main() {
	minDur := flag.Duration("min", 0, "print passing tests only when they took at least this long")
	flag.Parse()
	os.Exit(run(os.Stdin, os.Stdout, *minDur, modulePath()))
}

type key struct{ pkg, test string }

// run copies the events from in to out and returns the exit status.
// module is the module's path, whose root package goes unnamed.
func run(in io.Reader, out io.Writer, minDur time.Duration, module string) int {
	w := bufio.NewWriter(out)
	defer w.Flush()
	held := map[key][]string{} // output of tests still running
	failed := false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			// Not an event: go test's own words (e.g. "no packages to test").
			fmt.Fprintln(w, sc.Text())
			w.Flush()
			continue
		}
		k := key{e.Package, e.Test}
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Action == "build-fail":
			failed = true
		case e.Test == "" && e.Action == "output":
			if strings.HasPrefix(e.Output, "FAIL") {
				// A package that dies (panic, timeout) can leave tests
				// that never finished: show what they said first.
				for hk, lines := range held {
					if hk.pkg == e.Package {
						fmt.Fprint(w, strings.Join(lines, ""))
						delete(held, hk)
					}
				}
			}
			// go test without -v prints neither; the "ok" line follows.
			if e.Output != "PASS\n" && e.Output != "testing: warning: no tests to run\n" {
				fmt.Fprint(w, e.Output)
			}
		case e.Test == "" && e.Action == "fail":
			failed = true
		case e.Test == "":
		case e.Action == "output":
			if !isFrame(e.Output) {
				held[k] = append(held[k], e.Output)
			}
		case e.Action == "pass":
			if time.Duration(e.Elapsed*float64(time.Second)) >= minDur {
				fmt.Fprintf(w, "--- PASS: %s (%.2fs)%s\n", e.Test, e.Elapsed, where(e.Package, module))
			}
			delete(held, k)
		case e.Action == "skip":
			fmt.Fprintf(w, "--- SKIP: %s (%.2fs)%s\n", e.Test, e.Elapsed, where(e.Package, module))
			fmt.Fprint(w, strings.Join(held[k], ""))
			delete(held, k)
		case e.Action == "fail":
			failed = true
			fmt.Fprintf(w, "--- FAIL: %s (%.2fs)%s\n", e.Test, e.Elapsed, where(e.Package, module))
			fmt.Fprint(w, strings.Join(held[k], ""))
			delete(held, k)
		}
		w.Flush()
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(w, "testfmt: %v\n", err)
		failed = true
	}
	if failed {
		fmt.Fprintln(w, "FAIL") // as go test ends when anything failed
		return 1
	}
	return 0
}

// isFrame tells test2json's framing lines, which testfmt replaces with its
// own: === RUN, === PAUSE, === CONT, === NAME and the --- PASS/FAIL/SKIP
// line itself.
func isFrame(line string) bool {
	t := strings.TrimLeft(line, " ")
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- PASS:", "--- FAIL:", "--- SKIP:"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// where names a test's package unless it is the module's root package.
func where(pkg, module string) string {
	if pkg == module || module == "" {
		return ""
	}
	return "  " + strings.TrimPrefix(pkg, module+"/")
}

// modulePath reads the module path from go.mod in the current directory.
func modulePath() string {
	b, err := os.ReadFile("go.mod")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "module" {
			return f[1]
		}
	}
	return ""
}
