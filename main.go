// Command lockstep keeps a local copy of a changing data set up to date over
// HTTP, by the lockstep protocol: tail follows an endpoint and prints its
// changes, sync keeps a JSONL snapshot and checkpoint, dump prints a table,
// serve is a reference endpoint.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=…"; without
// it, buildVersion reads what go build recorded.
var version = ""

func init() {
	// urfave/cli's -v is --version; lockstep's -v is --verbose, as in curl.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
}

// Exit codes, stable: scripts depend on them.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks an error in how lockstep was called.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func newApp(stdout, stderr io.Writer) *cli.App {
	commands := []*cli.Command{tailCommand, syncCommand, dumpCommand, serveCommand, checkCommand}
	for _, c := range commands {
		c.OnUsageError = usageMessage
		c.Before = setUpLogger
	}
	commands = append(commands, completionCommand, manCommand, helpCommand)
	for _, c := range commands {
		// No "lockstep tail help": help is a command of lockstep's.
		c.HideHelpCommand = true
	}
	return &cli.App{
		Name:    "lockstep",
		Usage:   "keep a local copy of a changing data set up to date over HTTP",
		Version: buildVersion(),
		Description: `lockstep follows an HTTP endpoint that lists records as JSON objects, one
per line, each with a key (id), an order value (updated_at) and a tombstone
field (deleted_at). It asks for everything changed since its cursor, applies
it, and resumes from the cursor after any disconnect or restart.

Exit codes: 0 done, 1 runtime failure, 2 usage error.
Every flag can also be set by an environment variable LOCKSTEP_<FLAG>,
e.g. LOCKSTEP_SINCE_PARAM=since, except --format, whose values differ from
command to command: LOCKSTEP_TAIL_FORMAT, LOCKSTEP_DUMP_FORMAT and
LOCKSTEP_CHECK_FORMAT.
Every command takes -q (quiet), -v (each request and response) and
--log-format text|json, before or after its name. Shell completion:
lockstep completion bash|zsh|fish; the manual page: lockstep man.`,
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   usageMessage,
		Commands:       commands,
		// urfave/cli adds --help only with its own help command.
		Flags:                []cli.Flag{cli.HelpFlag},
		EnableBashCompletion: true,
		Suggest:              true,
		Metadata:             map[string]any{},
		// The command line as given, so that an error can say whether a
		// value came from a flag or from the environment.
		Before: func(c *cli.Context) error {
			c.App.Metadata[argsKey] = c.Args().Slice()
			return nil
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return unknownCommand(c.App, c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
	}
}

// helpCommand is urfave/cli's, but a command it does not know is a
// usage error said as every other, with a suggestion.
var helpCommand = &cli.Command{
	Name:      "help",
	Aliases:   []string{"h"},
	Usage:     "show the commands, or the help of one command",
	ArgsUsage: "[COMMAND]",
	Action: func(c *cli.Context) error {
		switch c.NArg() {
		case 0:
			return cli.ShowAppHelp(c)
		case 1:
		default:
			return usagef("help: want one command, got %d arguments (see lockstep --help)", c.NArg())
		}
		name := c.Args().First()
		if c.App.Command(name) == nil {
			return unknownCommand(c.App, name)
		}
		return cli.ShowCommandHelp(c, name)
	},
}

func main() {
	// A reader of stdout that goes away (lockstep tail URL | head) must
	// give a write error, not kill the process before it can clean up.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	app := newApp(os.Stdout, os.Stderr)
	app.Metadata[rawArgsKey] = os.Args
	args := flagsFirst(app, os.Args)
	if completing(args) {
		if values, ok := flagValues(app, args); ok {
			fmt.Println(strings.Join(values, "\n"))
			os.Exit(0)
		}
		// urfave/cli's completion reads os.Args: it must see them as run,
		// log flags after the command.
		os.Args = args
	}
	err := app.RunContext(ctx, args)
	stop()
	os.Exit(exitCode(err, commandLogger(app)))
}

// exitCode reports err through the command's logger and maps it to an
// exit status.
func exitCode(err error, log *logger) int {
	switch {
	case err == nil, errors.Is(err, errStdoutGone):
		return exitOK
	case isUsage(err):
		log.error(err)
		return exitUsage
	}
	log.error(err)
	return exitFailure
}

// valueFlags maps each name of flags to whether the flag takes a value
// (every flag but a bool one).
func valueFlags(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}

// flagsFirst moves a subcommand's flags before its arguments, so that
// "lockstep sync URL --out FILE" works: urfave/cli v2 stops reading flags
// at the first argument. A "--" ends the flags, as usual.
func flagsFirst(app *cli.App, args []string) []string {
	// Shell completion reads its flag as the last argument; the log
	// flags still go after the command, so that it completes for it.
	if len(args) < 3 {
		return args
	}
	args = logFlagsAfterCommand(app, args)
	if len(args) < 3 || args[len(args)-1] == "--generate-bash-completion" {
		return args
	}
	cmd := app.Command(args[1])
	if cmd == nil {
		return args
	}
	takesValue := valueFlags(cmd.Flags)
	var flags, rest []string
	for i := 2; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			rest = append(rest, args[i:]...)
			i = len(args)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			rest = append(rest, a)
		}
	}
	return append(append(append([]string{}, args[:2]...), flags...), rest...)
}

// logFlagsAfterCommand moves the log flags given before the command
// (lockstep --log-format json sync …) to after it, where the command reads
// them: every command has them.
func logFlagsAfterCommand(app *cli.App, args []string) []string {
	takesValue := valueFlags(logFlags)
	i := 1
	for i < len(args) && len(args[i]) > 1 && args[i][0] == '-' {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		value, known := takesValue[name]
		if !known {
			break
		}
		if value && !hasValue {
			i++
		}
		i++
	}
	if i == 1 || i >= len(args) || args[i] == "--" {
		// Nothing or "--" after them: left for the app to refuse.
		return args
	}
	if app.Command(args[i]) == nil || !slices.ContainsFunc(app.Command(args[i]).Flags, isLogFlag) {
		// No command that logs follows (help, --help, a misspelt one):
		// the log flags have nothing to do there, and must not be taken
		// for what is wrong. (Early messages read them from the raw
		// arguments.)
		return append([]string{args[0]}, args[i:]...)
	}
	moved := append([]string{args[0], args[i]}, args[1:i]...)
	return append(moved, args[i+1:]...)
}

func isLogFlag(f cli.Flag) bool { return slices.Contains(logFlags, f) }

func isUsage(err error) bool {
	var u usageError
	return errors.As(err, &u)
}
