// Package cli implements tocsin's command line on cobra: one file per subcommand, flags grouped per
// command, errors printed as "error:" and "hint:" lines, and the exit codes CI relies on.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tocsin/tocsin/internal/config"
)

// Exit codes (docs/ci.md).
const (
	ExitOK       = 0 // no finding at or above --fail-on
	ExitFindings = 1 // findings at or above --fail-on
	ExitUsage    = 2 // usage, config or run error; or an incomplete or undecided scan
)

type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// exitError ends a command with an exit code; whatever had to be said was said already.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a mistake on the command line: printed with a hint to the command's help.
type usageError struct {
	err error
	cmd *cobra.Command
}

func (e *usageError) Error() string { return e.err.Error() }

// failed prints err and its hints and returns the exit status for a usage, config or run error.
func failed(s *stdio, err error, hints ...string) error {
	fail(s.err, err, hints...)
	return exitError(ExitUsage)
}

const rootLong = `tocsin finds time-of-check/time-of-use flaws in HTTP APIs that use bearer tokens: it revokes a
token or removes a scope during the scan, replays what the old state allowed, and proves from
outside how long the API still lets it through, with a timeline as evidence.

Start with ` + "`tocsin demo`" + ` (scans a built-in vulnerable API and its fixed twin), then write a
tocsin.yaml for your API (tocsin init --openapi spec.yaml writes one from its OpenAPI document;
tocsin lab --write-config lab.yaml writes a complete one to start from),
check it with ` + "`tocsin validate`" + ` and scan it with ` + "`tocsin scan`" + `.`

// Main runs the command line and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := &stdio{in: stdin, out: stdout, err: stderr}
	root := newRoot(s)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	_, err := root.ExecuteC()
	var code exitError
	var usage *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &usage):
		fail(stderr, usage.err, "run `"+usage.cmd.CommandPath()+" --help` for its flags")
	default:
		// Cobra's own errors (a missing argument to a flag, an unknown subcommand of help).
		fail(stderr, err, "run `tocsin --help` for the commands")
	}
	return ExitUsage
}

func newRoot(s *stdio) *cobra.Command {
	root := &cobra.Command{
		Use:           "tocsin",
		Short:         "Prove time-of-check/time-of-use flaws in bearer-token HTTP APIs",
		Long:          rootLong,
		Version:       versionLine(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		// With no command, the usage goes to standard error and the exit status says it was wrong.
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				cmd.SetOut(s.err)
				_ = cmd.Usage()
				return exitError(ExitUsage)
			}
			hint := "run `tocsin --help` for the commands"
			if sugg := cmd.SuggestionsFor(args[0]); len(sugg) > 0 {
				hint = "did you mean `tocsin " + sugg[0] + "`?"
			}
			return failed(s, fmt.Errorf("unknown command %q", args[0]), hint)
		},
	}
	root.SuggestionsMinimumDistance = 2
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return &usageError{err: err, cmd: cmd} })
	root.AddCommand(
		newScanCmd(s),
		newValidateCmd(s),
		newInitCmd(s),
		newDemoCmd(s),
		newLabCmd(s),
		newChecksCmd(s),
		newReportCmd(s),
		newVersionCmd(s),
	)
	return root
}

// noArgs refuses positional arguments with a usage error: every input is a flag.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{err: fmt.Errorf("unexpected argument %q (every input is a flag)", args[0]), cmd: cmd}
	}
	return nil
}

// fail prints an error and its hints the way every tocsin command does.
func fail(w io.Writer, err error, hints ...string) {
	// A config with several problems prints them all, one per line, each with its own hint.
	var cerr *config.Error
	if errors.As(err, &cerr) && len(cerr.Problems) > 1 {
		fmt.Fprintf(w, "error: the config has %d problems:\n", len(cerr.Problems))
		for _, p := range cerr.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
	} else {
		fmt.Fprintf(w, "error: %s\n", err)
	}
	for _, h := range hints {
		fmt.Fprintf(w, "hint: %s\n", h)
	}
}

// isTerminal reports whether w is a character device (a terminal), for colour and live progress.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// completeValues offers fixed values for a flag in shell completion.
func completeValues(values ...string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}
