package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tocsin/tocsin/internal/lab"
	"github.com/tocsin/tocsin/internal/report"
)

const demoLong = `Starts the embedded lab twice on 127.0.0.1 ephemeral ports, an identity provider with the resource
API in its vulnerable flavour and in its fixed flavour (built on tocsin's guard library), scans both
with the same config, and prints the findings. The vulnerable API caches token introspection and
permissions (--ttl, --permission-ttl), leaves a report without authentication, verifies JWTs the
ways real code gets wrong and lets one account reach another's notes and the admin routes; the fixed
one checks the grant at the moment of each action, and whose it is, and verifies every token with its
own key and algorithm. Nothing leaves this machine.

Exit status: 0 unless --fail-on is given and a finding is at or above it; 2 on an error.`

type labFlags struct {
	ttl, permissionTTL, gap time.Duration
	singleWriter            bool
	// How the vulnerable lab learns of revocations (the staleness window's cause), for trying the
	// staleness checks on each pattern; the defaults are the introspection cache above.
	latency                   lab.Latency
	stampOnAnswer, offlineJWT bool
	denylistSync, propagation time.Duration
	tokenLifetime             time.Duration
}

func (l *labFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.DurationVar(&l.ttl, "ttl", 2*time.Second, "vulnerable lab: introspection cache TTL (negative turns the cache off)")
	fs.DurationVar(&l.permissionTTL, "permission-ttl", 2*time.Second, "vulnerable lab: per-subject permission cache TTL (negative turns it off)")
	fs.DurationVar(&l.gap, "gap", 150*time.Millisecond, "check-to-use gap before destructive actions, both flavours")
	fs.BoolVar(&l.singleWriter, "single-writer", false, "both flavours: behave like an application on a single-writer database: every token-bearing request writes a last-used stamp, and a DELETE holds the write lock from load to commit (GET /public/items/{id} reads without a token or a write)")
	fs.Func("introspect-latency", "vulnerable lab: how long each introspection call takes, `d` or a range such as 5ms-60ms drawn uniformly per call", func(s string) error {
		var err error
		l.latency, err = lab.ParseLatency(s)
		return err
	})
	fs.Func("cache-stamp", "vulnerable lab: an introspection cache entry lives from the `arrival` of the request that filled it (default) or from the introspection's answer (as real proxies do)", func(s string) error {
		switch s {
		case "arrival", "answer":
			l.stampOnAnswer = s == "answer"
			return nil
		}
		return fmt.Errorf("want arrival or answer, not %q", s)
	})
	_ = cmd.RegisterFlagCompletionFunc("cache-stamp", completeValues("arrival", "answer"))
	fs.BoolVar(&l.offlineJWT, "offline-jwt", false, "vulnerable lab: verify JWTs offline with no revocation check (a revoked token works until its exp; see --token-lifetime)")
	fs.DurationVar(&l.denylistSync, "denylist-sync", 0, "vulnerable lab: verify JWTs offline against a revocation list pulled every `period`")
	fs.DurationVar(&l.propagation, "propagation-delay", 0, "vulnerable lab: verify JWTs offline against a revocation store that lags this `delay` behind the acknowledgement")
	fs.DurationVar(&l.tokenLifetime, "token-lifetime", 15*time.Minute, "access token lifetime (exp), both flavours; at least 1s")
}

func (l *labFlags) options(flavor string) lab.Options {
	return lab.Options{
		Flavor: flavor, IntrospectionTTL: l.ttl, PermissionTTL: l.permissionTTL, ActionGap: l.gap,
		SingleWriter:         l.singleWriter,
		IntrospectionLatency: l.latency, StampOnAnswer: l.stampOnAnswer,
		OfflineJWT: l.offlineJWT, DenylistSync: l.denylistSync, PropagationDelay: l.propagation,
		TokenLifetime: l.tokenLifetime,
	}
}

func newDemoCmd(s *stdio) *cobra.Command {
	var lf labFlags
	var o outputFlags
	cmd := &cobra.Command{
		Use:     "demo [flags]",
		Short:   "Run the embedded lab (vulnerable and fixed) and scan both",
		Long:    demoLong,
		Example: "  tocsin demo\n  tocsin demo --format html -o demo.html",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return runDemo(s, &lf, &o) },
	}
	lf.register(cmd)
	o.register(cmd, "none")
	return cmd
}

func runDemo(s *stdio, lf *labFlags, o *outputFlags) error {
	if err := o.validate(); err != nil {
		return failed(s, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := lf.options(lab.Vulnerable).Validate(); err != nil {
		return failed(s, err)
	}
	flavors := []string{"vulnerable", "fixed"}
	reports := make([]*report.Report, len(flavors))
	errs := make([]error, len(flavors))
	var wg sync.WaitGroup
	for i, flavor := range flavors {
		l, err := lab.Start(ctx, "127.0.0.1:0", lf.options(flavor))
		if err != nil {
			return failed(s, fmt.Errorf("start %s lab: %w", flavor, err))
		}
		defer l.Close()
		if !o.quiet {
			fmt.Fprintf(s.err, "lab (%s) listening on %s\n", flavor, l.URL())
		}
		name := "lab-" + flavor + ".yaml"
		cfg, err := l.Config(name)
		if err != nil {
			return failed(s, fmt.Errorf("the lab's own config does not parse (a bug in tocsin, please report it): %w", err))
		}
		// The lab's config is not a file here; its findings point at the name `tocsin lab
		// --write-config` would give it.
		locate, err := locator(cfg, name, ".")
		if err != nil {
			return failed(s, err)
		}
		// Both labs are scanned at once: they share nothing, and the demo stays short.
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = scanConfig(ctx, s, cfg, scanRun{name: "lab (" + flavor + ")", out: o, prefix: flavor + ": ", locate: locate})
		}()
	}
	wg.Wait()
	var done []*report.Report
	for i, r := range reports {
		if r != nil {
			done = append(done, r)
		}
		if errs[i] != nil {
			defer fail(s.err, fmt.Errorf("%s lab: %w", flavors[i], errs[i]))
		}
	}
	if err := o.emit(s, done...); err != nil {
		return failed(s, err)
	}
	if len(done) < len(flavors) {
		return exitError(ExitUsage)
	}
	if o.format == "text" && o.out == "" && len(done) == 2 {
		fmt.Fprintf(s.out, "\nThe vulnerable API gave %d finding(s) (stale authorization, races, missing authentication, forged JWTs accepted, one account reaching another's data or privileges), each proven with its evidence above; the fixed API, built on guard, %d.\n",
			done[0].Summary.Total, done[1].Summary.Total)
		fmt.Fprint(s.out, "Scan your own API: tocsin scan -c tocsin.yaml (see examples/tocsin.yaml).\n")
	}
	return exitCode(o.exitCode(done...))
}
