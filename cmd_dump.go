package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/replica"
	"github.com/lockstep/lockstep/sqlstore"
	"github.com/lockstep/lockstep/state"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

var dumpCommand = &cli.Command{
	Name:      "dump",
	Usage:     "print the table of a snapshot file, a database replica or an endpoint",
	ArgsUsage: "FILE|sqlite:PATH|postgres://…|URL",
	Description: `Prints the table held in a sync snapshot FILE, or, given a URL, follows the
endpoint in memory from cursor 0 until caught up and prints the table it
holds. JSON lines when piped (so | jq works); an aligned table on a terminal;
csv or tsv with a header line for spreadsheets. --fields picks the columns
(or, for json, the fields of each object) and their order.

Examples:
   lockstep dump servers.jsonl | jq -r .ip
   lockstep dump --fields id,ip,port servers.jsonl
   lockstep dump --format csv --fields id,name,ip servers.jsonl > servers.csv
   lockstep dump --max-age 5m servers.jsonl > /dev/null || alert "replica is stale"
   lockstep dump --sort order http://h/servers/`,
	Flags: append(append([]cli.Flag{
		choice(&cli.StringFlag{Name: "format", Value: "auto", Usage: "json (record bytes), table (text: the same), csv, tsv, or auto (table on a terminal)", EnvVars: commandEnv("dump", "format"), Category: "Output"}, "auto", "json", "table", "text", "csv", "tsv"),
		&cli.StringFlag{Name: "fields", Usage: "only these `NAMES` (comma-separated, such as id,ip,port), in this order", EnvVars: env("fields"), Category: "Output"},
		choice(&cli.StringFlag{Name: "sort", Value: "key", Usage: "key or order", EnvVars: env("sort"), Category: "Output"}, "key", "order"),
		&cli.DurationFlag{Name: "max-age", Usage: "fail unless the replica's checkpoint caught up within this long (a duration such as 5m)", EnvVars: env("max-age"),
			Action: positive("max-age")},
		colorFlag,
		onBadRecordFlag("fail"),
	}, slices.Concat(logFlags, fieldFlags)...), connFlags...),
	Action: runDump,
}

func runDump(c *cli.Context) error {
	arg, err := oneArg(c, "FILE or URL")
	if err != nil {
		return err
	}
	if err := checkDumpArg(c, arg); err != nil {
		return err
	}
	stdout := c.App.Writer
	only, err := parseFields(c.String("fields"))
	if err != nil {
		return err
	}
	var (
		table  *state.Table
		name   string
		fields = follow.DecoderOptions{Key: c.String("key"), OrderBy: c.String("order-by"), Deleted: c.String("deleted-field")}
	)
	format := c.String("format")
	if format == "auto" && isTerminal(stdout) || format == "text" {
		format = "table"
	}
	switch {
	case strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://"):
		if c.IsSet("max-age") {
			return flagError(c, "--max-age needs a snapshot FILE or a database, not a URL")
		}
		fcfg, cerr := followConfig(c, arg)
		if cerr != nil {
			return cerr
		}
		name = "dump " + follow.Redact(arg, c.StringSlice("redact")...)
		table, err = dumpURL(c, fcfg)
	case sqlstore.IsDSN(arg):
		name = "dump " + sqlstore.Redact(arg)
		if format != "table" && format != "csv" && format != "tsv" && only == nil && c.String("sort") == "key" {
			// The database sorts: stream, whatever the table's size.
			bw := bufio.NewWriterSize(stdout, 256<<10)
			err = dumpDB(c, arg, func(rec []byte) error {
				bw.Write(rec)
				return bw.WriteByte('\n')
			})
			if err == nil {
				err = bw.Flush()
			}
			return dumpError(name, err)
		}
		table = state.NewTable()
		err = dumpDB(c, arg, func(rec []byte) error {
			r, err := follow.ParseRecord(rec, fields)
			if err != nil {
				return err
			}
			table.Apply(&r)
			return nil
		})
	default:
		name = "dump " + arg
		table, err = dumpFile(c, arg, &fields)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	recs := make([][]byte, 0, table.Len())
	for _, rec := range table.All() {
		recs = append(recs, rec)
	}
	if c.String("sort") == "order" {
		slices.SortStableFunc(recs, func(a, b []byte) int {
			ra, _ := follow.ParseRecord(a, fields)
			rb, _ := follow.ParseRecord(b, fields)
			return follow.CompareOrder(ra.Order, rb.Order)
		})
	}
	switch {
	case format == "table":
		applyColor(c, stdout)
		err = newGrid(recs, fields, only).writeTable(stdout, terminalWidth(stdout))
	case format == "csv" || format == "tsv":
		err = newGrid(recs, fields, only).writeSeparated(stdout, format == "tsv")
	case only != nil:
		err = newGrid(recs, fields, only).writeJSON(stdout)
	default:
		bw := bufio.NewWriterSize(stdout, 256<<10)
		for _, rec := range recs {
			bw.Write(rec)
			bw.WriteByte('\n')
		}
		err = bw.Flush()
	}
	return dumpError(name, err)
}

// checkDumpArg refuses at once an argument that is none of the four
// things dump reads, saying which was probably meant.
func checkDumpArg(c *cli.Context, arg string) error {
	const want = "want a snapshot FILE, sqlite:PATH, postgres://… or an http:// or https:// URL"
	switch {
	case strings.TrimSpace(arg) == "":
		return flagError(c, "the argument is empty; %s", want)
	case strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://"):
		if err := checkURL(arg); err != nil {
			return flagError(c, "%v", err)
		}
	case sqlstore.IsDSN(arg):
		if err := checkDSN(arg); err != nil {
			return flagError(c, "%v", err)
		}
	case strings.Contains(arg, "://"):
		return flagError(c, "%s: %s", follow.Redact(arg), want)
	case isSQLite(arg):
		return flagError(c, "%s is a SQLite database, not a snapshot file; did you mean sqlite:%s?", arg, arg)
	case hostLike.MatchString(arg):
		// Not a file here, and the start of a URL: maybe with a password.
		if _, err := os.Stat(arg); err != nil {
			return flagError(c, "%v", checkURL(arg))
		}
	}
	return nil
}

// dumpError names what was dumped in an error, and is quiet when the
// reader of stdout went away.
func dumpError(name string, err error) error {
	if err = stdoutError(err); err != nil && !errors.Is(err, errStdoutGone) {
		return fmt.Errorf("%s: %w", name, err)
	}
	return err
}

// dumpDB calls emit with each record of a database replica, in key order,
// then checks --max-age against the checkpoint read with them.
func dumpDB(c *cli.Context, dsn string, emit func([]byte) error) error {
	cp, err := sqlstore.Read(c.Context, dsn, emit)
	if err != nil {
		return err
	}
	return checkAge(cp, c.Duration("max-age"), "its table has no checkpoint")
}

// checkAge fails when --max-age is set and the replica did not catch up
// within it.
func checkAge(cp *state.Checkpoint, maxAge time.Duration, none string) error {
	if maxAge <= 0 {
		return nil
	}
	if cp == nil {
		return fmt.Errorf("%s, so its age is unknown (--max-age)", none)
	}
	if cp.CaughtUpAt.IsZero() {
		return fmt.Errorf("the replica has never caught up (--max-age %s)", maxAge)
	}
	if age := time.Since(cp.CaughtUpAt); age > maxAge {
		return fmt.Errorf("the replica is stale: last caught up %s ago at %s, more than --max-age %s (is lockstep sync running?)",
			age.Round(time.Second), cp.CaughtUpAt.Format(time.RFC3339), maxAge)
	}
	return nil
}

// dumpFile loads a snapshot. Field names not given as flags come from its
// checkpoint, which knows the ones sync used.
func dumpFile(c *cli.Context, path string, fields *follow.DecoderOptions) (*state.Table, error) {
	path, err := state.ResolveFile(path)
	if err != nil {
		return nil, err
	}
	// A snapshot is read with the fields its checkpoint names; a flag that
	// names another would only make its records look damaged.
	var mismatch error
	t, cp, err := replica.ReadFile(path, func(cp *state.Checkpoint) follow.DecoderOptions {
		if cp != nil {
			for _, f := range []struct {
				flag     string
				field    *string
				recorded string
			}{{"key", &fields.Key, cp.Key}, {"order-by", &fields.OrderBy, cp.OrderBy}, {"deleted-field", &fields.Deleted, cp.Deleted}} {
				if f.recorded == "" {
					continue
				}
				if c.IsSet(f.flag) && *f.field != f.recorded && mismatch == nil {
					fix := "drop --" + f.flag
					if src := flagSource(c, f.flag); !strings.HasPrefix(src, "--") {
						name, _, _ := strings.Cut(src, "=")
						fix = "unset " + name
					}
					mismatch = usagef("it was written with --%s %s, not %s (%s)", f.flag, f.recorded, *f.field, fix)
				}
				*f.field = f.recorded
			}
		}
		return *fields
	})
	if mismatch != nil {
		return nil, mismatch
	}
	if err != nil {
		return nil, storeAdvice(err, "lockstep sync --resync to rebuild it")
	}
	if err := checkAge(cp, c.Duration("max-age"), "no checkpoint "+state.CheckpointPath(path)); err != nil {
		return nil, err
	}
	return t, nil
}

func dumpURL(c *cli.Context, fcfg follow.Config) (*state.Table, error) {
	table := state.NewTable()
	p := &progress{log: logOf(c), name: "dump", bytes: &watched(fcfg).bytes, retryFor: c.Duration("retry-for").String()}
	cfg := replica.Config{
		Follow: fcfg, Table: replica.Memory(table),
		MaxDelete: 1, BadRecords: badRecords(c), Notify: p.notice,
	}
	// A progress line only where it cannot mix with the table printed.
	if !isTerminal(c.App.Writer) {
		cfg.Progress = p.update
	}
	e, err := replica.New(c.Context, cfg)
	if err != nil {
		return nil, usageError{err}
	}
	p.engine = e
	err = e.Run(c.Context)
	logOf(c).clearProgress()
	if err != nil {
		return nil, runAdvice(c, err)
	}
	return table, nil
}

func cellText(v json.RawMessage) string {
	if len(v) > 0 && v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return strconv.Quote(s)[1 : len(strconv.Quote(s))-1]
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return string(v)
	}
	return buf.String()
}

// fitWidths narrows the widest columns until the row fits in width.
func fitWidths(widths []int, width int) {
	if width <= 0 {
		return
	}
	total := func() int {
		t := 2 * (len(widths) - 1)
		for _, w := range widths {
			t += w
		}
		return t
	}
	for total() > width {
		widest := 0
		for i, w := range widths {
			if w > widths[widest] {
				widest = i
			}
		}
		if widths[widest] <= 4 {
			return
		}
		widths[widest]--
	}
}

func fit(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// terminalWidth is the width of the terminal w writes to, or 0.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil {
			return n
		}
		return 0
	}
	return int(ws.Col)
}
