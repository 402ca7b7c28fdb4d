package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
)

// logFlags say how lockstep talks on stderr; every command has them.
var logFlags = []cli.Flag{
	&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "say nothing on stderr unless something changed or went wrong (for cron)", EnvVars: env("quiet"), Category: "Logging"},
	&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "show each request and response (method, URL, status, headers, bytes, time; credentials redacted)", EnvVars: env("verbose"), Category: "Logging"},
	choice(&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text (a timestamp on each line unless stderr is a terminal) or json (one object a line)", EnvVars: env("log-format"), Category: "Logging"}, "text", "json"),
}

// A logger is lockstep's voice on stderr. Every message goes through
// log/slog: as "lockstep: message" lines (dated unless stderr is a
// terminal, so that 2>>file makes a usable log) or as JSON objects. It
// also owns the one progress line a terminal shows, clearing it before
// each message. Safe for concurrent use: --on-change hooks and the
// metrics server report from their own goroutines.
type logger struct {
	log   *slog.Logger
	json  bool // --log-format json
	quiet bool
	// live: draw a progress line (stderr is a terminal, text, not quiet).
	live bool

	mu    sync.Mutex
	w     io.Writer
	drawn bool
}

// newLogger builds the logger of a command from its flags.
func newLogger(c *cli.Context, w io.Writer) *logger {
	l := &logger{w: w, quiet: c.Bool("quiet")}
	level := slog.LevelInfo
	if c.Bool("verbose") {
		level = slog.LevelDebug
	}
	var h slog.Handler
	if c.String("log-format") == "json" {
		l.json = true
		h = slog.NewJSONHandler(lockedWriter{l}, &slog.HandlerOptions{Level: level})
	} else {
		terminal := isTerminal(w)
		h = &textHandler{l: l, level: level, dated: !terminal}
		l.live = terminal && !l.quiet
	}
	l.log = slog.New(h)
	if c.Command != nil && c.Command.Name != "" {
		l.log = l.log.With("cmd", c.Command.Name)
	}
	return l
}

// plainLogger is the logger of errors met before a command has read its
// flags: text lines, dated unless w is a terminal, as a command's own.
func plainLogger(w io.Writer) *logger { return earlyLogger(w, nil) }

// earlyLogger is plainLogger in the format the command line or the
// environment asks for (--log-format json, LOCKSTEP_LOG_FORMAT=json), so
// that every line of a JSON log is JSON, a usage error too.
func earlyLogger(w io.Writer, args []string) *logger {
	format := os.Getenv("LOCKSTEP_LOG_FORMAT")
	for i, a := range args {
		if a == "--" {
			break
		}
		switch name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "="); {
		case !strings.HasPrefix(a, "-") || name != "log-format":
		case ok:
			format = value
		case i+1 < len(args):
			format = args[i+1]
		}
	}
	l := &logger{w: w, json: format == "json"}
	if l.json {
		l.log = slog.New(slog.NewJSONHandler(lockedWriter{l}, nil))
	} else {
		l.log = slog.New(&textHandler{l: l, level: slog.LevelInfo, dated: !isTerminal(w)})
	}
	return l
}

// info says what happened; -q drops it.
func (l *logger) info(msg string, attrs ...any) {
	if !l.quiet {
		l.log.Info(msg, attrs...)
	}
}

// changed says that the replica changed: -q keeps it.
func (l *logger) changed(msg string, attrs ...any) { l.log.Info(msg, attrs...) }

// warn says that something went wrong and lockstep goes on.
func (l *logger) warn(msg string, attrs ...any) { l.log.Warn(msg, attrs...) }

// error reports the error that ends the command.
func (l *logger) error(err error) { l.log.Error(err.Error()) }

// output passes on a line another program wrote (an --on-change command),
// as a log line of its own, text or JSON. -q keeps it, as it keeps
// the summary of the change that ran the program.
func (l *logger) output(stream, line string) {
	if l.json {
		l.log.Info(line, "source", "on-change", "stream", stream)
		return
	}
	// A log line like any other (dated when stderr is not a terminal),
	// and said to be the hook's.
	l.log.Info("on-change: " + line)
}

// debug is for --verbose.
func (l *logger) debug(msg string, attrs ...any) { l.log.Debug(msg, attrs...) }

func (l *logger) verbose() bool { return l.log.Enabled(context.Background(), slog.LevelDebug) }

// progress redraws the progress line, on a terminal only.
func (l *logger) progress(line string) {
	if !l.live {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "\r\033[K%s", line)
	l.drawn = true
}

// clearProgress removes the progress line, if one is drawn.
func (l *logger) clearProgress() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clearLocked()
}

func (l *logger) clearLocked() {
	if l.drawn {
		fmt.Fprint(l.w, "\r\033[K")
		l.drawn = false
	}
}

// lockedWriter writes whole messages under the logger's lock, after
// clearing its progress line.
type lockedWriter struct{ l *logger }

func (lw lockedWriter) Write(p []byte) (int, error) {
	lw.l.mu.Lock()
	defer lw.l.mu.Unlock()
	lw.l.clearLocked()
	return lw.l.w.Write(p)
}

// textHandler writes a record as "lockstep: message", a line for each
// line of the message, dated when stderr is not a terminal. Attributes are
// for the JSON format; the message already says what they hold.
type textHandler struct {
	l     *logger
	level slog.Level
	dated bool
}

func (h *textHandler) Enabled(_ context.Context, level slog.Level) bool { return level >= h.level }

func (h *textHandler) Handle(_ context.Context, r slog.Record) error {
	prefix := "lockstep: "
	if h.dated {
		prefix = r.Time.Format(time.RFC3339) + " " + prefix
	}
	var b strings.Builder
	for _, line := range strings.Split(r.Message, "\n") {
		b.WriteString(prefix + line + "\n")
	}
	_, err := lockedWriter{h.l}.Write([]byte(b.String()))
	return err
}

func (h *textHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *textHandler) WithGroup(string) slog.Handler      { return h }

// commandLogger is the logger the running command set up, or else one
// for the command line as given (main keeps it in the app's Metadata).
func commandLogger(app *cli.App) *logger {
	if l, ok := app.Metadata[loggerKey].(*logger); ok {
		return l
	}
	args, _ := app.Metadata[rawArgsKey].([]string)
	return earlyLogger(app.ErrWriter, args)
}

const (
	loggerKey  = "logger"
	rawArgsKey = "raw-args" // the command line, for earlyLogger
)

// setUpLogger is every command's Before: it makes the command's logger.
func setUpLogger(c *cli.Context) error {
	l := newLogger(c, c.App.ErrWriter)
	c.App.Metadata[loggerKey] = l
	if v, ok := os.LookupEnv("LOCKSTEP_FORMAT"); ok && c.Command.Name != "completion" && c.Command.Name != "man" {
		// Once one variable for every command's --format; now one each.
		instead := "LOCKSTEP_DUMP_FORMAT, LOCKSTEP_TAIL_FORMAT or LOCKSTEP_CHECK_FORMAT"
		if flagNamed(c.Command.Flags, "format") != nil {
			instead = "LOCKSTEP_" + strings.ToUpper(c.Command.Name) + "_FORMAT"
		}
		l.warn(fmt.Sprintf("LOCKSTEP_FORMAT=%s is not read (--format means something else to each command): set %s", v, instead))
	}
	return nil
}

// logOf is the logger of the running command.
func logOf(c *cli.Context) *logger { return commandLogger(c.App) }
