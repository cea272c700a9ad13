// Package cli implements tocsin's command line: one file per subcommand, flags grouped per command,
// errors printed as "error:" and "hint:" lines, and the exit codes CI relies on.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/tocsin/tocsin/internal/config"
)

// Exit codes.
const (
	ExitOK       = 0 // no finding at or above --fail-on
	ExitFindings = 1 // findings at or above --fail-on
	ExitUsage    = 2 // usage, config or run error
)

// Version is set at build time with -ldflags "-X github.com/tocsin/tocsin/internal/cli.Version=v1.2.3";
// otherwise the module version or "dev".
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

type command struct {
	name    string
	summary string
	run     func(io *stdio, args []string) int
}

type stdio struct {
	in       io.Reader
	out, err io.Writer
}

func commands() []command {
	return []command{
		{"scan", "scan an API described by a config file", runScan},
		{"demo", "run the embedded lab (vulnerable and fixed) and scan both", runDemo},
		{"lab", "serve the lab for manual use", runLab},
		{"checks", "list the checks tocsin runs", runChecks},
		{"report", "convert a saved JSON report to text, sarif, junit or html", runReport},
		{"version", "print tocsin's version", func(s *stdio, _ []string) int { fmt.Fprintln(s.out, "tocsin", version()); return ExitOK }},
	}
}

const intro = `tocsin finds time-of-check/time-of-use flaws in HTTP APIs that use bearer tokens: it revokes a
token or removes a scope, then proves and measures how long the API still lets the old one through.

Usage:
  tocsin <command> [flags]

Commands:
`

// Main runs the command line and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := &stdio{in: stdin, out: stdout, err: stderr}
	if len(args) == 0 {
		usage(stderr)
		return ExitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			return Main([]string{args[1], "--help"}, stdin, stdout, stderr)
		}
		usage(stdout)
		return ExitOK
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(s, args[1:])
		}
	}
	fail(stderr, fmt.Errorf("unknown command %q", name), "run `tocsin help` for the list of commands")
	return ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, intro)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun `tocsin <command> --help` for a command's flags.\n")
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

// newFlags makes a flag set that prints its usage to stderr and reports errors instead of exiting.
func newFlags(s *stdio, name, usageLine, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(s.err)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s\n\n%s\n\nFlags:\n", usageLine, strings.TrimSpace(description))
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; it returns a non-negative exit code when the command should stop.
func parseFlags(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "error: unexpected argument %q\nhint: flags come before nothing else; run `tocsin %s --help`\n", fs.Arg(0), fs.Name())
		return ExitUsage
	}
	return -1
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
