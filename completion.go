package main

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/urfave/cli/v2"
)

// Shell completion asks lockstep itself for the words that fit (urfave/cli's
// --generate-bash-completion), so it always matches the flags of the
// binary on the PATH; fish gets a script built from the same definitions.
const bashCompletion = `# lockstep completion for bash: eval "$(lockstep completion bash)"
_lockstep_complete() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local words=("${COMP_WORDS[@]:0:COMP_CWORD}")
	local opts
	if [[ $cur == -* ]]; then
		opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _lockstep_complete lockstep
`

const zshCompletion = `#compdef lockstep
# lockstep completion for zsh: eval "$(lockstep completion zsh)"
_lockstep() {
	local -a opts
	local cur=${words[-1]}
	if [[ $cur == -* ]]; then
		opts=("${(@f)$(${words[@]:0:#words[@]-1} $cur --generate-bash-completion 2>/dev/null)}")
	else
		opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
	fi
	if [[ -n ${opts[1]} ]]; then
		_describe 'values' opts
	else
		_files
	fi
}
compdef _lockstep lockstep
`

// completing reports a command line that asks for completions.
func completing(args []string) bool {
	return len(args) > 1 && args[len(args)-1] == "--generate-bash-completion"
}

// flagValues returns the values that may follow the last word of a
// command line being completed, when it is a flag made by choice
// (lockstep tail --format <TAB>).
func flagValues(app *cli.App, args []string) ([]string, bool) {
	if len(args) < 4 {
		return nil, false
	}
	cmd := app.Command(args[1])
	prev := args[len(args)-2]
	if cmd == nil || len(prev) < 2 || prev[0] != '-' || strings.Contains(prev, "=") {
		return nil, false
	}
	sf, ok := flagNamed(cmd.Flags, strings.TrimLeft(prev, "-")).(*cli.StringFlag)
	if !ok {
		return nil, false
	}
	values, ok := choices[sf]
	return values, ok
}

// longAlias is a fish -s option of more than one letter.
var longAlias = regexp.MustCompile(` -s ([[:alnum:]][[:alnum:]-]+)`)

var completionCommand = &cli.Command{
	Name:      "completion",
	Usage:     "print a shell completion script (bash, zsh or fish)",
	ArgsUsage: "bash|zsh|fish",
	Description: `Prints a script that completes lockstep's commands and flags in your shell.

Examples:
   eval "$(lockstep completion bash)"                               # in ~/.bashrc
   eval "$(lockstep completion zsh)"                                # in ~/.zshrc, after compinit
   lockstep completion fish > ~/.config/fish/completions/lockstep.fish`,
	OnUsageError: usageMessage,
	BashComplete: func(c *cli.Context) {
		if c.NArg() == 0 {
			fmt.Fprintln(c.App.Writer, "bash\nzsh\nfish")
		}
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return usagef("completion: want one shell, bash, zsh or fish, got %s (see lockstep completion --help)", thousands(c.NArg())+" "+plural(c.NArg(), "argument", "arguments"))
		}
		w := c.App.Writer
		switch shell := c.Args().First(); shell {
		case "bash":
			return writeString(w, bashCompletion)
		case "zsh":
			return writeString(w, zshCompletion)
		case "fish":
			s, err := c.App.ToFishCompletion()
			if err != nil {
				return fmt.Errorf("completion fish: %w", err)
			}
			// urfave/cli gives every alias fish's -s, which is for one
			// letter: --max-age is a long option too.
			return writeString(w, longAlias.ReplaceAllString(s, " -l $1"))
		default:
			return usagef("completion: no shell %q: want bash, zsh or fish", shell)
		}
	},
}

var manCommand = &cli.Command{
	Name:  "man",
	Usage: "print the manual page (roff; --markdown for Markdown)",
	Description: `Prints lockstep's manual page, made from the same definitions as --help.

Examples:
   lockstep man | man -l -
   lockstep man > /usr/local/share/man/man1/lockstep.1`,
	Flags:        []cli.Flag{&cli.BoolFlag{Name: "markdown", Usage: "print Markdown instead of roff"}},
	OnUsageError: usageMessage,
	Action: func(c *cli.Context) error {
		if c.NArg() > 0 {
			return usagef("man: takes no arguments, got %q (see lockstep man --help)", c.Args().First())
		}
		// The page is written in Markdown, where <FLAG> would be a tag:
		// the texts are escaped on a copy of the app.
		doc := *c.App
		doc.Description = markdownText.Replace(doc.Description)
		// urfave/cli's page gives a command its usage line and flags:
		// add its synopsis and its description, examples included.
		doc.Commands = nil
		for _, cmd := range c.App.Commands {
			page := *cmd
			if cmd.Description != "" {
				page.Usage = fmt.Sprintf("%s\n\n**lockstep %s** [OPTIONS] %s\n\n%s", cmd.Usage, cmd.Name, cmd.ArgsUsage, manDescription(cmd.Description))
			}
			doc.Commands = append(doc.Commands, &page)
		}
		var s string
		var err error
		if c.Bool("markdown") {
			s, err = doc.ToMarkdown()
		} else {
			s, err = doc.ToManWithSection(1) // a user command
		}
		if err != nil {
			return fmt.Errorf("man: %w", err)
		}
		if !c.Bool("markdown") {
			// The commands are subsections of COMMANDS, not sections.
			if i := strings.Index(s, "\n.SH COMMANDS\n"); i >= 0 {
				s = s[:i+1] + strings.ReplaceAll(s[i+1:], "\n.SH ", "\n.SS ")
			}
		}
		for _, sec := range manSections {
			if c.Bool("markdown") {
				s = strings.TrimRight(s, "\n") + "\n\n# " + sec.title + "\n\n" + sec.text + "\n"
			} else {
				s = strings.TrimRight(s, "\n") + "\n.SH " + sec.title + "\n" + strings.ReplaceAll(sec.text, "\n\n", "\n.PP\n") + "\n"
			}
		}
		return writeString(c.App.Writer, s)
	},
}

// manSections end the manual page: what urfave/cli's template leaves out.
var manSections = []struct{ title, text string }{
	{"ENVIRONMENT", `Every flag can come from the environment as LOCKSTEP_ and its name in capitals, - as _ (LOCKSTEP_SINCE_PARAM=since, LOCKSTEP_USER=alice:secret); a flag on the command line wins. --format is the exception: LOCKSTEP_TAIL_FORMAT, LOCKSTEP_DUMP_FORMAT and LOCKSTEP_CHECK_FORMAT. An error about such a value names the variable.

An --on-change command gets LOCKSTEP_INSERTS, LOCKSTEP_UPDATES, LOCKSTEP_DELETES, LOCKSTEP_RECORDS, LOCKSTEP_CURSOR, LOCKSTEP_SNAPSHOT and LOCKSTEP_ENDPOINT (credentials redacted), and not the LOCKSTEP_ variables that configure lockstep.`},
	{"EXIT STATUS", `0: done: sync caught up and wrote its files, tail --once caught up, sync --follow was stopped by SIGINT or SIGTERM and wrote what it had applied; check found no FAIL.

1: a failure: the endpoint refused or failed for longer than --retry-for, a bad record, a refused resync (--max-delete), a file or database error, a plain sync interrupted before it caught up (its files stay as they were); check found a FAIL.

2: a usage error: a flag, argument or environment value that no retry can make right. Nothing was done.`},
}

// manDescription is a command's description as Markdown: its text
// escaped, its examples (indented under "Examples:") a code block, left
// as they are typed.
func manDescription(d string) string {
	text, examples, ok := strings.Cut(d, "Examples:\n")
	if !ok {
		return markdownText.Replace(d)
	}
	lines := strings.Split(examples, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "   ") {
			lines[i] = " " + l
		} else {
			lines[i] = markdownText.Replace(l)
		}
	}
	return markdownText.Replace(text) + "Examples:\n\n" + strings.Join(lines, "\n")
}

// markdownText escapes what Markdown would take for markup in plain text.
var markdownText = strings.NewReplacer(`<`, `\<`, `>`, `\>`)

func writeString(w io.Writer, s string) error {
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	_, err := io.WriteString(w, s)
	return stdoutError(err)
}
