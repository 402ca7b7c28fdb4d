// Package check tells the author of a lockstep endpoint what is wrong with
// it: Run sends a few GET requests at chosen cursors, reads a bounded part
// of each response for a bounded time, and judges what came back against
// the protocol (docs/protocol.md), one Result per probe.
//
// Run never changes anything on the endpoint: it only sends GET requests,
// four, each one a follower could send, and sends one again after a 429 or
// 503 whose Retry-After fits in the time left (at most twice).
package check

import (
	"context"
	"strconv"
	"time"

	"github.com/lockstep/lockstep/follow"
)

// Status is a probe's verdict.
type Status string

const (
	Pass Status = "PASS" // as the protocol says
	Warn Status = "WARN" // followers cope, but something is off
	Fail Status = "FAIL" // followers would lose or repeat data, or stop
	Info Status = "INFO" // an optional feature, or a probe that could not run
)

// A Result is one probe's verdict.
type Result struct {
	Probe  string `json:"probe"`           // a stable name, such as "cursor"
	Status Status `json:"status"`          // PASS, WARN, FAIL or INFO
	Seen   string `json:"seen"`            // what the probe saw
	Fix    string `json:"fix,omitempty"`   // what to change, for WARN and FAIL
	Where  *Where `json:"where,omitempty"` // the bytes it is about
}

// Where points at bytes in a response.
type Where struct {
	URL     string `json:"url"`     // the request, credentials redacted
	Offset  int64  `json:"offset"`  // from the start of the body
	Snippet string `json:"snippet"` // up to 60 bytes from Offset
}

// A Report is the outcome of Run.
type Report struct {
	Endpoint string        `json:"endpoint"` // credentials redacted
	Results  []Result      `json:"results"`
	Elapsed  time.Duration `json:"-"`
}

// Failed reports whether any probe failed.
func (r *Report) Failed() bool {
	for _, res := range r.Results {
		if res.Status == Fail {
			return true
		}
	}
	return false
}

// Defaults for Options fields left zero.
const (
	DefaultTimeout  = 20 * time.Second
	DefaultMaxBytes = 8 << 20
	// DefaultMaxSilence is the longest an endless response may send
	// nothing: past it, followers and proxies take the connection for dead.
	DefaultMaxSilence = 30 * time.Second
)

// Options configure Run.
type Options struct {
	// Config is the endpoint and how to reach it, as for a Follower: URL,
	// cursor style, auth, headers, field names, Client, and Idle, the quiet
	// time after which an open response has delivered its backlog.
	Config     follow.Config
	Timeout    time.Duration // bounds the whole run
	MaxBytes   int64         // read at most this much of each response
	MaxSilence time.Duration // longest an endless response may send nothing
}

// Run probes the endpoint within opts.Timeout and returns a Result for each
// probe, always the same probes in the same order. An endpoint that cannot
// be reached, or answers an error, gives FAIL results, not an error; the
// error is for opts that cannot be used (an invalid URL).
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxSilence <= 0 {
		opts.MaxSilence = DefaultMaxSilence
	}
	if opts.Config.Idle <= 0 {
		opts.Config.Idle = follow.DefaultIdle
	}
	if opts.Config.Client == nil {
		c, err := follow.NewClient(follow.TLSOptions{})
		if err != nil {
			return nil, err
		}
		opts.Config.Client = c
	}
	if _, _, _, err := follow.NewRequest(ctx, opts.Config, ""); err != nil {
		return nil, err
	}
	start := time.Now()
	deadline := start.Add(opts.Timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	p := &prober{opts: opts, ctx: ctx, deadline: deadline}
	p.run()
	return &Report{Endpoint: follow.Redact(opts.Config.URL), Results: p.results, Elapsed: time.Since(start)}, nil
}

// count says n things as lockstep's output does: "1 record",
// "1,500 records".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return thousands(n) + " " + many
}

// thousands writes n as 1,234,567.
func thousands[T int | int64](n T) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := strconv.FormatInt(int64(n), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
