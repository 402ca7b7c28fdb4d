package main

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Hostile endpoints: lockstep fails clearly or keeps going, in bounded
// memory. Peak memory is the process's maximum resident set size.
//
// Not parallel with the other tests: its inputs keep both cores busy for
// seconds, which would starve the fault matrix's 500ms stall timeouts.
// Its inputs run side by side, before the parallel tests start.
func TestHostileInput_BoundedMemory(t *testing.T) {
	const big = 64 << 20
	tests := []struct {
		name   string
		write  func(w *bufio.Writer)
		args   []string
		maxMB  int64  // peak memory allowed (the race detector's build needs more)
		stderr string // what it says
		exit   int
	}{
		{"endless line", func(w *bufio.Writer) {
			repeat(w, 'x', big)
		}, nil, 60, "not a lockstep stream: 1 bad records and no good one", 1},
		{"endless string in a record", func(w *bufio.Writer) {
			w.WriteString(`{"id":1,"updated_at":1,"s":"`)
			repeat(w, 'a', big)
		}, nil, 80, "over the 16777216-byte limit", 1},
		{"1,000,000 nested [", func(w *bufio.Writer) {
			w.WriteString(`{"id":1,"updated_at":1,"x":`)
			repeat(w, '[', 1_000_000)
			repeat(w, ']', 1_000_000)
			w.WriteString("}\n")
		}, nil, 60, "nesting deeper than 10000", 1},
		{"1,000,000 distinct tiny keys", func(w *bufio.Writer) {
			for i := range 1_000_000 {
				fmt.Fprintf(w, `{"id":%d,"updated_at":%d}`, i, i)
			}
		}, nil, 250, "", 0},
	}
	// Each input in parallel; the report is logged in this order once all
	// have finished.
	var mu sync.Mutex
	report := make([]string, len(tests))
	t.Cleanup(func() {
		report = slices.DeleteFunc(report, func(r string) bool { return r == "" })
		t.Log("hostile input, lockstep tail --once:\n| input | peak memory | time |\n|---|---|---|\n" + strings.Join(report, "\n"))
	})
	for i, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				w := bufio.NewWriterSize(rw, 1<<20)
				tt.write(w)
				w.Flush()
			}))
			start := time.Now()
			cmd := exec.Command(binary, append([]string{"tail", "--once", "--idle", "10s", srv.URL + "/"}, tt.args...)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			cmd.Run()
			srv.Close()
			if code := cmd.ProcessState.ExitCode(); code != tt.exit {
				t.Fatalf("%s: exit %d, want %d: %s", tt.name, code, tt.exit, stderr.String())
			}
			peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss >> 10
			limit := tt.maxMB
			if raceEnabled {
				limit *= 3
			}
			if peak > limit {
				t.Errorf("%s: peak %d MB, want at most %d MB", tt.name, peak, limit)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("%s: stderr %q does not say %q", tt.name, stderr.String(), tt.stderr)
			}
			mu.Lock()
			report[i] = fmt.Sprintf("| %s | %d MB | %.1f s |", tt.name, peak, time.Since(start).Seconds())
			mu.Unlock()
		})
	}
}

func repeat(w *bufio.Writer, c byte, n int) {
	chunk := []byte(strings.Repeat(string(c), 64<<10))
	for n > 0 {
		k := min(n, len(chunk))
		w.Write(chunk[:k])
		n -= k
	}
}
