package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/fatih/color"
	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/state"
	"github.com/urfave/cli/v2"
)

// A changeWriter prints changes to stdout. It is chosen once; the loop only
// calls change and flush.
type changeWriter interface {
	change(op state.Op, rec *follow.Record, inferred bool) error
	flush() error
}

// jsonChanges writes each change as the record's exact bytes on a line of
// its own, in large buffers that are flushed when the input goes quiet.
type jsonChanges struct{ w *bufio.Writer }

func (j *jsonChanges) change(_ state.Op, rec *follow.Record, _ bool) error {
	j.w.Write(rec.Bytes)
	return j.w.WriteByte('\n')
}

func (j *jsonChanges) flush() error { return j.w.Flush() }

// textChanges writes a readable, coloured line per change.
type textChanges struct {
	w      *bufio.Writer
	fields follow.DecoderOptions
	ops    map[state.Op]*color.Color
	key    *color.Color
	dim    *color.Color
}

func newTextChanges(w io.Writer, fields follow.DecoderOptions) *textChanges {
	return &textChanges{
		w:      bufio.NewWriter(w),
		fields: fields,
		ops: map[state.Op]*color.Color{
			state.OpInsert:    color.New(color.FgGreen, color.Bold),
			state.OpUpdate:    color.New(color.FgYellow, color.Bold),
			state.OpDelete:    color.New(color.FgRed, color.Bold),
			state.OpTombstone: color.New(color.FgRed, color.Bold),
		},
		key: color.New(color.FgCyan, color.Bold),
		dim: color.New(color.Faint),
	}
}

var opWords = map[state.Op]string{
	state.OpInsert: "new", state.OpUpdate: "updated", state.OpDelete: "deleted", state.OpTombstone: "deleted",
}

func (t *textChanges) change(op state.Op, rec *follow.Record, inferred bool) error {
	word := opWords[op]
	if inferred {
		word = "deleted*"
	}
	fmt.Fprintf(t.w, "%s %s %s", t.ops[op].Sprintf("%-8s", word), t.key.Sprint(string(rec.Key)), t.dim.Sprint("@"+string(rec.Order)))
	if rest := restOf(rec.Bytes, t.fields); rest != "" && op != state.OpDelete && op != state.OpTombstone {
		fmt.Fprintf(t.w, "  %s", rest)
	}
	_, err := t.w.WriteString("\n")
	return err
}

func (t *textChanges) flush() error { return t.w.Flush() }

// field is one top-level member of a record, in the record's order.
type field struct {
	name  string
	value json.RawMessage
}

// fieldsOf lists a record's top-level members without re-encoding values.
func fieldsOf(rec []byte) []field {
	dec := json.NewDecoder(bytes.NewReader(rec))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var out []field
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return out
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out
		}
		out = append(out, field{name, v})
	}
	return out
}

// restOf is the record without its key, order and deleted fields, compact.
func restOf(rec []byte, f follow.DecoderOptions) string {
	var parts []string
	for _, fl := range fieldsOf(rec) {
		if fl.name == f.Key || fl.name == f.OrderBy || fl.name == f.Deleted {
			continue
		}
		var buf bytes.Buffer
		json.Compact(&buf, fl.value)
		parts = append(parts, fl.name+"="+buf.String())
	}
	return strings.Join(parts, " ")
}

// inferredTombstone builds the record printed for a key that a resync
// sweep removed: the key, order and deleted fields only.
func inferredTombstone(f follow.DecoderOptions, key, order []byte) follow.Record {
	name := func(s string) []byte { b, _ := json.Marshal(s); return b }
	var b []byte
	b = append(append(append(append(b, '{'), name(f.Key)...), ':'), key...)
	b = append(append(append(append(b, ','), name(f.OrderBy)...), ':'), order...)
	b = append(append(append(append(b, ','), name(f.Deleted)...), ':'), order...)
	b = append(b, '}')
	rec, _ := follow.ParseRecord(b, f)
	return rec
}

// colorFlag: --color auto|always|never.
var colorFlag = &cli.StringFlag{
	Name: "color", Value: "auto", EnvVars: env("color"), Category: "Output",
	Usage:  "colour the terminal format: auto (a terminal, unless NO_COLOR or TERM=dumb), always, never",
	Action: oneOf("color", "auto", "always", "never"),
}

// applyColor sets fatih/color's switch once, before any output.
func applyColor(c *cli.Context, stdout io.Writer) {
	switch c.String("color") {
	case "always":
		color.NoColor = false
	case "never":
		color.NoColor = true
	default:
		// fatih/color looks at os.Stdout; lockstep may write elsewhere.
		color.NoColor = color.NoColor || !isTerminal(stdout)
	}
}
