package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/tocsin/tocsin/internal/lab"
	"github.com/tocsin/tocsin/internal/report"
)

const demoHelp = `Starts the embedded lab twice on 127.0.0.1 ephemeral ports, an identity provider with the resource
API in its vulnerable flavour and in its fixed flavour (built on tocsin's guard library), scans both
with the same config, and prints the findings. The vulnerable API caches token introspection and
permissions (--ttl, --permission-ttl); the fixed one checks the grant at the moment of each action.
Nothing leaves this machine.

Exit status: 0 unless --fail-on is given and a finding is at or above it; 2 on an error.`

type labFlags struct {
	ttl, permissionTTL, gap time.Duration
	// How the vulnerable lab learns of revocations (the staleness window's cause), for trying the
	// staleness checks on each pattern; the defaults are the introspection cache above.
	latency                   lab.Latency
	stampOnAnswer, offlineJWT bool
	denylistSync, propagation time.Duration
	tokenLifetime             time.Duration
}

func (l *labFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&l.ttl, "ttl", 2*time.Second, "vulnerable lab: introspection cache TTL (negative turns the cache off)")
	fs.DurationVar(&l.permissionTTL, "permission-ttl", 2*time.Second, "vulnerable lab: per-subject permission cache TTL (negative turns it off)")
	fs.DurationVar(&l.gap, "gap", 150*time.Millisecond, "check-to-use gap before destructive actions, both flavours")
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
	fs.BoolVar(&l.offlineJWT, "offline-jwt", false, "vulnerable lab: verify JWTs offline with no revocation check (a revoked token works until its exp; see --token-lifetime)")
	fs.DurationVar(&l.denylistSync, "denylist-sync", 0, "vulnerable lab: verify JWTs offline against a revocation list pulled every `period`")
	fs.DurationVar(&l.propagation, "propagation-delay", 0, "vulnerable lab: verify JWTs offline against a revocation store that lags this `delay` behind the acknowledgement")
	fs.DurationVar(&l.tokenLifetime, "token-lifetime", 15*time.Minute, "access token lifetime (exp), both flavours; at least 1s")
}

func (l *labFlags) options(flavor string) lab.Options {
	return lab.Options{
		Flavor: flavor, IntrospectionTTL: l.ttl, PermissionTTL: l.permissionTTL, ActionGap: l.gap,
		IntrospectionLatency: l.latency, StampOnAnswer: l.stampOnAnswer,
		OfflineJWT: l.offlineJWT, DenylistSync: l.denylistSync, PropagationDelay: l.propagation,
		TokenLifetime: l.tokenLifetime,
	}
}

func runDemo(s *stdio, args []string) int {
	fs := newFlags(s, "demo", "tocsin demo [flags]", demoHelp)
	var lf labFlags
	lf.register(fs)
	var o outputFlags
	o.register(fs, "none")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if err := o.validate(); err != nil {
		fail(s.err, err)
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := lf.options(lab.Vulnerable).Validate(); err != nil {
		fail(s.err, err)
		return ExitUsage
	}
	flavors := []string{"vulnerable", "fixed"}
	reports := make([]*report.Report, len(flavors))
	errs := make([]error, len(flavors))
	var wg sync.WaitGroup
	for i, flavor := range flavors {
		l, err := lab.Start(ctx, "127.0.0.1:0", lf.options(flavor))
		if err != nil {
			fail(s.err, fmt.Errorf("start %s lab: %w", flavor, err))
			return ExitUsage
		}
		defer l.Close()
		if !o.quiet {
			fmt.Fprintf(s.err, "lab (%s) listening on %s\n", flavor, l.URL())
		}
		cfg, err := l.Config("lab-" + flavor + ".yaml")
		if err != nil {
			fail(s.err, fmt.Errorf("the lab's own config does not parse (a bug in tocsin, please report it): %w", err))
			return ExitUsage
		}
		// Both labs are scanned at once: they share nothing, and the demo stays short.
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = scanConfig(ctx, s, cfg, "lab ("+flavor+")", nil, &o, flavor+": ")
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
		fail(s.err, err)
		return ExitUsage
	}
	if len(done) < len(flavors) {
		return ExitUsage
	}
	if o.format == "text" && o.out == "" && len(done) == 2 {
		fmt.Fprintf(s.out, "\nThe vulnerable API honoured stale authorization %d time(s); the fixed API, built on guard, %d.\n",
			done[0].Summary.Total, done[1].Summary.Total)
		fmt.Fprint(s.out, "Scan your own API: tocsin scan -c tocsin.yaml (see examples/tocsin.yaml).\n")
	}
	return o.exitCode(done...)
}
