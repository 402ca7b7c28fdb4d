package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fatih/color"
	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/replica"
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

// colorFlag: --color auto|always|never.
var colorFlag = choice(&cli.StringFlag{
	Name: "color", Value: "auto", EnvVars: env("color"), Category: "Output",
	Usage: "colour the terminal format: auto (a terminal, unless NO_COLOR or TERM=dumb), always, never"}, "auto", "always", "never")

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

func cursorText(o follow.Order) string {
	if o == "" {
		return "0"
	}
	return o.Param()
}

// plural is one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// storeAdvice adds what to do to an error about the files a replica is
// kept in.
func storeAdvice(err error, fix string) error {
	var mm *state.MismatchError
	var bind *replica.BindingError
	var snap *state.SnapshotError
	var dmg *state.DamagedError
	var notSnap *replica.NotSnapshotError
	switch {
	case errors.As(err, &notSnap):
		return fmt.Errorf("%w (give --out a file of its own, or move this one away)", err)
	case errors.As(err, &mm) && mm.What == "kind":
		return fmt.Errorf("%w (give each command a file of its own)", err)
	case errors.As(err, &mm), errors.As(err, &bind), errors.As(err, &snap), errors.As(err, &dmg):
		return fmt.Errorf("%w (use %s)", err, fix)
	}
	return err
}

// runAdvice adds what to do to an error that ended a run.
func runAdvice(c *cli.Context, err error) error {
	var gu *follow.GiveUpError
	var md *state.MassDeleteError
	if errors.As(err, &md) {
		return massDeleteError{err, md}
	}
	if errors.As(err, &gu) {
		if d := c.Duration("retry-for"); d <= 0 {
			return fmt.Errorf("%w (--retry-for 0: no retries)", err)
		} else {
			return fmt.Errorf("%w (--retry-for %s)", err, d)
		}
	}
	return storeAdvice(err, "--resync to rebuild it")
}

// massDeleteError says a refused sweep in the CLI's terms: counts with
// thousands separators, and the flag that allows it.
type massDeleteError struct {
	err error // md, or what wrapped it
	md  *state.MassDeleteError
}

func (e massDeleteError) Error() string {
	msg := fmt.Sprintf("resync would remove %s of %s %s (%.0f%%), more than --max-delete %.0f%% allows (an endpoint that answers empty by mistake must not wipe the replica; use --max-delete 100%% if this is right)",
		thousands(e.md.Remove), thousands(e.md.Of), plural(e.md.Of, "record", "records"), 100*float64(e.md.Remove)/float64(e.md.Of), 100*e.md.Limit)
	// Keep what the layers between added: "replica: …".
	return strings.TrimSuffix(e.err.Error(), e.md.Error()) + msg
}

func (e massDeleteError) Unwrap() error { return e.err }
