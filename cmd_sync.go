package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/replica"
	"github.com/lockstep/lockstep/sqlstore"
	"github.com/lockstep/lockstep/state"
	"github.com/urfave/cli/v2"
)

var syncCommand = &cli.Command{
	Name:      "sync",
	Usage:     "keep a replica of an endpoint (a JSONL file, SQLite or PostgreSQL), crash-safe and resumable",
	ArgsUsage: "URL",
	Description: `Keeps FILE (--out) a JSON Lines copy of the endpoint's table, sorted by key,
with FILE.checkpoint holding the cursor. Without --follow it resumes from the
checkpoint, catches up, writes both files and exits 0: safe from cron every
minute. Files are replaced atomically, snapshot before checkpoint, so a crash
at any instant loses nothing. A second sync on the same FILE fails at once.
If FILE is a symbolic link it is resolved once: the file it points to is
written and locked, and the link stays. New files are 0666 less the umask
(--private: 0600); existing files keep their mode.

--on-change CMD runs after each write that changed the replica (sh -c,
never two at once, its output on stderr: with --log-format json, a JSON
log line per line of output), with LOCKSTEP_INSERTS,
LOCKSTEP_UPDATES, LOCKSTEP_DELETES (since the last run), LOCKSTEP_RECORDS,
LOCKSTEP_CURSOR, LOCKSTEP_SNAPSHOT (FILE) and LOCKSTEP_ENDPOINT (redacted)
in its environment. Its failure is reported; the sync goes on.

--metrics ADDR (with --follow) serves Prometheus metrics at /metrics and
/healthz: 200 while the replica caught up within --health-max-age (or
--max-age), else 503.

Examples:
   lockstep sync http://h/servers/ --out servers.jsonl
   * * * * * lockstep sync -q http://h/servers/ --out /var/lib/servers.jsonl 2>>/var/log/lockstep.log   # crontab
   lockstep sync --follow --on-change 'systemctl reload haproxy' http://h/servers/ --out servers.jsonl
   lockstep sync --follow --metrics :9100 --log-format json http://h/servers/ --out servers.jsonl
   lockstep sync http://h/servers/ --out sqlite:servers.db                 # a table "servers" in SQLite
   lockstep sync --follow http://h/servers/ --out 'postgres://app@db/ops?table=servers'

With --out sqlite:PATH or postgres://…, the replica is a database table (by
default named after the endpoint's last path segment; ?table=NAME to choose)
with one row per live record, and the checkpoint in the table lockstep_meta,
committed in the same transaction as the changes: see the README's schema.`,
	Flags: append(append([]cli.Flag{
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "the snapshot `FILE` (FILE.checkpoint and FILE.lock beside it; a symbolic link is resolved once), or sqlite:PATH, or postgres://…", EnvVars: env("out")},
		&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep running, writing the files as changes arrive", EnvVars: env("follow")},
		&cli.BoolFlag{Name: "resync", Usage: "rebuild from cursor 0, removing what the endpoint no longer has", EnvVars: env("resync")},
		&cli.StringFlag{Name: "max-delete", Value: "50%", Usage: "refuse a resync that would remove more than this share of a table of 100+ records", EnvVars: env("max-delete")},
		&cli.DurationFlag{Name: "flush-interval", Value: time.Second, Usage: "with --follow: write the files at most this often (a database: 200ms unless set, as a commit there costs what changed, not the table)", EnvVars: env("flush-interval"),
			Action: positive("flush-interval")},
		&cli.BoolFlag{Name: "wait", Usage: "wait for another sync's lock instead of failing", EnvVars: env("wait")},
		&cli.BoolFlag{Name: "private", Usage: "make the files 0600, existing ones too (default: new files 0666 less the umask)", EnvVars: env("private")},
		onBadRecordFlag("fail"),
	}, slices.Concat(onChangeFlags, metricsFlags, logFlags, fieldFlags)...), connFlags...),
	Action: runSync,
}

func runSync(c *cli.Context) error {
	rawURL, err := urlArg(c)
	if err != nil {
		return err
	}
	out := c.String("out")
	if out == "" {
		return flagError(c, "--out FILE is required")
	}
	log := logOf(c)
	db := sqlstore.IsDSN(out)
	if err := checkDSN(out); db && err != nil {
		return flagError(c, "--out: %v", err)
	}
	if !db && isSQLite(out) {
		return flagError(c, "--out %s is a SQLite database, not a snapshot file; did you mean --out sqlite:%s?", out, out)
	}
	if !db {
		if out, err = state.ResolveFile(out); err != nil {
			return fmt.Errorf("sync --out %s: %w", c.String("out"), err)
		}
	}
	display := out
	if db {
		display = sqlstore.Redact(out)
	}
	name := "sync " + display
	maxDelete, err := parseShare(c.String("max-delete"))
	if err != nil {
		return flagError(c, "%s: %v", valueSource(c, "max-delete", c.String("max-delete")), err)
	}
	fcfg, err := followConfig(c, rawURL)
	if err != nil {
		return err
	}
	fcfg.Follow = c.Bool("follow")
	probe, err := follow.New(fcfg)
	if err != nil {
		return usageError{fmt.Errorf("%s: %w", name, err)}
	}
	if c.IsSet("metrics") && !fcfg.Follow {
		return flagError(c, "--metrics needs --follow (a sync that finishes is not there to be scraped)")
	}
	perm := state.ModeShared
	if c.Bool("private") {
		perm = state.ModePrivate
	}
	p := &progress{log: log, name: display, follow: fcfg.Follow, bytes: &watched(fcfg).bytes}
	if !fcfg.Follow {
		p.retryFor = c.Duration("retry-for").String()
	}
	var store replica.Store
	if db {
		store, err = sqlstore.Open(c.Context, out, fcfg.URL, sqlstore.Options{Wait: c.Bool("wait")})
	} else {
		store, err = waitFor(log, out, c.Bool("wait"), func(wait bool) (*replica.File, error) {
			return replica.OpenFile(c.Context, out, replica.FileOptions{Perm: perm, Wait: wait,
				Notify: func(err error) { log.warn(fmt.Sprintf("%s: %v", name, err)) }})
		})
	}
	if err != nil {
		switch {
		case errors.Is(err, state.ErrLocked):
			return fmt.Errorf("%s: %w (use --wait to wait for it)", name, err)
		case db && errors.Is(err, context.Canceled) && c.Context.Err() != nil:
			return fmt.Errorf("%s: interrupted while waiting for the sync that writes this table; nothing was done", name)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	defer store.Close()
	cfg := replica.Config{
		Follow: fcfg, Store: store, Resync: c.Bool("resync"),
		MaxDelete: maxDelete, BadRecords: badRecords(c),
		Notify: p.notice, Progress: p.update,
	}
	if fcfg.Follow {
		cfg.CommitEvery = c.Duration("flush-interval")
		if db && !c.IsSet("flush-interval") {
			cfg.CommitEvery = 200 * time.Millisecond
		}
	}
	m, err := startMetrics(c.Context, c)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	m.attach(&cfg)
	hook := newHook(c, display, probe.Endpoint())
	hook.attach(&cfg)
	e, err := replica.New(c.Context, cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", name, storeAdvice(err, "--resync to start over"))
	}
	p.engine = e
	err = e.Run(c.Context)
	hook.wait()
	log.clearProgress()
	if errors.Is(err, context.Canceled) && c.Context.Err() != nil {
		if !fcfg.Follow {
			// Without --follow the files are written only once caught up.
			return fmt.Errorf("%s: interrupted before it caught up; the files are as they were", name)
		}
		// SIGINT or SIGTERM: what was applied is written; exit 0.
		err = nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, runAdvice(c, err))
	}
	st := e.Stats()
	summary := fmt.Sprintf("%s: %s %s, cursor %s, +%s ~%s -%s", display, thousands(e.Len()), plural(e.Len(), "record", "records"), cursorText(e.Cursor()),
		thousands(st.Inserts), thousands(st.Updates), thousands(st.Deletes))
	attrs := []any{"out", display, "records", e.Len(), "cursor", cursorText(e.Cursor()), "inserts", st.Inserts, "updates", st.Updates, "deletes", st.Deletes}
	if st.Inserts+st.Updates+st.Deletes > 0 {
		log.changed(summary, attrs...)
	} else {
		log.info(summary, attrs...)
	}
	if st.Skipped > 0 {
		log.warn(fmt.Sprintf("%s: %s bad %s skipped", display, thousands(st.Skipped), plural(st.Skipped, "record", "records")), "skipped", st.Skipped)
	}
	if fcfg.Follow {
		wall := time.Since(st.Started)
		log.info(fmt.Sprintf("%s: %s %s took %.1f%% of %s", display, thousands(st.Commits), plural(st.Commits, "write", "writes"), 100*st.Committing.Seconds()/wall.Seconds(), wall.Round(100*time.Millisecond)),
			"writes", st.Commits, "writing", st.Committing, "wall", wall)
	}
	return nil
}

// parseShare reads "50%" or "0.5".
func parseShare(v string) (float64, error) {
	pct := strings.HasSuffix(v, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if pct {
		f /= 100
	}
	if err != nil || f < 0 || f > 1 {
		return 0, errors.New("want a share from 0% to 100%, such as 50% (or 0.5)")
	}
	return f, nil
}

// thousands formats n as 1,234,567.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
