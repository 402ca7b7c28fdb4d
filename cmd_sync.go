package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/state"
	"github.com/urfave/cli/v2"
)

var syncCommand = &cli.Command{
	Name:      "sync",
	Usage:     "keep a JSONL snapshot of an endpoint, crash-safe and resumable",
	ArgsUsage: "URL",
	Description: `Keeps FILE (--out) a JSON Lines copy of the endpoint's table, sorted by key,
with FILE.checkpoint holding the cursor. Without --follow it resumes from the
checkpoint, catches up, writes both files and exits 0: safe from cron every
minute. Files are replaced atomically, snapshot before checkpoint, so a crash
at any instant loses nothing. A second sync on the same FILE fails at once.
If FILE is a symbolic link it is resolved once: the file it points to is
written and locked, and the link stays. New files are 0666 less the umask
(--private: 0600); existing files keep their mode.

Examples:
   lockstep sync http://h/servers/ --out servers.jsonl
   * * * * * lockstep sync http://h/servers/ --out /var/lib/servers.jsonl   # crontab
   lockstep sync --follow http://h/servers/ --out servers.jsonl`,
	Flags: append(append([]cli.Flag{
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "the snapshot `FILE` (FILE.checkpoint and FILE.lock beside it; a symbolic link is resolved once)", EnvVars: env("out")},
		&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep running, writing the files as changes arrive", EnvVars: env("follow")},
		&cli.BoolFlag{Name: "resync", Usage: "rebuild from cursor 0, removing what the endpoint no longer has", EnvVars: env("resync")},
		&cli.StringFlag{Name: "max-delete", Value: "50%", Usage: "refuse a resync that would remove more than this share of a table of 100+ records", EnvVars: env("max-delete")},
		&cli.DurationFlag{Name: "flush-interval", Value: time.Second, Usage: "with --follow: write the files at most this often", EnvVars: env("flush-interval")},
		&cli.BoolFlag{Name: "wait", Usage: "wait for another sync's lock instead of failing", EnvVars: env("wait")},
		&cli.BoolFlag{Name: "private", Usage: "make the files 0600, existing ones too (default: new files 0666 less the umask)", EnvVars: env("private")},
		onBadRecordFlag("fail"),
	}, fieldFlags...), connFlags...),
	Action: runSync,
}

func runSync(c *cli.Context) error {
	rawURL, err := urlArg(c)
	if err != nil {
		return err
	}
	out := c.String("out")
	if out == "" {
		return usagef("sync: --out FILE is required")
	}
	stderr := c.App.ErrWriter
	maxDelete, err := parseShare(c.String("max-delete"))
	if err != nil {
		return usagef("--max-delete: %v", err)
	}
	cfg, err := followConfig(c, rawURL, stderr)
	if err != nil {
		return err
	}
	cfg.Follow = c.Bool("follow")
	onBad := c.String("on-bad-record")
	cfg.SkipBadRecords = onBad != "fail"
	f, err := follow.New(cfg)
	if err != nil {
		return usageError{fmt.Errorf("sync %s: %w", out, err)}
	}
	if out, err = state.ResolveFile(c.String("out")); err != nil {
		return fmt.Errorf("sync --out %s: %w", c.String("out"), err)
	}
	name := "sync " + out

	var lock *state.Lock
	if c.Bool("wait") {
		lock, err = state.WaitLock(c.Context, out)
	} else {
		lock, err = state.TryLock(out)
	}
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			return fmt.Errorf("%s: %w (use --wait to wait for it)", name, err)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	defer lock.Unlock()
	if removed, err := lock.RemoveStaleTemps(out, state.CheckpointPath(out)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	} else if len(removed) > 0 {
		fmt.Fprintf(stderr, "lockstep: %s: removed %d temp files an interrupted run left\n", name, len(removed))
	}

	resync := c.Bool("resync")
	cp, err := state.ReadCheckpoint(state.CheckpointPath(out))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		cp = nil
	case err != nil && !resync:
		return fmt.Errorf("%s: %w", name, err)
	case err == nil && !resync:
		if err := cp.Check(f.Endpoint(), cfg.Fields); err != nil {
			return fmt.Errorf("%s: %w (use --resync to start over)", name, err)
		}
	}
	table := state.NewTable()
	err = table.ReadSnapshot(out, cfg.Fields)
	haveSnapshot := err == nil
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil && resync:
		fmt.Fprintf(stderr, "lockstep: %s: ignoring the damaged snapshot (--resync): %v\n", name, err)
		table = state.NewTable()
	case err != nil:
		return fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case resync:
	case haveSnapshot && cp == nil:
		fmt.Fprintf(stderr, "lockstep: %s: no checkpoint beside the snapshot; full resync\n", name)
		resync = true
	case !haveSnapshot && cp != nil && cp.Records > 0:
		fmt.Fprintf(stderr, "lockstep: %s: the snapshot is missing; full resync\n", name)
		resync = true
	case cp != nil:
		cfg.Since, cfg.SinceKeys = cp.Cursor, cp.CursorKeys
	}
	cfg.Resync = resync
	if f, err = follow.New(cfg); err != nil {
		return err
	}
	perm := state.ModeShared
	if c.Bool("private") {
		perm = state.ModePrivate
	}
	s := &syncer{
		f: f, table: table, out: out, perm: perm, fields: cfg.Fields, stderr: stderr,
		follow: cfg.Follow, interval: c.Duration("flush-interval"), maxDelete: maxDelete,
		dirty: !haveSnapshot, warn: onBad == "warn",
		progress: isTerminal(stderr), start: time.Now(),
	}
	if cp != nil && !resync {
		s.caughtAt = cp.CaughtUpAt
	}
	err = f.Run(c.Context, s.handle)
	s.clearProgress()
	if errors.Is(err, context.Canceled) {
		// SIGINT or SIGTERM: keep what was applied, then exit 0.
		err = s.write()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(stderr, "%s: %s records, cursor %s, +%d ~%d -%d\n", out, thousands(table.Len()), s.cursorText(), s.inserts, s.updates, s.deletes)
	if s.skipped > 0 {
		fmt.Fprintf(stderr, "%s: %d bad records skipped\n", out, s.skipped)
	}
	if s.follow {
		wall := time.Since(s.start)
		fmt.Fprintf(stderr, "%s: %d writes took %.1f%% of %s\n", out, s.writes, 100*s.writing.Seconds()/wall.Seconds(), wall.Round(100*time.Millisecond))
	}
	return nil
}

// syncer applies follower events to the table and writes the files.
type syncer struct {
	f         *follow.Follower
	table     *state.Table
	out       string
	perm      fs.FileMode
	fields    follow.DecoderOptions
	stderr    io.Writer
	follow    bool
	interval  time.Duration
	maxDelete float64
	warn      bool

	dirty     bool // the table differs from the snapshot on disk
	cpDirty   bool // the checkpoint differs from the one on disk
	lastWrite time.Time
	writeCost time.Duration
	writing   time.Duration // all writes, for the summary
	writes    int
	caughtAt  time.Time
	contact   time.Time

	inserts, updates, deletes, skipped int

	progress   bool
	start      time.Time
	applied    int
	lastRedraw time.Time
}

func (s *syncer) handle(ev follow.Event) error {
	switch ev.Kind {
	case follow.EventConnected:
		s.contact = time.Now()
		forgetTombstones(s.f, s.table)
	case follow.EventRecord:
		switch s.table.Apply(ev.Record) {
		case state.OpInsert:
			s.inserts++
		case state.OpUpdate:
			s.updates++
		case state.OpDelete:
			s.deletes++
		default:
			s.cpDirty = true
			return nil
		}
		s.dirty = true
		s.applied++
		if s.progress && s.applied&4095 == 0 {
			s.redraw()
		}
	case follow.EventQuiet:
		s.contact = time.Now()
		if s.progress {
			s.redraw()
		}
		return s.maybeWrite(false)
	case follow.EventCaughtUp:
		now := time.Now()
		s.contact, s.caughtAt, s.cpDirty = now, now, true
		if ev.Resynced {
			if err := s.sweep(ev.Previous); err != nil {
				return err
			}
		}
		return s.maybeWrite(!s.follow)
	case follow.EventRetry:
		s.clearProgress()
		fmt.Fprintf(s.stderr, "lockstep: retrying in %s: %v\n", roundDelay(ev.Delay), ev.Err)
	case follow.EventResync:
		s.table.BeginResync()
		if ev.Err != nil {
			s.clearProgress()
			fmt.Fprintf(s.stderr, "lockstep: full resync from cursor 0: %v\n", ev.Err)
		}
	case follow.EventBadRecord:
		s.skipped++
		if s.warn {
			s.clearProgress()
			fmt.Fprintf(s.stderr, "lockstep: warning: skipped %v\n", ev.Err)
		}
	}
	return nil
}

func (s *syncer) sweep(previous follow.Order) error {
	removed, err := s.table.EndResync(s.maxDelete)
	if err != nil {
		return err
	}
	s.deletes += len(removed)
	if len(removed) > 0 {
		s.dirty = true
		fmt.Fprintf(s.stderr, "lockstep: resync removed %d records the endpoint no longer has\n", len(removed))
	}
	if cur, _ := s.f.Cursor(); previous != "" && cur.Compare(previous) < 0 {
		fmt.Fprintf(s.stderr, "lockstep: resync: cursor moved back from %s to %s (was the endpoint restored or reset?)\n", previous.Param(), cur.Param())
	}
	return nil
}

// maybeWrite writes the files if something changed, at most every
// interval, and less often when writing is slow: waiting 6 × the last
// write's cost keeps rewriting a large table under a fifth of the time.
func (s *syncer) maybeWrite(force bool) error {
	// Without --follow the files are written once, when caught up: a run
	// that fails before that leaves them exactly as they were.
	if !s.dirty && !s.cpDirty || !s.follow && !force {
		return nil
	}
	if !force {
		wait := max(s.interval, 6*s.writeCost) - time.Since(s.lastWrite)
		if wait > 0 {
			s.f.Alarm(wait)
			return nil
		}
	}
	return s.write()
}

// write writes the snapshot (if the table changed), then the checkpoint:
// never the other way round, so the checkpoint never runs ahead. Nothing is
// written in the middle of a resync.
func (s *syncer) write() error {
	if s.f.Resyncing() || (!s.dirty && !s.cpDirty) {
		return nil
	}
	start := time.Now()
	if s.dirty {
		if err := s.table.WriteSnapshot(s.out, s.perm); err != nil {
			return fmt.Errorf("write snapshot: %w", err)
		}
		s.dirty = false
	}
	cur, keys := s.f.Cursor()
	cp := &state.Checkpoint{
		Endpoint: s.f.Endpoint(), Key: s.fields.Key, OrderBy: s.fields.OrderBy, Deleted: s.fields.Deleted,
		Cursor: cur, CursorKeys: keys, Records: s.table.Len(),
		CaughtUpAt: s.caughtAt, LastContactAt: s.contact,
	}
	if err := state.WriteCheckpoint(state.CheckpointPath(s.out), s.perm, cp); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	s.cpDirty = false
	s.lastWrite = time.Now()
	s.writeCost = s.lastWrite.Sub(start)
	s.writing += s.writeCost
	s.writes++
	return nil
}

func (s *syncer) cursorText() string {
	cur, _ := s.f.Cursor()
	if cur == "" {
		return "0"
	}
	return cur.Param()
}

// redraw shows one line of progress on a terminal's stderr.
func (s *syncer) redraw() {
	now := time.Now()
	if now.Sub(s.lastRedraw) < 100*time.Millisecond {
		return
	}
	s.lastRedraw = now
	rate := float64(s.applied) / max(now.Sub(s.start).Seconds(), 0.001)
	fmt.Fprintf(s.stderr, "\r\033[K%s: %s applied, %s/s, cursor %s, %s records", s.out,
		thousands(s.applied), thousands(int(rate)), s.cursorText(), thousands(s.table.Len()))
}

func (s *syncer) clearProgress() {
	if s.progress && !s.lastRedraw.IsZero() {
		fmt.Fprint(s.stderr, "\r\033[K")
		s.lastRedraw = time.Time{}
	}
}

// parseShare reads "50%" or "0.5".
func parseShare(v string) (float64, error) {
	pct := strings.HasSuffix(v, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if pct {
		f /= 100
	}
	if err != nil || f < 0 || f > 1 {
		return 0, fmt.Errorf("%q: want a share such as 50%% or 0.5", v)
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
