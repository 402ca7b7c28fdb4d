package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/sqlstore"
	"github.com/urfave/cli/v2"
	"github.com/xrash/smetrics"
)

const argsKey = "args"

// urfave/cli v2 and the flag package report a bad flag only as text, so
// these patterns are the one place that reads it, to say it for a person:
// which flag or environment variable, and what value is wanted.
var (
	envParseError  = regexp.MustCompile(`^could not parse "(.*)" (?:as \w+ value from|from) environment variable "(\w+)" (?:as value )?for flag ([\w-]+): `)
	flagValueError = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-+([\w-]+): `)
	unknownFlag    = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	missingValue   = regexp.MustCompile(`^flag needs an argument: -+(.+)$`)
)

// usageMessage is every command's OnUsageError: it says what was wrong in
// a person's terms and where to read more.
func usageMessage(c *cli.Context, err error, _ bool) error {
	cmd, see := "", "lockstep --help"
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != c.App.Name {
		cmd = c.Command.Name
		see = "lockstep " + cmd + " --help"
	}
	var flags []cli.Flag
	if cmd != "" {
		flags = c.Command.Flags
	} else {
		flags = c.App.Flags
	}
	msg := err.Error()
	if m := envParseError.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("%s=%q: %s (for --%s)", m[2], m[1], wanted(flagNamed(flags, m[3])), m[3])
	} else if m := flagValueError.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("--%s %q: %s", m[2], m[1], wanted(flagNamed(flags, m[2])))
	} else if m := unknownFlag.FindStringSubmatch(msg); m != nil {
		msg = "unknown flag " + dashes(m[1])
		var names []string
		for _, f := range flags {
			names = append(names, f.Names()...)
		}
		if s := closest(m[1], names); s != "" {
			msg += "; did you mean " + dashes(s) + "?"
		}
	} else if m := missingValue.FindStringSubmatch(msg); m != nil {
		msg = dashes(m[1]) + " needs a value"
	}
	if cmd != "" {
		return usagef("%s: %s (see %s)", cmd, msg, see)
	}
	return usagef("%s (see %s)", msg, see)
}

func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func flagNamed(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

// wanted says what kind of value a flag takes.
func wanted(f cli.Flag) string {
	switch f.(type) {
	case *cli.BoolFlag:
		return "want true or false (or 1 or 0)"
	case *cli.DurationFlag:
		return "want a duration with its unit, such as 30s, 5m or 1h30m"
	case *cli.IntFlag:
		return "want a whole number"
	}
	return "not a valid value"
}

// unknownCommand says that name is not a command, and which one was
// probably meant.
func unknownCommand(app *cli.App, name string) error {
	if strings.HasPrefix(name, "-") {
		return usagef("unknown flag %s (see lockstep --help)", name)
	}
	msg := fmt.Sprintf("no command %q", name)
	var names []string
	for _, c := range app.Commands {
		names = append(names, c.Names()...)
	}
	if s := closest(name, names); s != "" {
		msg += "; did you mean " + s + "?"
	}
	return usagef("%s (see lockstep --help)", msg)
}

// closest is the name most like typed, if one is close enough to be what
// was meant: at most two edits away (and fewer than typed has letters), or
// else the one name that typed begins.
func closest(typed string, names []string) string {
	best, bestDist := "", 3
	var prefixed []string
	for _, n := range names {
		if len(n) == 1 && len(typed) > 1 {
			continue // -o is no suggestion for --ot: --out is
		}
		if d := smetrics.WagnerFischer(typed, n, 1, 1, 1); d < bestDist && d < len(typed) {
			best, bestDist = n, d
		}
		if len(typed) >= 2 && strings.HasPrefix(n, typed) {
			prefixed = append(prefixed, n)
		}
	}
	if best == "" && len(prefixed) == 1 {
		best = prefixed[0]
	}
	return best
}

// flagSource names where a flag's value came from, for an error: "--name"
// when it is on the command line, else the environment variable that set
// it ("LOCKSTEP_TAIL_FORMAT=table").
func flagSource(c *cli.Context, name string) string {
	args, _ := c.App.Metadata[argsKey].([]string)
	f := flagNamed(c.Command.Flags, name)
	if f == nil {
		return "--" + name
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		n := strings.TrimLeft(a, "-")
		n, _, _ = strings.Cut(n, "=")
		if strings.HasPrefix(a, "-") && slices.Contains(f.Names(), n) {
			return "--" + name
		}
	}
	if ev, ok := f.(interface{ GetEnvVars() []string }); ok {
		for _, e := range ev.GetEnvVars() {
			if v, ok := os.LookupEnv(e); ok {
				return fmt.Sprintf("%s=%s", e, v)
			}
		}
	}
	return "--" + name
}

// buildVersion is the version set at link time, or else what go build
// recorded: the module version of go install …@v1.2.3, or the VCS
// revision of a checkout (with +dirty for uncommitted changes).
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev == "" {
		return "dev"
	}
	return rev[:min(len(rev), 12)] + dirty
}

// hostLike is the start of a URL typed without its scheme: a host name
// with a dot, localhost, an IPv4 or [IPv6] address, or anything with a
// port, perhaps after user:pass@.
var hostLike = regexp.MustCompile(`^([^/@]*@)?(localhost|\[[0-9a-fA-F:.]+\]|[[:alnum:]-]+(\.[[:alnum:]-]+)+|[[:alnum:]-]+:\d+)(:\d*)?([/?#]|$)`)

// checkURL refuses at once an endpoint URL that no retry can reach: empty,
// without a scheme (suggesting http://), of another scheme, or with a
// port out of range. What it says is redacted. It does not refuse what
// follow.New refuses with a message of its own.
func checkURL(raw string) error {
	const want = "want one such as http://127.0.0.1:4567/servers/"
	if strings.TrimSpace(raw) == "" {
		return fmt.Errorf("the URL is empty; %s", want)
	}
	scheme, _, ok := strings.Cut(raw, "://")
	if st, err := os.Stat(raw); !ok && err == nil && st.Mode().IsRegular() {
		return fmt.Errorf("%s is a file, not a URL; want one such as http://127.0.0.1:4567/servers/ (lockstep serve %s serves it there)", raw, raw)
	}
	if !ok {
		guess := follow.Redact("http://" + raw)
		if hostLike.MatchString(raw) {
			return fmt.Errorf("%s has no scheme; did you mean %s?", strings.TrimPrefix(guess, "http://"), guess)
		}
		return fmt.Errorf("%s is not a URL; %s", strings.TrimPrefix(guess, "http://"), want)
	}
	shown := follow.Redact(raw)
	if s := strings.ToLower(scheme); s != "http" && s != "https" {
		return fmt.Errorf("%s: the scheme %s:// is not one lockstep speaks: want http:// or https://", shown, scheme)
	}
	u, err := url.Parse(strings.ReplaceAll(shown, "{since}", "0"))
	if err != nil {
		return nil // follow.New says what is wrong
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%s: port %s is out of range: want 1 to 65535", shown, p)
		}
	}
	return nil
}

// sqliteMagic begins every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// isSQLite reports whether path is a SQLite database, for "did you mean
// sqlite:PATH?".
func isSQLite(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(sqliteMagic))
	_, err = io.ReadFull(f, head)
	return err == nil && string(head) == sqliteMagic
}

// checkDSN refuses a database target that names no database.
func checkDSN(dsn string) error {
	if rest, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		if path, _, _ := strings.Cut(rest, "?"); path == "" {
			return errors.New("sqlite: names no database file; want sqlite:PATH, such as sqlite:servers.db")
		}
	}
	return sqlstore.Check(dsn)
}
