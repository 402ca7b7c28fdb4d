package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/fatih/color"
	"github.com/lockstep/lockstep/follow"
)

// A grid is records cut into named columns, for dump's table, csv and tsv
// formats, and for --fields.
type grid struct {
	cols []string
	rows []map[string]json.RawMessage
}

// newGrid lays records out in columns: those named by only (--fields), in
// that order, or else the key and the order value first, then every other
// field in the order first seen.
func newGrid(recs [][]byte, fields follow.DecoderOptions, only []string) grid {
	g := grid{cols: only, rows: make([]map[string]json.RawMessage, 0, len(recs))}
	seen := map[string]bool{}
	if only == nil {
		g.cols = []string{fields.Key, fields.OrderBy}
		seen = map[string]bool{fields.Key: true, fields.OrderBy: true, fields.Deleted: true}
	}
	for _, rec := range recs {
		row := map[string]json.RawMessage{}
		for _, f := range fieldsOf(rec) {
			row[f.name] = f.value
			if only == nil && !seen[f.name] {
				seen[f.name] = true
				g.cols = append(g.cols, f.name)
			}
		}
		g.rows = append(g.rows, row)
	}
	return g
}

// parseFields reads --fields: names separated by commas.
func parseFields(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var names []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n == "" {
			return nil, usagef("--fields %q: an empty field name; want names separated by commas, such as id,ip,port", v)
		}
		names = append(names, n)
	}
	return names, nil
}

// writeJSON writes each row as an object of the grid's columns, values
// as received; a record without a column leaves it out.
func (g grid) writeJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	for _, row := range g.rows {
		bw.WriteByte('{')
		first := true
		for _, col := range g.cols {
			v, ok := row[col]
			if !ok {
				continue
			}
			if !first {
				bw.WriteByte(',')
			}
			first = false
			name, _ := json.Marshal(col)
			bw.Write(name)
			bw.WriteByte(':')
			var buf bytes.Buffer
			if json.Compact(&buf, v) != nil {
				buf.Write(v)
			}
			bw.Write(buf.Bytes())
		}
		bw.WriteString("}\n")
	}
	return bw.Flush()
}

// writeSeparated writes a header and a line per row: RFC 4180 CSV, or
// tab-separated values with tabs and newlines escaped, as spreadsheets and
// cut(1) read them. Strings are unquoted, other values compact JSON.
func (g grid) writeSeparated(w io.Writer, tsv bool) error {
	bw := bufio.NewWriter(w)
	cw := csv.NewWriter(bw)
	write := func(cells []string) {
		if !tsv {
			cw.Write(cells)
			return
		}
		for i, c := range cells {
			if i > 0 {
				bw.WriteByte('\t')
			}
			bw.WriteString(tsvEscaper.Replace(c))
		}
		bw.WriteByte('\n')
	}
	write(g.cols)
	cells := make([]string, len(g.cols))
	for _, row := range g.rows {
		for i, col := range g.cols {
			cells[i] = rawText(row[col])
		}
		write(cells)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

var tsvEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)

// rawText is a value for a spreadsheet: a string's contents, or compact
// JSON; "" when absent.
func rawText(v json.RawMessage) string {
	if len(v) == 0 {
		return ""
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return string(v)
	}
	return buf.String()
}

// writeTable prints the grid as aligned columns; values compact, strings
// unquoted, cells cut to fit width (0: no limit).
func (g grid) writeTable(w io.Writer, width int) error {
	texts := make([][]string, len(g.rows))
	widths := make([]int, len(g.cols))
	for i, col := range g.cols {
		widths[i] = utf8.RuneCountInString(col)
	}
	for r, row := range g.rows {
		texts[r] = make([]string, len(g.cols))
		for i, col := range g.cols {
			if v, ok := row[col]; ok {
				texts[r][i] = cellText(v)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(texts[r][i]))
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
	line(g.cols, func(int) *color.Color { return head })
	for _, cells := range texts {
		line(cells, func(i int) *color.Color {
			if i == 0 {
				return key
			}
			return nil
		})
	}
	return bw.Flush()
}
