package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/state"
	"github.com/urfave/cli/v2"
)

var tailCommand = &cli.Command{
	Name:      "tail",
	Usage:     "follow an endpoint and print its changes",
	ArgsUsage: "URL",
	Description: `Follows URL for ever (--once: until caught up) and prints each change once:
as the record's exact bytes, one per line, when stdout is not a terminal
(so | jq works), or as a coloured line per change on a terminal. Status and
retries go to stderr.

Examples:
   lockstep tail http://127.0.0.1:4567/servers/
   lockstep tail --once http://h/servers/ | jq -r 'select(.deleted_at == null) | .ip'
   lockstep tail --once --checkpoint servers.cursor http://h/servers/   # cron: each change once`,
	Flags: append(append([]cli.Flag{
		&cli.StringFlag{Name: "since", Usage: "start from this cursor instead of 0", EnvVars: env("since")},
		&cli.BoolFlag{Name: "once", Usage: "exit 0 once caught up", EnvVars: env("once")},
		&cli.StringFlag{Name: "checkpoint", Usage: "resume from the cursor kept in `FILE`, and keep it current", EnvVars: env("checkpoint")},
		&cli.StringFlag{Name: "format", Value: "auto", Usage: "json (record bytes), text, or auto (text on a terminal)", EnvVars: env("format"), Category: "Output",
			Action: oneOf("format", "auto", "json", "text")},
		colorFlag,
		onBadRecordFlag("warn"),
	}, fieldFlags...), connFlags...),
	Action: runTail,
}

func runTail(c *cli.Context) error {
	rawURL, err := urlArg(c)
	if err != nil {
		return err
	}
	stdout, stderr := c.App.Writer, c.App.ErrWriter
	cfg, err := followConfig(c, rawURL, stderr)
	if err != nil {
		return err
	}
	cfg.Follow = !c.Bool("once")
	onBad := c.String("on-bad-record")
	cfg.SkipBadRecords = onBad != "fail"
	if c.IsSet("since") {
		cfg.Since = follow.ParseOrder(c.String("since"))
	}
	f, err := follow.New(cfg)
	if err != nil {
		return usageError{fmt.Errorf("tail: %w", err)}
	}
	fields := cfg.Fields
	name := "tail " + f.Endpoint()

	cpPath := c.String("checkpoint")
	if cpPath != "" {
		cp, err := state.ReadCheckpoint(cpPath)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("%s: %w", name, err)
		default:
			if err := cp.Check(f.Endpoint(), fields); err != nil {
				return fmt.Errorf("%s: %s: %w (remove it to start over)", name, cpPath, err)
			}
			if !c.IsSet("since") {
				cfg.Since, cfg.SinceKeys = cp.Cursor, cp.CursorKeys
				if f, err = follow.New(cfg); err != nil {
					return err
				}
			}
		}
	}

	var out changeWriter
	format := c.String("format")
	if format == "text" || (format == "auto" && isTerminal(stdout)) {
		applyColor(c, stdout)
		out = newTextChanges(stdout, fields)
	} else {
		out = &jsonChanges{w: bufio.NewWriterSize(stdout, 256<<10)}
	}
	ctx, cancel := context.WithCancelCause(c.Context)
	defer cancel(nil)
	watchStdout(ctx, stdout, cancel)

	t := &tailer{f: f, out: out, stderr: stderr, fields: fields, table: state.NewIndex(),
		cpPath: cpPath, endpoint: f.Endpoint(), warn: onBad == "warn", chatty: isTerminal(stderr)}
	err = f.Run(ctx, t.handle)
	if ferr := out.flush(); err == nil || errors.Is(err, context.Canceled) {
		if ferr != nil {
			err = ferr
		}
	}
	if errors.Is(context.Cause(ctx), errStdoutGone) {
		return nil
	}
	if err == nil || errors.Is(err, context.Canceled) {
		if cerr := t.checkpoint(true); cerr != nil {
			return fmt.Errorf("%s: %w", name, cerr)
		}
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	if err = stdoutError(err); err != nil && !errors.Is(err, errStdoutGone) {
		return fmt.Errorf("%s: %w", name, err)
	}
	return err
}

// tailer turns follower events into output.
type tailer struct {
	f        *follow.Follower
	out      changeWriter
	stderr   io.Writer
	fields   follow.DecoderOptions
	table    *state.Table
	warn     bool
	chatty   bool // stderr is a terminal: say more
	cpPath   string
	endpoint string
	lastCP   time.Time
	cpCursor follow.Order
	pending  int
	contact  time.Time
	caughtAt time.Time
}

func (t *tailer) handle(ev follow.Event) error {
	switch ev.Kind {
	case follow.EventConnected:
		t.contact = time.Now()
		forgetTombstones(t.f, t.table)
	case follow.EventRecord:
		op := t.table.Apply(ev.Record)
		if op == state.OpNone {
			return nil
		}
		t.pending++
		return stdoutError(t.out.change(op, ev.Record, false))
	case follow.EventQuiet:
		t.contact = time.Now()
		if err := stdoutError(t.out.flush()); err != nil {
			return err
		}
		return t.checkpoint(false)
	case follow.EventCaughtUp:
		t.contact, t.caughtAt = time.Now(), time.Now()
		if ev.Resynced {
			if err := t.sweep(ev.Previous); err != nil {
				return err
			}
		}
		if err := stdoutError(t.out.flush()); err != nil {
			return err
		}
		if t.chatty {
			cur, _ := t.f.Cursor()
			fmt.Fprintf(t.stderr, "lockstep: caught up at cursor %s\n", cur.Param())
		}
		return t.checkpoint(true)
	case follow.EventRetry:
		fmt.Fprintf(t.stderr, "lockstep: retrying in %s: %v\n", roundDelay(ev.Delay), ev.Err)
	case follow.EventResync:
		t.table.BeginResync()
		if ev.Err != nil {
			fmt.Fprintf(t.stderr, "lockstep: full resync from cursor 0: %v\n", ev.Err)
		}
	case follow.EventBadRecord:
		if t.warn {
			fmt.Fprintf(t.stderr, "lockstep: warning: skipped %v\n", ev.Err)
		}
	}
	return nil
}

// sweep prints an inferred tombstone for every key the resync did not send.
func (t *tailer) sweep(previous follow.Order) error {
	removed, err := t.table.EndResync(1)
	if err != nil {
		return err
	}
	cur, _ := t.f.Cursor()
	for _, r := range removed {
		order := []byte(cur)
		if len(order) == 0 || follow.CompareOrder(r.Order, order) > 0 {
			order = r.Order
		}
		rec := inferredTombstone(t.fields, r.Key, order)
		if err := stdoutError(t.out.change(state.OpDelete, &rec, true)); err != nil {
			return err
		}
	}
	if len(removed) > 0 {
		fmt.Fprintf(t.stderr, "lockstep: resync: the endpoint no longer has %d of the keys printed before; printed them as inferred tombstones\n", len(removed))
	}
	if previous != "" && cur.Compare(previous) < 0 {
		fmt.Fprintf(t.stderr, "lockstep: resync: cursor moved back from %s to %s (was the endpoint restored or reset?)\n", previous.Param(), cur.Param())
	}
	return nil
}

// checkpoint keeps --checkpoint current: after output is flushed, never
// before, and at most once a second unless forced.
func (t *tailer) checkpoint(force bool) error {
	if t.cpPath == "" || t.f.Resyncing() {
		return nil
	}
	cur, keys := t.f.Cursor()
	if cur == t.cpCursor && !force || !force && time.Since(t.lastCP) < time.Second {
		return nil
	}
	cp := &state.Checkpoint{
		Endpoint: t.endpoint, Key: t.fields.Key, OrderBy: t.fields.OrderBy, Deleted: t.fields.Deleted,
		Cursor: cur, CursorKeys: keys, CaughtUpAt: t.caughtAt, LastContactAt: t.contact,
	}
	if err := state.WriteCheckpoint(t.cpPath, state.ModeShared, cp); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	t.lastCP, t.cpCursor = time.Now(), cur
	return nil
}
