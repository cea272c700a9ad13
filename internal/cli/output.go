package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/report"
)

// outputFlags are shared by the commands that produce reports.
type outputFlags struct {
	format string
	out    string
	failOn string
	quiet  bool
}

// failOnValues are what --fail-on takes, mildest first.
var failOnValues = []string{"info", "low", "medium", "high", "critical", "none"}

func (o *outputFlags) register(cmd *cobra.Command, defaultFailOn string) {
	fs := cmd.Flags()
	fs.StringVarP(&o.format, "format", "f", "text", "report `format`: "+strings.Join(report.Formats, ", "))
	fs.StringVarP(&o.out, "output", "o", "", "write the report to `file` (the text summary still goes to standard output)")
	fs.StringVar(&o.failOn, "fail-on", defaultFailOn, "exit 1 when a finding is at or above this `severity`: "+strings.Join(failOnValues, ", ")+" (none: findings never fail)")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no progress lines on standard error (warnings that need action still print)")
	_ = cmd.RegisterFlagCompletionFunc("format", completeValues(report.Formats...))
	_ = cmd.RegisterFlagCompletionFunc("fail-on", completeValues(failOnValues...))
}

// threshold returns the --fail-on severity; ok is false for "none".
func (o *outputFlags) threshold() (sev finding.Severity, ok bool, err error) {
	if o.failOn == "none" {
		return 0, false, nil
	}
	sev, err = finding.ParseSeverity(o.failOn)
	if err != nil {
		return 0, false, fmt.Errorf("--fail-on: unknown severity %q (want one of %s)", o.failOn, strings.Join(failOnValues, ", "))
	}
	return sev, true, nil
}

// validate checks the flags, and that -o can be written, before any work starts: a scan that runs
// for minutes and then cannot save its report has lost its results.
func (o *outputFlags) validate() error {
	if !slices.Contains(report.Formats, o.format) {
		return fmt.Errorf("--format: unknown format %q (want one of %s)", o.format, strings.Join(report.Formats, ", "))
	}
	if _, _, err := o.threshold(); err != nil {
		return err
	}
	if o.out != "" {
		return checkWritable(o.out)
	}
	return nil
}

// checkWritable makes sure a report can be written to path: its folder exists and takes a file, and
// path is not a folder. It leaves nothing behind.
func checkWritable(path string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("-o %s: is a directory (hint: name a file, e.g. %s)", path, filepath.Join(path, "report.json"))
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".check*")
	if err != nil {
		return fmt.Errorf("-o %s: cannot write there: %w (hint: create the folder or choose another path; nothing was scanned)", path, errors.Unwrap(err))
	}
	tmp.Close()
	return os.Remove(tmp.Name())
}

// emit writes the reports: in the chosen format to -o, or to standard output when -o is not set. With
// -o, standard output still gets the text summary, so a terminal or CI log shows what was found.
func (o *outputFlags) emit(s *stdio, reports ...*report.Report) error {
	color := isTerminal(s.out) && os.Getenv("NO_COLOR") == ""
	if o.out == "" {
		return report.Write(s.out, o.format, report.Options{Color: color && o.format == "text"}, reports...)
	}
	var buf bytes.Buffer
	if err := report.Write(&buf, o.format, report.Options{}, reports...); err != nil {
		return err
	}
	if err := writeFileAtomic(o.out, buf.Bytes()); err != nil {
		// The results must not be lost with the file: show them on standard output, then fail.
		_ = report.Write(s.out, "text", report.Options{Color: color}, reports...)
		return err
	}
	if err := report.Write(s.out, "text", report.Options{Color: color}, reports...); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "\n%s report written to %s\n", o.format, o.out)
	return nil
}

// exitCode decides the exit status (docs/ci.md): findings at or above --fail-on win (1), because
// they are proven whatever else happened; otherwise a scan that is incomplete, or has an
// inconclusive check, is not a pass (2); otherwise 0.
func (o *outputFlags) exitCode(reports ...*report.Report) int {
	sev, ok, _ := o.threshold()
	for _, r := range reports {
		if ok && r.AtOrAbove(sev) > 0 {
			return ExitFindings
		}
	}
	for _, r := range reports {
		if !r.Graded() {
			return ExitUsage
		}
	}
	return ExitOK
}

// writeFileAtomic writes through a temporary file and a rename, so an interrupted run never leaves a
// half-written report where a complete one was expected.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}

// progress prints status lines on standard error: one live, rewritten line on a terminal, plain lines
// otherwise (CI logs), so that a long window measurement never looks like a hang. In a log, a line
// that says nothing new (the same as the one before but for its attempt or pass counter) is left
// out: each line there tells something.
type progress struct {
	mu    sync.Mutex
	s     *stdio
	tty   bool
	quiet bool
	live  bool
	last  map[string]string // prefix -> the last plain line, counters masked
}

func newProgress(s *stdio, quiet bool) *progress {
	return &progress{s: s, tty: isTerminal(s.err), quiet: quiet, last: map[string]string{}}
}

// counters are the parts of a progress line that change without saying anything new.
var counters = regexp.MustCompile(`\b(attempt|pass) \d+\b|\(\d+ replays?\)`)

func (p *progress) printer(prefix string) func(string) {
	return func(msg string) {
		if p.quiet {
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.tty {
			fmt.Fprintf(p.s.err, "\r\x1b[K%s%s", prefix, msg)
			p.live = true
			return
		}
		shape := counters.ReplaceAllString(msg, "#")
		if p.last[prefix] == shape {
			return
		}
		p.last[prefix] = shape
		fmt.Fprintf(p.s.err, "%s%s\n", prefix, msg)
	}
}

// alert prints msg even with -q: it is something the user must act on.
func (p *progress) alert(prefix string) func(string) {
	return func(msg string) { p.line(prefix + "warning: " + msg) }
}

// line prints a whole line, even with -q, clearing the live line first.
func (p *progress) line(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		fmt.Fprint(p.s.err, "\r\x1b[K")
		p.live = false
	}
	fmt.Fprintln(p.s.err, msg)
}

// done clears the live line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		fmt.Fprint(p.s.err, "\r\x1b[K")
		p.live = false
	}
}
