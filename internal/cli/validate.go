package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
	"github.com/tocsin/tocsin/internal/redact"
	"github.com/tocsin/tocsin/internal/target"
)

const validateLong = `Checks a config the way a scan would start, without changing anything on the API: it parses the
file and resolves its ${VARS}, checks that every URL is on an allowed origin and that each origin
accepts connections, fetches one token for each identity, and prints what each check would do and
about how many requests it may send. It never revokes a token, downgrades or restores an identity,
or sends a probe.

Exit status: 0 when the scan could start as configured; 2 when the config has a problem, an origin
does not accept connections or a token cannot be had.`

func newValidateCmd(s *stdio) *cobra.Command {
	var cf configFlags
	cmd := &cobra.Command{
		Use:     "validate [-c FILE] [-v]",
		Short:   "Check a config and its tokens without changing anything on the API",
		Long:    validateLong,
		Example: "  tocsin validate\n  tocsin validate -c api.yaml -v",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			path, err := cf.resolve()
			if err != nil {
				return failed(s, err, noConfigHint)
			}
			cfg, err := config.Load(path)
			if err != nil {
				return failed(s, err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runValidate(ctx, s, cfg, path, cf.verbose)
		},
	}
	cf.register(cmd)
	return cmd
}

func runValidate(ctx context.Context, s *stdio, cfg *config.Config, path string, verbose bool) error {
	red := &redact.Redactor{}
	t, err := target.Build(ctx, cfg, red)
	if err != nil {
		return failed(s, red.Error(err))
	}
	p := newProgress(s, true)
	if verbose {
		t.Client.SetLog(requestLogger(p, "", red))
	}
	w := s.out
	ok := true
	fmt.Fprintf(w, "config %s: parsed; every ${VAR} is set and every URL is on an allowed origin\n", path)

	fmt.Fprintln(w, "\norigins (a connection is opened and closed; nothing is sent):")
	for _, origin := range t.Origins {
		took, err := t.Client.Reach(ctx, origin)
		if err != nil {
			ok = false
			fmt.Fprintf(w, "  %s: not reachable: %v\n", origin, err)
			continue
		}
		fmt.Fprintf(w, "  %s: reachable (connected in %.1f ms)\n", origin, float64(took.Microseconds())/1000)
	}

	fmt.Fprintln(w, "\nidentities (one token each):")
	for _, name := range cfg.IdentityNames() {
		id := t.Identities[name]
		tok, err := id.Source.Token(ctx)
		if err != nil {
			ok = false
			fmt.Fprintf(w, "  %s: %s token: failed: %v\n", name, id.Source.Kind(), red.Error(err))
			continue
		}
		detail := red.Label(tok.Value)
		if !tok.Expiry.IsZero() {
			detail += fmt.Sprintf(", expires in %s", time.Until(tok.Expiry).Round(time.Second))
		}
		if id.Source.Kind() == "static" {
			detail += "; a static token is not checked against the API here"
		}
		fmt.Fprintf(w, "  %s: %s token: ok (%s)\n", name, id.Source.Kind(), detail)
	}

	if t.Surface != nil {
		fmt.Fprintf(w, "\nsurface (%s):\n", strings.Join(t.Surface.Sources, ", "))
		made := 0
		for _, op := range t.Surface.Ops {
			if op.Probe != "" && !op.HandWritten {
				made++
			}
		}
		fmt.Fprintf(w, "  %d operations; probes made from %d of them (the scan report's surface section says why not the others)\n", len(t.Surface.Ops), made)
		// Which operations each identity is tried on follows from its scheme: say how it was known.
		for _, name := range t.Surface.IdentityOrder {
			if sc := t.Surface.Schemes[name]; sc != "" {
				fmt.Fprintf(w, "  %s answers security scheme %s (%s)\n", name, sc, t.Surface.SchemeWhy[name])
			} else if len(t.Surface.Docs) > 0 && len(t.Surface.Docs[0].Schemes) > 0 {
				fmt.Fprintf(w, "  %s answers no known security scheme: it may be tried on any operation (hint: identities.%s.scheme names one)\n", name, name)
			}
		}
		if err := check.Choose(t); err != nil {
			ok = false
			fmt.Fprintf(w, "  %v\n", err)
		}
		for _, id := range check.IDs() {
			if why := t.Surface.Unselected[id]; why != "" {
				fmt.Fprintf(w, "  %s: no operation fits: %s\n", id, why)
			}
		}
	}
	fmt.Fprintln(w, "\nchecks, in the order a scan runs them:")
	total := 0
	for _, id := range t.CheckOrder {
		total += describeCheck(w, t, id, cfg.Limits.MaxWindow)
	}
	fmt.Fprintf(w, "\nA scan may send about %d requests in all; limits.request_budget allows %d.\n", total, cfg.Limits.RequestBudget)
	if total > cfg.Limits.RequestBudget {
		fmt.Fprintf(w, "warning: the budget may run out before every check is done (raise limits.request_budget to %d or more)\n", total)
	}
	// A login that registers an account created one: remove it as a scan would.
	ledger := &check.Ledger{}
	check.TeardownIdentities(ctx, &check.Env{Target: t, Ledger: ledger, Alert: func(string) {}})
	if left := ledger.Leftovers(); len(left) > 0 {
		ok = false
		for _, l := range left {
			fmt.Fprintf(w, "left on the API: %s: %s\n", l.What, l.Reason)
		}
	}
	fmt.Fprintf(w, "Nothing was left changed on the API: %d request(s) were sent, for tokens only (and to remove what minting them created).\n", t.Client.Sent())
	if !ok {
		fmt.Fprintln(s.err, "error: the scan could not start as configured (see above)")
		return exitError(ExitUsage)
	}
	return nil
}

// describeCheck prints what a check would do with its plan and returns about how many requests it
// may send at most. The figures follow the checks' schedules (internal/check): they are estimates,
// not limits.
func describeCheck(w io.Writer, t *target.Target, id string, maxWindow time.Duration) int {
	plan := t.Checks[id]
	ident := t.Identities[plan.Identity]
	title := id
	if c := check.ByID(id); c != nil {
		title += ": " + c.Meta().Title
	}
	fmt.Fprintf(w, "  %s\n", title)
	var probes []string
	for _, name := range plan.Probes {
		if p := t.Probes[name]; p != nil {
			as := ""
			if plan.PerProbe != nil {
				as = " as " + plan.IdentityFor(name) // chosen per operation: each probe says whose
			}
			probes = append(probes, fmt.Sprintf("%s%s (%s)", name, as, probeSteps(p)))
		}
	}
	if plan.PerProbe != nil {
		fmt.Fprintf(w, "    each operation as the identity of its security scheme: %s\n", strings.Join(probes, "; "))
	} else {
		fmt.Fprintf(w, "    as %s, with %s\n", plan.Identity, strings.Join(probes, "; "))
	}
	hook := func(h identity.Hook) string {
		if h == nil {
			return "none"
		}
		return h.Kind() + " hook"
	}
	n := len(plan.Probes)
	var does string
	var perProbe int
	switch id {
	case config.CheckRevokedTokenAccepted:
		does = fmt.Sprintf("mints fresh tokens for %s, makes each probe accepted, revokes the token (%s) and replays the probe until the API refuses it, for up to %s",
			plan.Identity, hook(ident.Revoke), maxWindow)
		perProbe = check.StalenessRequests(maxWindow, false, 4)
	case config.CheckScopeDowngrade:
		does = fmt.Sprintf("downgrades %s (%s), replays each probe until the API refuses it, for up to %s, then restores %s (%s)",
			plan.Identity, hook(ident.Downgrade), maxWindow, plan.Identity, hook(ident.Restore))
		perProbe = check.StalenessRequests(maxWindow, true, 5)
	case config.CheckInflightRevocation:
		does = fmt.Sprintf("creates a resource with each probe's setup, sends the action and revokes %s's token (%s) while it is in flight, then reads the resource as %s; up to 20 attempts",
			plan.Identity, hook(ident.Revoke), plan.Verifier)
		perProbe = 20 * 7
	case config.CheckLimitOverrun:
		does = "creates a fresh resource with each probe's setup and sends the action 20 times one after another, then on another fresh resource 20 copies released together"
		perProbe = 2*(20+1) + 4
	case config.CheckAuthMissing:
		does = fmt.Sprintf("sends each probe with a token of %s (it must be accepted), then with no credentials, a malformed bearer token and a token no issuer made; a destructive probe gets a fresh resource from its setup for each", plan.Identity)
		perProbe = 4 + 4*2
	case config.CheckJWTWeakSecret:
		does = fmt.Sprintf("cracks the HMAC secret of %s's token offline (the built-in list, then --jwt-wordlist); only a secret found is tried on the probes", plan.Identity)
		perProbe = 5
	case config.CheckJWTExpired:
		does = fmt.Sprintf("sends %s's token again after its exp (waiting up to %s), or a token forged with an old exp where a check before it proved forging possible", plan.Identity, maxWindow)
		perProbe = 6
	case config.CheckJWTNone, config.CheckJWTSignature, config.CheckJWTConfusion, config.CheckJWTEmbeddedKey:
		does = fmt.Sprintf("forges tokens from %s's JWT and sends them to each probe, after checking that the real token is accepted there and no token refused", plan.Identity)
		if plan.Verifier != "" {
			does += fmt.Sprintf("; one that works is sent again claiming %s's subject", plan.Verifier)
		}
		perProbe = 12
	case config.CheckBOLA:
		does = fmt.Sprintf("has %s create (or list) an object with each probe's setup, learns what %s may see from its own list, then sends the probe on %s's object as %s (and on an object of %s's own, as a control); writes are read back as %s",
			plan.Owner, plan.Identity, plan.Owner, plan.Identity, plan.Identity, plan.Owner)
		perProbe = 20
	case config.CheckBFLA:
		does = fmt.Sprintf("sends each privileged probe as %s, who holds the privilege, then as %s, who lacks it; writes are read back as %s",
			plan.Owner, plan.Identity, plan.Owner)
		perProbe = 20
	case config.CheckMassAssignment:
		does = fmt.Sprintf("sends each probe as %s as configured, then with extra properties (role, is_admin, admin, scopes, balance and the probe's assign; one by one if refused), reading the object or identity back after each", plan.Identity)
		perProbe = 24
	default:
		does = "runs with the identity and probes above"
		perProbe = 50
	}
	fmt.Fprintf(w, "    %s\n", does)
	fmt.Fprintf(w, "    about %d requests at most (%d per probe)\n", perProbe*n, perProbe)
	return perProbe * n
}

// probeSteps says what one use of a probe sends: its setup, itself, its verify read, its teardown,
// each step with the identity it runs as when that is not the default.
func probeSteps(p *probe.Probe) string {
	var steps []string
	chain := func(kind string, chain []*probe.Probe) {
		for _, q := range chain {
			s := kind + " " + q.Endpoint()
			if q.As != "" {
				s += " as " + q.As
			}
			steps = append(steps, s)
		}
	}
	chain("setup", p.Setup)
	steps = append(steps, p.Endpoint())
	chain("verify", p.Verify)
	chain("teardown", p.Teardown)
	return strings.Join(steps, ", then ")
}
