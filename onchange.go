package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lockstep/lockstep/replica"
	"github.com/urfave/cli/v2"
)

// onChangeFlags are sync's hook flags.
var onChangeFlags = []cli.Flag{
	&cli.StringFlag{Name: "on-change", Usage: "after a write that changed the replica, run `CMD` with sh -c (never two at once; counts and paths in LOCKSTEP_* variables, see --help)", EnvVars: env("on-change"), Category: "Hooks"},
	&cli.DurationFlag{Name: "on-change-timeout", Value: time.Minute, Usage: "kill an --on-change command still running after this long (0: never)", EnvVars: env("on-change-timeout"), Category: "Hooks",
		Action: nonNegative("on-change-timeout")},
}

// A hook runs --on-change after each commit that changed the replica.
// It runs on its own goroutine, so a slow command never holds up the
// sync, and never two at once: commits made while it runs are merged
// into one more run after it. Its failure is reported, not returned.
type hook struct {
	cmd      string
	timeout  time.Duration
	log      *logger // the command's output goes there too (hookOutput)
	snapshot string
	endpoint string

	mu      sync.Mutex
	running bool
	pending *replica.Commit
	done    sync.WaitGroup
}

func newHook(c *cli.Context, snapshot, endpoint string) *hook {
	if c.String("on-change") == "" {
		return nil
	}
	return &hook{cmd: c.String("on-change"), timeout: c.Duration("on-change-timeout"), log: logOf(c),
		snapshot: snapshot, endpoint: endpoint}
}

// attach chains the hook into an engine's commits.
func (h *hook) attach(cfg *replica.Config) {
	if h != nil {
		cfg.Committed = chain(cfg.Committed, h.committed)
	}
}

func (h *hook) committed(c replica.Commit) {
	if !c.Changed() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running {
		if h.pending != nil {
			c.Inserts += h.pending.Inserts
			c.Updates += h.pending.Updates
			c.Deletes += h.pending.Deletes
		}
		h.pending = &c
		return
	}
	h.running = true
	h.done.Add(1)
	go h.loop(c)
}

func (h *hook) loop(c replica.Commit) {
	defer h.done.Done()
	for {
		h.run(c)
		h.mu.Lock()
		if h.pending == nil {
			h.running = false
			h.mu.Unlock()
			return
		}
		c, h.pending = *h.pending, nil
		h.mu.Unlock()
	}
}

// wait waits for the command that runs, and the one pending, if any.
func (h *hook) wait() {
	if h != nil {
		h.done.Wait()
	}
}

func (h *hook) run(c replica.Commit) {
	ctx := context.Background()
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", h.cmd)
	// The command's own children are killed with it on a timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	stdout, stderr := &hookOutput{log: h.log, stream: "stdout"}, &hookOutput{log: h.log, stream: "stderr"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = append(hookEnviron(),
		"LOCKSTEP_INSERTS="+strconv.Itoa(c.Inserts),
		"LOCKSTEP_UPDATES="+strconv.Itoa(c.Updates),
		"LOCKSTEP_DELETES="+strconv.Itoa(c.Deletes),
		"LOCKSTEP_RECORDS="+strconv.Itoa(c.Records),
		"LOCKSTEP_CURSOR="+cursorText(c.Cursor),
		"LOCKSTEP_SNAPSHOT="+h.snapshot,
		"LOCKSTEP_ENDPOINT="+h.endpoint,
	)
	start := time.Now()
	err := cmd.Run()
	stdout.flush()
	stderr.flush()
	took := roundDelay(time.Since(start))
	var exit *exec.ExitError
	switch {
	case err == nil:
		h.log.info(fmt.Sprintf("--on-change: done in %s", took), "took", time.Since(start))
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		h.log.warn(fmt.Sprintf("--on-change: killed after --on-change-timeout %s; the sync goes on", h.timeout), "took", time.Since(start))
	case errors.As(err, &exit):
		h.log.warn(fmt.Sprintf("--on-change: exited %d after %s; the sync goes on", exit.ExitCode(), took), "exit", exit.ExitCode(), "took", time.Since(start))
	default:
		h.log.warn(fmt.Sprintf("--on-change: %v; the sync goes on", err), "err", err.Error())
	}
}

// hookOutput passes what an --on-change command writes on one stream to
// lockstep's stderr a whole line at a time, so that it never splits a log
// line: as it is in a text log, and as a JSON log line of its own (source
// "on-change", stream "stdout" or "stderr") with --log-format json.
type hookOutput struct {
	log    *logger
	stream string
	buf    []byte
}

// maxHookLine bounds what is held of a line that does not end.
const maxHookLine = 64 << 10

func (o *hookOutput) Write(p []byte) (int, error) {
	o.buf = append(o.buf, p...)
	for {
		i := bytes.IndexByte(o.buf, '\n')
		if i < 0 {
			break
		}
		o.log.output(o.stream, string(o.buf[:i]))
		o.buf = o.buf[i+1:]
	}
	if len(o.buf) >= maxHookLine {
		o.flush()
	}
	return len(p), nil
}

// flush passes on a last line that has no newline.
func (o *hookOutput) flush() {
	if len(o.buf) > 0 {
		o.log.output(o.stream, string(o.buf))
		o.buf = nil
	}
}

// hookEnviron is the environment a hook inherits: lockstep's own, less the
// LOCKSTEP_ variables that configure lockstep. Those may hold credentials
// (LOCKSTEP_USER, LOCKSTEP_HEADER, a database password in LOCKSTEP_OUT),
// and a hook is told what it needs in variables of its own.
func hookEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LOCKSTEP_") {
			env = append(env, kv)
		}
	}
	return env
}
