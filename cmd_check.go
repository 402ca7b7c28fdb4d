package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/lockstep/lockstep/check"
	"github.com/urfave/cli/v2"
)

// protocolDoc is where check's output sends the reader.
const protocolDoc = "docs/protocol.md in the lockstep repository"

var checkCommand = &cli.Command{
	Name:      "check",
	Usage:     "probe an endpoint and say what it does wrong",
	ArgsUsage: "URL",
	Description: `Sends a few GET requests to URL (at cursor 0, twice at a cursor from the
middle of its data, and at cursor 1) and prints one line per probe: PASS,
WARN, FAIL or INFO, what was seen (byte offset and snippet where it applies)
and how to fix it. It never changes anything on the endpoint, waits out a
429 or 503 when its Retry-After fits in the time left, stops after
--timeout, and reads at most --max-bytes of each response. A silence is a
FAIL only once seen longer than --max-silence: give a --timeout above it
to be sure.
Exit 0 when no probe failed, 1 otherwise. The protocol: docs/protocol.md.

Examples:
   lockstep check http://127.0.0.1:4567/servers/
   lockstep check --format json --since-param since 'https://h/servers?region=eu' | jq '.results[] | select(.status == "FAIL")'`,
	Flags: append(append([]cli.Flag{
		choice(&cli.StringFlag{Name: "format", Value: "text", Usage: "text (a line per probe; table and auto: the same) or json (for CI)", EnvVars: commandEnv("check", "format"), Category: "Output"}, "text", "json", "table", "auto"),
		&cli.DurationFlag{Name: "timeout", Value: check.DefaultTimeout, Usage: "give up after this long in all", EnvVars: env("timeout"), Action: positive("timeout")},
		&cli.StringFlag{Name: "max-bytes", Value: "8MiB", Usage: "read at most this much of each response", EnvVars: env("max-bytes")},
		&cli.DurationFlag{Name: "max-silence", Value: check.DefaultMaxSilence, Usage: "longest an endless response may send nothing", EnvVars: env("max-silence"), Action: positive("max-silence")},
	}, slices.Concat(logFlags, fieldFlags)...), connFlags...),
	Action: runCheck,
}

func runCheck(c *cli.Context) error {
	rawURL, err := urlArg(c)
	if err != nil {
		return err
	}
	cfg, err := followConfig(c, rawURL)
	if err != nil {
		return err
	}
	maxBytes, err := parseSize(c.String("max-bytes"))
	if err != nil {
		return flagError(c, "%s: %v", valueSource(c, "max-bytes", c.String("max-bytes")), err)
	}
	report, err := check.Run(c.Context, check.Options{
		Config:     cfg,
		Timeout:    c.Duration("timeout"),
		MaxBytes:   int64(maxBytes),
		MaxSilence: c.Duration("max-silence"),
	})
	if err != nil {
		return usageError{fmt.Errorf("check: %w", err)}
	}
	if c.String("format") == "json" {
		err = writeCheckJSON(c.App.Writer, report)
	} else {
		err = writeCheckText(c.App.Writer, report)
	}
	if err != nil {
		return stdoutError(err)
	}
	if report.Failed() {
		return fmt.Errorf("check %s: %s of %s failed", report.Endpoint, thousands(count(report, check.Fail)), thousands(len(report.Results))+" "+plural(len(report.Results), "probe", "probes"))
	}
	return nil
}

func count(r *check.Report, s check.Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

func writeCheckJSON(w io.Writer, r *check.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*check.Report
		Failed   bool   `json:"failed"`
		Protocol string `json:"protocol"`
	}{r, r.Failed(), protocolDoc})
}

// writeCheckText writes a line per probe: status, probe, what was seen (and
// the bytes it is about), and what to fix.
func writeCheckText(w io.Writer, r *check.Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "lockstep check %s\n", r.Endpoint)
	for _, res := range r.Results {
		fmt.Fprintf(&b, "%-4s  %-12s  %s", res.Status, res.Probe, res.Seen)
		if res.Where != nil {
			b.WriteString(": " + strconv.Quote(res.Where.Snippet))
		}
		if res.Fix != "" {
			b.WriteString("; fix: " + res.Fix)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "%s %s: %d PASS, %d WARN, %d FAIL, %d INFO, in %s. The protocol: %s\n",
		thousands(len(r.Results)), plural(len(r.Results), "probe", "probes"), count(r, check.Pass), count(r, check.Warn), count(r, check.Fail), count(r, check.Info), roundDelay(r.Elapsed), protocolDoc)
	_, err := io.WriteString(w, b.String())
	return err
}
