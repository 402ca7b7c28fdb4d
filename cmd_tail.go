package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/replica"
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
   lockstep tail --once --checkpoint servers.cursor http://h/servers/   # cron: each change once
   lockstep tail --metrics 127.0.0.1:9100 http://h/servers/ | ./apply   # /metrics and /healthz`,
	Flags: append(append([]cli.Flag{
		&cli.StringFlag{Name: "since", Usage: "start from this cursor instead of 0", EnvVars: env("since")},
		&cli.BoolFlag{Name: "once", Usage: "exit 0 once caught up", EnvVars: env("once")},
		&cli.StringFlag{Name: "checkpoint", Usage: "resume from the cursor kept in `FILE` (a tail cursor file, locked while tail runs), and keep it current", EnvVars: env("checkpoint")},
		&cli.BoolFlag{Name: "wait", Usage: "with --checkpoint: wait for another tail's lock instead of failing", EnvVars: env("wait")},
		&cli.BoolFlag{Name: "private", Usage: "with --checkpoint: create the file 0600", EnvVars: env("private")},
		&cli.StringFlag{Name: "max-delete", Value: "50%", Usage: "refuse a resync that would infer tombstones for more than this share of 100+ keys", EnvVars: env("max-delete")},
		choice(&cli.StringFlag{Name: "format", Value: "auto", Usage: "json (record bytes), text (table: the same), or auto (text on a terminal)", EnvVars: commandEnv("tail", "format"), Category: "Output"}, "auto", "json", "text", "table"),
		colorFlag,
		onBadRecordFlag("warn"),
	}, slices.Concat(metricsFlags, logFlags, fieldFlags)...), connFlags...),
	Action: runTail,
}

func runTail(c *cli.Context) error {
	rawURL, err := urlArg(c)
	if err != nil {
		return err
	}
	stdout, stderr := c.App.Writer, c.App.ErrWriter
	log := logOf(c)
	maxDelete, err := parseShare(c.String("max-delete"))
	if err != nil {
		return flagError(c, "%s: %v", valueSource(c, "max-delete", c.String("max-delete")), err)
	}
	fcfg, err := followConfig(c, rawURL)
	if err != nil {
		return err
	}
	fcfg.Follow = !c.Bool("once")
	probe, err := follow.New(fcfg)
	if err != nil {
		return usageError{fmt.Errorf("tail: %w", err)}
	}
	name := "tail " + probe.Endpoint()

	var out changeWriter
	format := c.String("format")
	if format == "text" || format == "table" || (format == "auto" && isTerminal(stdout)) {
		applyColor(c, stdout)
		out = newTextChanges(stdout, fcfg.Fields)
	} else {
		out = &jsonChanges{w: bufio.NewWriterSize(stdout, 256<<10)}
	}
	ctx, cancel := context.WithCancelCause(c.Context)
	defer cancel(nil)
	watchStdout(ctx, stdout, cancel)

	p := &progress{log: log, chatty: isTerminal(stderr), name: name, follow: fcfg.Follow, bytes: &watched(fcfg).bytes,
		swept: "resync: the endpoint no longer has %s printed before; printed them as inferred tombstones"}
	if !fcfg.Follow {
		p.retryFor = c.Duration("retry-for").String()
	}
	cfg := replica.Config{
		Follow: fcfg, Table: replica.Memory(state.NewIndex()),
		MaxDelete: maxDelete, BadRecords: badRecords(c),
		CommitEvery: time.Second, Sink: sink{out}, Notify: p.notice,
	}
	// A progress line only where it cannot mix with the changes printed.
	if !isTerminal(stdout) {
		cfg.Progress = p.update
	}
	m, err := startMetrics(ctx, c)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	m.attach(&cfg)
	if c.IsSet("since") {
		cfg.Follow.Since = follow.ParseOrder(c.String("since"))
	}
	if path := c.String("checkpoint"); path != "" {
		if path, err = state.ResolveFile(path); err != nil {
			return fmt.Errorf("%s: --checkpoint %s: %w", name, c.String("checkpoint"), err)
		}
		perm := state.ModeShared
		if c.Bool("private") {
			perm = state.ModePrivate
		}
		store, err := waitFor(log, path, c.Bool("wait"), func(wait bool) (*replica.Cursor, error) {
			return replica.OpenCursor(ctx, path, perm, wait)
		})
		if err != nil {
			if errors.Is(err, state.ErrLocked) {
				return fmt.Errorf("%s: %w (use --wait to wait for it)", name, err)
			}
			return fmt.Errorf("%s: %w", name, err)
		}
		defer store.Close()
		cfg.Store = store
	}
	e, err := replica.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", name, storeAdvice(err, "another --checkpoint FILE, or remove it to start over"))
	}
	p.engine = e
	m.countLive(e)
	err = e.Run(ctx)
	log.clearProgress()
	if ferr := out.flush(); err == nil || errors.Is(err, context.Canceled) {
		if ferr != nil {
			err = ferr
		}
	}
	if errors.Is(context.Cause(ctx), errStdoutGone) {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	if err = stdoutError(err); err != nil && !errors.Is(err, errStdoutGone) {
		return fmt.Errorf("%s: %w", name, runAdvice(c, err))
	}
	return err
}

// sink adapts a changeWriter to the engine, telling a vanished reader of
// stdout apart from other errors.
type sink struct{ w changeWriter }

func (s sink) Change(op state.Op, rec *follow.Record, inferred bool) error {
	return stdoutError(s.w.change(op, rec, inferred))
}

func (s sink) Flush() error { return stdoutError(s.w.flush()) }
