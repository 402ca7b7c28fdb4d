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

	"github.com/fatih/color"
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
holds. JSON lines when piped (so | jq works); an aligned table on a terminal.

Examples:
   lockstep dump servers.jsonl | jq -r .ip
   lockstep dump --max-age 5m servers.jsonl > /dev/null || alert "replica is stale"
   lockstep dump --sort order http://h/servers/`,
	Flags: append(append([]cli.Flag{
		&cli.StringFlag{Name: "format", Value: "auto", Usage: "json (record bytes), table, or auto (table on a terminal)", EnvVars: env("format"), Category: "Output",
			Action: oneOf("format", "auto", "json", "table")},
		&cli.StringFlag{Name: "sort", Value: "key", Usage: "key or order", EnvVars: env("sort"), Category: "Output",
			Action: oneOf("sort", "key", "order")},
		&cli.DurationFlag{Name: "max-age", Usage: "fail unless the replica's checkpoint caught up within this long", EnvVars: env("max-age")},
		colorFlag,
		onBadRecordFlag("fail"),
	}, fieldFlags...), connFlags...),
	Action: runDump,
}

func runDump(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("dump: want one FILE or URL argument, got %d (see lockstep dump --help)", c.NArg())
	}
	arg := c.Args().First()
	stdout := c.App.Writer
	var (
		table  *state.Table
		name   string
		err    error
		fields = follow.DecoderOptions{Key: c.String("key"), OrderBy: c.String("order-by"), Deleted: c.String("deleted-field")}
	)
	format := c.String("format")
	asTable := format == "table" || format == "auto" && isTerminal(stdout)
	switch {
	case strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://"):
		if c.IsSet("max-age") {
			return usagef("dump: --max-age needs a snapshot FILE or a database, not a URL")
		}
		table, name, err = dumpURL(c, arg)
	case sqlstore.IsDSN(arg):
		name = "dump " + sqlstore.Redact(arg)
		if !asTable && c.String("sort") == "key" {
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
	if asTable {
		applyColor(c, stdout)
		err = writeTable(stdout, recs, fields, terminalWidth(stdout))
	} else {
		bw := bufio.NewWriterSize(stdout, 256<<10)
		for _, rec := range recs {
			bw.Write(rec)
			bw.WriteByte('\n')
		}
		err = bw.Flush()
	}
	return dumpError(name, err)
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
	t, cp, err := replica.ReadFile(path, func(cp *state.Checkpoint) follow.DecoderOptions {
		if cp != nil {
			for _, f := range []struct {
				flag     string
				field    *string
				recorded string
			}{{"key", &fields.Key, cp.Key}, {"order-by", &fields.OrderBy, cp.OrderBy}, {"deleted-field", &fields.Deleted, cp.Deleted}} {
				if !c.IsSet(f.flag) && f.recorded != "" {
					*f.field = f.recorded
				}
			}
		}
		return *fields
	})
	if err != nil {
		return nil, storeAdvice(err, "lockstep sync --resync to rebuild it")
	}
	if err := checkAge(cp, c.Duration("max-age"), "no checkpoint "+state.CheckpointPath(path)); err != nil {
		return nil, err
	}
	return t, nil
}

func dumpURL(c *cli.Context, rawURL string) (*state.Table, string, error) {
	fcfg, err := followConfig(c, rawURL, c.App.ErrWriter)
	if err != nil {
		return nil, "", err
	}
	table := state.NewTable()
	p := &progress{w: c.App.ErrWriter}
	e, err := replica.New(c.Context, replica.Config{
		Follow: fcfg, Table: replica.Memory(table),
		MaxDelete: 1, BadRecords: badRecords(c), Notify: p.notice,
	})
	if err != nil {
		return nil, "", usageError{fmt.Errorf("dump: %w", err)}
	}
	name := "dump " + e.Endpoint()
	if err := e.Run(c.Context); err != nil {
		return nil, name, runAdvice(c, err)
	}
	return table, name, nil
}

// writeTable prints records as aligned columns: the key and the order value
// first, then every other field in the order first seen; values compact,
// strings unquoted, cells cut to fit width (0: no limit).
func writeTable(w io.Writer, recs [][]byte, fields follow.DecoderOptions, width int) error {
	cols := []string{fields.Key, fields.OrderBy}
	seen := map[string]bool{fields.Key: true, fields.OrderBy: true, fields.Deleted: true}
	rows := make([]map[string]string, 0, len(recs))
	for _, rec := range recs {
		row := map[string]string{}
		for _, f := range fieldsOf(rec) {
			row[f.name] = cellText(f.value)
			if !seen[f.name] {
				seen[f.name] = true
				cols = append(cols, f.name)
			}
		}
		rows = append(rows, row)
	}
	widths := make([]int, len(cols))
	for i, col := range cols {
		widths[i] = utf8.RuneCountInString(col)
		for _, row := range rows {
			widths[i] = max(widths[i], utf8.RuneCountInString(row[col]))
		}
	}
	fitWidths(widths, width)
	bw := bufio.NewWriter(w)
	head, key := color.New(color.Bold, color.Underline), color.New(color.FgCyan)
	line := func(cells []string, style func(i int) *color.Color) {
		for i, cell := range cells {
			cell = fit(cell, widths[i])
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if s := style(i); s != nil {
				cell = s.Sprint(cell)
			}
			if i < len(cells)-1 {
				cell += pad + "  "
			}
			bw.WriteString(cell)
		}
		bw.WriteByte('\n')
	}
	line(cols, func(int) *color.Color { return head })
	for _, row := range rows {
		cells := make([]string, len(cols))
		for i, col := range cols {
			cells[i] = row[col]
		}
		line(cells, func(i int) *color.Color {
			if i == 0 {
				return key
			}
			return nil
		})
	}
	return bw.Flush()
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
