package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/replica"
	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"
)

// env names the environment variable of a flag: LOCKSTEP_SINCE_PARAM for
// --since-param.
func env(name string) []string {
	return []string{"LOCKSTEP_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
}

// commandEnv names the environment variable of a flag that means
// something else to each command: LOCKSTEP_DUMP_FORMAT for dump's
// --format, so that dump's csv never reaches tail.
func commandEnv(command, name string) []string {
	return env(command + "-" + name)
}

// choice makes f accept only the listed values, which shell completion
// offers after it.
func choice(f *cli.StringFlag, values ...string) *cli.StringFlag {
	f.Action = oneOf(f.Name, values...)
	choices[f] = values
	return f
}

// choices are the values of each flag made by choice.
var choices = map[*cli.StringFlag][]string{}

// oneOf is a flag Action that accepts only the listed values.
func oneOf(name string, values ...string) func(*cli.Context, string) error {
	return func(c *cli.Context, v string) error {
		for _, ok := range values {
			if v == ok {
				return nil
			}
		}
		if src := flagSource(c, name); src != "--"+name {
			return flagError(c, "%s: --%s must be one of %s", src, name, strings.Join(values, ", "))
		}
		return flagError(c, "--%s %q: must be one of %s", name, v, strings.Join(values, ", "))
	}
}

// nonNegative is the Action of a duration flag for which 0 means "off":
// it refuses a negative value.
func nonNegative(name string) func(*cli.Context, time.Duration) error {
	return func(c *cli.Context, d time.Duration) error {
		if d < 0 {
			return flagError(c, "%s: must not be negative", valueSource(c, name, d.String()))
		}
		return nil
	}
}

// positive is the Action of a duration flag that has no "off": it
// refuses 0 and below, which would otherwise mean the default, or a
// busy loop.
func positive(name string) func(*cli.Context, time.Duration) error {
	return func(c *cli.Context, d time.Duration) error {
		if d <= 0 {
			return flagError(c, "%s: must be more than 0, such as 1s", valueSource(c, name, d.String()))
		}
		return nil
	}
}

// flagError is a usage error in a flag's value, said as every usage
// error is: the command, what is wrong, where to read more.
func flagError(c *cli.Context, format string, args ...any) error {
	name := c.Command.Name
	return usagef("%s: %s (see lockstep %s --help)", name, fmt.Sprintf(format, args...), name)
}

// valueSource shows a flag's value as the user gave it: "--idle -1s" or
// "LOCKSTEP_IDLE=-1s".
func valueSource(c *cli.Context, name, value string) string {
	if src := flagSource(c, name); src != "--"+name {
		return src
	}
	return "--" + name + " " + value
}

// fieldFlags name the record's fields; tail, sync and dump share them.
var fieldFlags = []cli.Flag{
	&cli.StringFlag{Name: "key", Value: "id", Usage: "the key field", EnvVars: env("key"), Category: "Records"},
	&cli.StringFlag{Name: "order-by", Value: "updated_at", Usage: "the order field (a number or string)", EnvVars: env("order-by"), Category: "Records"},
	&cli.StringFlag{Name: "deleted-field", Value: "deleted_at", Usage: "the tombstone field (non-null means deleted)", EnvVars: env("deleted-field"), Category: "Records"},
	&cli.StringFlag{Name: "max-record-size", Value: "16MiB", Usage: "largest record accepted (bytes, or with KiB/MiB/GiB)", EnvVars: env("max-record-size"), Category: "Records"},
}

// connFlags say how to reach the endpoint and how to follow it.
var connFlags = []cli.Flag{
	&cli.StringFlag{Name: "since-param", Usage: "send the cursor as this query parameter (default: as the last path segment)", EnvVars: env("since-param"), Category: "Connection"},
	&cli.StringFlag{Name: "user", Usage: "`USER:PASS` for HTTP Basic auth", EnvVars: env("user"), Category: "Connection"},
	&cli.StringSliceFlag{Name: "header", Aliases: []string{"H"}, Usage: "extra request `HEADER` as 'Name: value' (repeatable)", EnvVars: env("header"), Category: "Connection"},
	&cli.StringSliceFlag{Name: "redact", Usage: "never show the value of the query parameter or header `NAME` (repeatable; adds to the built-in list)", EnvVars: env("redact"), Category: "Connection"},
	&cli.StringFlag{Name: "cacert", Usage: "trust the CA certificates in this PEM `FILE` too", EnvVars: env("cacert"), Category: "Connection"},
	&cli.BoolFlag{Name: "insecure", Usage: "do not verify TLS certificates (says so on stderr)", EnvVars: env("insecure"), Category: "Connection"},
	&cli.DurationFlag{Name: "poll", Value: follow.DefaultPoll, Usage: "wait between finite responses when following", EnvVars: env("poll"), Category: "Connection", Action: positive("poll")},
	&cli.DurationFlag{Name: "idle", Value: follow.DefaultIdle, Usage: "an endless response that changed nothing for this long is caught up", EnvVars: env("idle"), Category: "Connection", Action: positive("idle")},
	&cli.DurationFlag{Name: "resync-quiet", Value: follow.DefaultResyncQuiet, Usage: "an endless response to a full resync is complete only after this long with no change (as is one to cursor 0 that has sent nothing yet); a slow endpoint must not look empty. Elsewhere --idle applies", EnvVars: env("resync-quiet"), Category: "Connection", Action: positive("resync-quiet")},
	&cli.DurationFlag{Name: "stall-timeout", Value: follow.DefaultStallTimeout, Usage: "reconnect after this long with no bytes (0: never)", EnvVars: env("stall-timeout"), Category: "Connection", Action: nonNegative("stall-timeout")},
	&cli.DurationFlag{Name: "retry-for", Value: follow.DefaultRetryFor, Usage: "commands that finish give up after failing this long (0: fail at the first error, no retries)", EnvVars: env("retry-for"), Category: "Connection", Action: nonNegative("retry-for")},
}

// followConfig builds a follow.Config from the shared flags.
func followConfig(c *cli.Context, rawURL string) (follow.Config, error) {
	var cfg follow.Config
	for _, name := range []string{"key", "order-by", "deleted-field"} {
		if c.String(name) == "" {
			return cfg, flagError(c, "--%s: a field name cannot be empty", name)
		}
	}
	maxSize, err := parseSize(c.String("max-record-size"))
	if err != nil {
		return cfg, flagError(c, "%s: %v", valueSource(c, "max-record-size", c.String("max-record-size")), sizeError)
	}
	// A --user without a colon is a password forgotten, or a token given
	// without its user: sending it as a user with no password would fail
	// in a way that says nothing. The value may be a secret: never shown.
	if u := c.String("user"); u != "" && !strings.Contains(u, ":") {
		src, _, _ := strings.Cut(flagSource(c, "user"), "=")
		return cfg, flagError(c, "%s: want USER:PASS, with a colon (USER: for an empty password)", src)
	}
	header := http.Header{}
	for _, h := range c.StringSlice("header") {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			src, _, _ := strings.Cut(flagSource(c, "header"), "=") // LOCKSTEP_HEADER, not its value
			if src == "--header" {
				src = "-H"
			}
			return cfg, flagError(c, "%s %q: want 'Name: value', with a colon after the name", src, redactHeader(h))
		}
		header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	// Over http:// there is no certificate to skip checking.
	if c.Bool("insecure") && !strings.HasPrefix(strings.ToLower(rawURL), "http://") {
		logOf(c).warn("warning: --insecure: TLS certificates are not verified; anyone on the path can read and change what is received")
	}
	client, err := follow.NewClient(follow.TLSOptions{CACert: c.String("cacert"), Insecure: c.Bool("insecure")})
	if err != nil {
		return cfg, usageError{err}
	}
	hidden := make([]string, 0, len(header))
	for name := range header {
		hidden = append(hidden, name)
	}
	client.Transport = &watchedTransport{base: client.Transport, log: logOf(c), redact: c.StringSlice("redact"), hidden: hidden}
	// The library's zero values mean "default"; the flags' 0 means "off".
	stall := c.Duration("stall-timeout")
	if stall == 0 {
		stall = -1
	}
	retryFor := c.Duration("retry-for")
	if retryFor == 0 {
		retryFor = -1
	}
	cfg = follow.Config{
		URL:        rawURL,
		SinceParam: c.String("since-param"),
		User:       c.String("user"),
		Header:     header,
		Redact:     c.StringSlice("redact"),
		Client:     client,
		Fields: follow.DecoderOptions{
			Key: c.String("key"), OrderBy: c.String("order-by"), Deleted: c.String("deleted-field"),
			MaxRecordSize: maxSize,
		},
		Poll:         c.Duration("poll"),
		Idle:         c.Duration("idle"),
		StallTimeout: stall,
		ResyncQuiet:  c.Duration("resync-quiet"),
		RetryFor:     retryFor,
	}
	return cfg, nil
}

// redactHeader shows a malformed -H value in an error: its name, or its
// first word when it has no ':', and never the rest, which may be a
// credential whatever the name (-H 'Authorization Bearer …'). A lone word
// may be the credential itself.
func redactHeader(h string) string {
	name, _, ok := strings.Cut(h, ":")
	if !ok {
		name, _, ok = strings.Cut(strings.TrimSpace(h), " ")
	}
	if !ok {
		name = "***"
	}
	return strings.TrimSpace(name) + ": ***"
}

// sizeError says what parseSize wants.
var sizeError = errors.New("want a size above 0 in bytes, or with KiB, MiB or GiB, such as 16MiB")

// parseSize reads a size: 4096, 64KiB, 16MiB, 1GiB (K, M and G too).
func parseSize(s string) (int, error) {
	mult := 1
	for _, u := range []struct {
		suffix string
		m      int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n <= 0 {
		return 0, sizeError
	}
	return n * mult, nil
}

// onBadRecordFlag: what to do with a bad record (PROTOCOL 7).
func onBadRecordFlag(def string) cli.Flag {
	return choice(&cli.StringFlag{
		Name: "on-bad-record", Value: def, EnvVars: env("on-bad-record"), Category: "Records",
		Usage: "fail (stop), warn (say so on stderr and go on) or skip (go on quietly)"}, "fail", "warn", "skip")
}

// badRecords maps --on-bad-record to the engine's policy.
func badRecords(c *cli.Context) replica.BadRecords {
	switch c.String("on-bad-record") {
	case "warn":
		return replica.WarnOnBadRecord
	case "skip":
		return replica.SkipBadRecord
	}
	return replica.FailOnBadRecord
}

// oneArg returns a command's one argument, what it is called in the
// usage error if there is not exactly one. A "--" that ends the flags is
// not an argument: the flag parser drops one before every argument, but
// keeps one that follows an argument (tail URL -- -q), which is dropped
// here unless the command line had a "--" that the parser took already.
func oneArg(c *cli.Context, what string) (string, error) {
	args := c.Args().Slice()
	raw, _ := c.App.Metadata[rawArgsKey].([]string)
	takesValue := valueFlags(c.Command.Flags)
	// The "--"s that ended or could end flags: not one that is a flag's value.
	ends := func(s []string) int {
		n := 0
		for i, a := range s {
			if a == "--" && (i == 0 || !strings.HasPrefix(s[i-1], "-") || strings.Contains(s[i-1], "=") || !takesValue[strings.TrimLeft(s[i-1], "-")]) {
				n++
			}
		}
		return n
	}
	if i := slices.Index(args, "--"); i > 0 && ends(raw) <= ends(args) {
		args = slices.Delete(slices.Clone(args), i, i+1)
	}
	if len(args) != 1 {
		return "", usagef("%s: want one %s argument, got %d (see lockstep %s --help)", c.Command.Name, what, len(args), c.Command.Name)
	}
	return args[0], nil
}

// urlArg returns the one URL argument, refusing at once one that no
// retry could reach (checkURL).
func urlArg(c *cli.Context) (string, error) {
	url, err := oneArg(c, "URL")
	if err != nil {
		return "", err
	}
	if err := checkURL(url); err != nil {
		return "", flagError(c, "%v", err)
	}
	return url, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// errStdoutGone: the reader of stdout went away; lockstep exits 0 quietly
// (PROTOCOL 6.5).
var errStdoutGone = errors.New("stdout closed")

// stdoutError turns a broken pipe into errStdoutGone.
func stdoutError(err error) error {
	if errors.Is(err, syscall.EPIPE) {
		return errStdoutGone
	}
	return err
}

// roundDelay shortens a delay for a person to read.
func roundDelay(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
