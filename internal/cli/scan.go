package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/redact"
	"github.com/tocsin/tocsin/internal/report"
	"github.com/tocsin/tocsin/internal/scan"
	"github.com/tocsin/tocsin/internal/target"
)

const scanLong = `Scans the API that a config file describes. The file names the origins tocsin may contact, the
identities and how to get, revoke, downgrade and restore their tokens, the probes (request templates)
and which checks run with them; or, with openapi: (or har:), the API's operations, from which probes
are made and checks pick theirs. Without -c, tocsin.yaml in the working directory is used.
examples/tocsin.yaml explains every field, and docs/tocsin.schema.json lets an editor complete and
check them; ` + "`tocsin validate`" + ` checks a config without changing anything on the API.

Each check proves a flaw from outside and measures it: toctou/revoked-token-accepted revokes a fresh
token and replays a request until the API refuses it; toctou/scope-downgrade-ignored removes a scope
and replays a privileged request until refused; toctou/inflight-revocation revokes a token while a
destructive action it authorized is in flight and reads the resource right after, as another identity;
race/limit-overrun sends synchronised copies of a one-shot action; auth/missing sends each probe with no
credentials, a malformed token and a token no issuer made; the jwt/* checks forge tokens from the
identity's JWT (alg none, a changed payload, a cracked HMAC secret, the issuer's public key as an HMAC
secret, a key in the jwk header, an old exp) and send them where the real token is accepted and no token
refused; the authz/* checks, from probes written for them, try as one identity what only the check's
owner may do (its objects, its privileged operations) or properties only the API may set, and read the
effect back. Findings carry the measured window, what was sent in place of the token or the proof
between identities, a timeline and remediation. ` + "`tocsin checks`" + ` lists them.

Exit status (docs/ci.md):
  0  the scan is complete, every check decided, and no finding is at or above --fail-on
  1  a finding is at or above --fail-on (proven, so it wins over everything below)
  2  a usage, config or run error; or the scan is incomplete (a check errored or could not run, an
     identity could not be restored, the scan was interrupted) or a check was inconclusive: nothing
     that was not tested is ever reported as a pass`

const scanExample = `  tocsin scan                                   # tocsin.yaml in the working directory
  tocsin scan -c api.yaml --format json -o report.json --fail-on high
  tocsin scan -c api.yaml --check toctou/revoked-token-accepted -v`

// defaultConfig is the config file a command uses when -c is not given.
const defaultConfig = "tocsin.yaml"

// configFlags are how scan and validate find and read the config.
type configFlags struct {
	path    string
	verbose bool
}

func (c *configFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&c.path, "config", "c", "", "the config `file` (YAML); default: "+defaultConfig+" in the working directory")
	cmd.Flags().BoolVarP(&c.verbose, "verbose", "v", false, "log each request and its status (redacted) on standard error")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
}

// resolve returns the config file to read: -c, else tocsin.yaml in the working directory.
func (c *configFlags) resolve() (string, error) {
	if c.path != "" {
		return c.path, nil
	}
	if st, err := os.Stat(defaultConfig); err == nil && !st.IsDir() {
		return defaultConfig, nil
	}
	return "", errors.New("no config file: -c was not given and there is no " + defaultConfig + " in the working directory")
}

const noConfigHint = "pass one with -c FILE, or create " + defaultConfig + " here; examples/tocsin.yaml shows every field, and `tocsin lab --write-config lab.yaml` writes a complete one"

func newScanCmd(s *stdio) *cobra.Command {
	var cf configFlags
	var o outputFlags
	var only []string
	var sourceRoot, wordlist string
	cmd := &cobra.Command{
		Use:     "scan [-c FILE] [flags]",
		Short:   "Scan an API described by a config file",
		Long:    scanLong,
		Example: scanExample,
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			path, err := cf.resolve()
			if err != nil {
				return failed(s, err, noConfigHint)
			}
			if err := o.validate(); err != nil {
				return failed(s, err)
			}
			if wordlist != "" {
				// Read when the check runs; a file that cannot be opened is a usage error now.
				f, err := os.Open(wordlist)
				if err != nil {
					return failed(s, fmt.Errorf("--jwt-wordlist: %w", err))
				}
				f.Close()
			}
			cfg, err := config.Load(path)
			if err != nil {
				return failed(s, err)
			}
			locate, err := locator(cfg, path, sourceRoot)
			if err != nil {
				return failed(s, err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			r, err := scanConfig(ctx, s, cfg, scanRun{name: path, only: only, out: &o, verbose: cf.verbose, locate: locate, jwtWordlist: wordlist})
			if r == nil {
				return failed(s, err)
			}
			if werr := o.emit(s, r); werr != nil {
				return failed(s, werr)
			}
			if err != nil {
				// An interrupted scan still has its report: it is incomplete, and what it proved stands.
				fail(s.err, err)
			}
			return exitCode(o.exitCode(r))
		},
	}
	cf.register(cmd)
	cmd.Flags().StringSliceVar(&only, "check", nil, "run only this check `ID` (repeatable, or comma-separated); it must be in the config's checks")
	cmd.Flags().StringVar(&sourceRoot, "source-root", "", "the repository root `folder` that finding locations (SARIF) are relative to; default: the git work tree holding the config, else the working directory")
	cmd.Flags().StringVar(&wordlist, "jwt-wordlist", "", "a `file` of candidate HMAC secrets, one per line, that jwt/weak-hmac-secret tries offline after its built-in list")
	_ = cmd.MarkFlagFilename("jwt-wordlist")
	_ = cmd.RegisterFlagCompletionFunc("check", completeValues(check.IDs()...))
	_ = cmd.MarkFlagDirname("source-root")
	o.register(cmd, "low")
	return cmd
}

// exitCode ends a command with code, or successfully for 0.
func exitCode(code int) error {
	if code == ExitOK {
		return nil
	}
	return exitError(code)
}

// scanRun is what one scan needs beyond its config.
type scanRun struct {
	name    string   // the target's label in the report
	only    []string // --check
	out     *outputFlags
	verbose bool
	prefix  string // before each progress line: the demo scans two labs at once
	locate  func(probe string) *finding.Location
	// jwtWordlist is --jwt-wordlist.
	jwtWordlist string
}

// scanConfig builds the target from cfg and scans it. On interruption it returns the partial report
// along with the error, so that what was found is not lost.
func scanConfig(ctx context.Context, s *stdio, cfg *config.Config, run scanRun) (*report.Report, error) {
	red := &redact.Redactor{}
	t, err := target.Build(ctx, cfg, red)
	if err != nil {
		return nil, red.Error(err)
	}
	for _, id := range run.only {
		if check.ByID(id) == nil {
			return nil, fmt.Errorf("--check: unknown check %q (hint: `tocsin checks` lists them)", id)
		}
	}
	p := newProgress(s, run.out.quiet)
	defer p.done()
	if run.verbose {
		t.Client.SetLog(requestLogger(p, run.prefix, red))
	}
	// Every line the scan prints passes through the redactor, whatever check wrote it.
	progress, alert := p.printer(run.prefix), p.alert(run.prefix)
	r, err := scan.Run(ctx, t, scan.Options{
		Name: run.name, Version: version(), Only: run.only, Locate: run.locate, JWTWordlist: run.jwtWordlist,
		Progress: func(msg string) { progress(red.String(msg)) },
		Alert:    func(msg string) { alert(red.String(msg)) },
	})
	return r, red.Error(err)
}

// requestLogger writes each request on standard error for -v, secrets replaced by their labels.
func requestLogger(p *progress, prefix string, red *redact.Redactor) func(client.Logged) {
	return func(l client.Logged) {
		if l.Batch > 0 {
			p.line(fmt.Sprintf("%srequest: %d synchronised requests for the race engine (their answers are in the report)", prefix, l.Batch))
			return
		}
		method := l.Method
		if method == "" {
			method = "GET"
		}
		what := fmt.Sprintf("%d", l.Status)
		switch {
		case l.Err != nil && l.Took == 0:
			what = "not sent: " + l.Err.Error()
		case l.Err != nil:
			what = "failed: " + l.Err.Error()
		}
		line := fmt.Sprintf("%srequest: %s %s -> %s", prefix, method, l.URL, what)
		if l.Took > 0 {
			line += fmt.Sprintf(" (%.1f ms)", float64(l.Took.Microseconds())/1000)
		}
		p.line(red.String(line))
	}
}

// locator places findings at their probe's key in the config file, as a path relative to the
// repository root (docs/ci.md, "Where findings point"): --source-root when given, else the git
// work tree holding the config, else the working directory.
func locator(cfg *config.Config, path, sourceRoot string) (func(string) *finding.Location, error) {
	file, err := relativeToRoot(path, sourceRoot)
	if err != nil {
		return nil, err
	}
	return func(probe string) *finding.Location {
		k, ok := cfg.Key("probes." + probe)
		for _, surface := range []string{"openapi", "har"} {
			if !ok {
				// A probe made from an operation points at the document it came from.
				k, ok = cfg.Key(surface)
			}
		}
		if !ok {
			return nil
		}
		return &finding.Location{File: file, Line: k.Line, Column: k.Column, EndColumn: k.EndColumn}
	}, nil
}

func relativeToRoot(path, sourceRoot string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	root := sourceRoot
	if root == "" {
		root = gitWorkTree(filepath.Dir(abs))
	}
	if root == "" {
		if root, err = os.Getwd(); err != nil {
			return "", err
		}
	}
	if root, err = filepath.Abs(root); err != nil {
		return "", err
	}
	if sourceRoot != "" {
		if st, err := os.Stat(root); err != nil || !st.IsDir() {
			return "", fmt.Errorf("--source-root %s: not a folder", sourceRoot)
		}
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		// Outside the root: the path as given is the best a reader can do with it.
		return filepath.ToSlash(path), nil
	}
	return filepath.ToSlash(rel), nil
}

// gitWorkTree returns the nearest folder at or above dir that holds a .git (a folder, or the file
// of a linked work tree or submodule), or "".
func gitWorkTree(dir string) string {
	for {
		if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
