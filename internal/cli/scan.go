package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/redact"
	"github.com/tocsin/tocsin/internal/report"
	"github.com/tocsin/tocsin/internal/scan"
	"github.com/tocsin/tocsin/internal/target"
)

const scanHelp = `Scans the API that a config file describes. The file names the origins tocsin may contact, the
identities and how to get, revoke, downgrade and restore their tokens, the probes (request templates)
and which checks run with them. A commented example of every field: examples/tocsin.yaml.

Each check proves a flaw from outside and measures it: toctou/revoked-token-accepted revokes a fresh
token and replays a request until the API refuses it; toctou/scope-downgrade-ignored removes a scope
and replays a privileged request until refused; toctou/inflight-revocation revokes a token while a
destructive action it authorized is in flight and reads the resource right after, as another identity;
race/limit-overrun sends synchronised copies of a one-shot action. Findings carry the measured window,
a timeline and remediation. Run ` + "`tocsin checks`" + ` for the list.

Exit status (docs/ci.md):
  0  the scan is complete, every check decided, and no finding is at or above --fail-on
  1  a finding is at or above --fail-on (proven, so it wins over everything below)
  2  a usage, config or run error; or the scan is incomplete (a check errored or could not run, an
     identity could not be restored, the scan was interrupted) or a check was inconclusive: nothing
     that was not tested is ever reported as a pass

Examples:
  tocsin scan -c tocsin.yaml
  tocsin scan -c tocsin.yaml --format json -o report.json --fail-on high`

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, strings.Split(v, ",")...); return nil }

func runScan(s *stdio, args []string) int {
	fs := newFlags(s, "scan", "tocsin scan -c FILE [flags]", scanHelp)
	var cfgPath string
	var only multiFlag
	fs.StringVar(&cfgPath, "c", "", "the config `file` (YAML); required")
	fs.StringVar(&cfgPath, "config", "", "same as -c")
	fs.Var(&only, "check", "run only this check `ID` (repeatable, or comma-separated); it must be in the config's checks")
	var o outputFlags
	o.register(fs, "low")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if cfgPath == "" {
		fail(s.err, errors.New("no config file"), "pass one with -c tocsin.yaml; examples/tocsin.yaml shows every field")
		return ExitUsage
	}
	if err := o.validate(); err != nil {
		fail(s.err, err)
		return ExitUsage
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fail(s.err, err)
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := scanConfig(ctx, s, cfg, cfgPath, only, &o, "")
	if r == nil {
		fail(s.err, err)
		return ExitUsage
	}
	if werr := o.emit(s, r); werr != nil {
		fail(s.err, werr)
		return ExitUsage
	}
	if err != nil {
		// An interrupted scan still has its report: it is incomplete, and what it proved stands.
		fail(s.err, err)
	}
	return o.exitCode(r)
}

// scanConfig builds the target from cfg and scans it. On interruption it returns the partial report
// along with the error, so that what was found is not lost.
func scanConfig(ctx context.Context, s *stdio, cfg *config.Config, name string, only []string, o *outputFlags, prefix string) (*report.Report, error) {
	red := &redact.Redactor{}
	t, err := target.Build(ctx, cfg, red)
	if err != nil {
		return nil, red.Error(err)
	}
	for _, id := range only {
		if check.ByID(id) == nil {
			return nil, fmt.Errorf("--check: unknown check %q (hint: `tocsin checks` lists them)", id)
		}
	}
	p := newProgress(s, o.quiet)
	defer p.done()
	r, err := scan.Run(ctx, t, scan.Options{Name: name, Version: version(), Only: only, Progress: p.printer(prefix), Alert: p.alert(prefix)})
	return r, red.Error(err)
}
