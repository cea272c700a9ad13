package check_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/lab"
)

// windowVariant is one way the lab learns of a change, with the truth a measurement must find.
type windowVariant struct {
	name      string
	opts      lab.Options
	check     check.Check
	cause     string
	truthMS   float64       // the lifetime, delay or leeway in the cause's frame; for periodic, the period
	periodTol float64       // periodic: the estimate must be within this fraction of the truth
	window    time.Duration // how long one window lasts after a change right after the first use
}

func windowVariants() []windowVariant {
	revoke, downgrade := check.RevokedTokenAccepted{}, check.ScopeDowngradeIgnored{}
	return []windowVariant{
		{name: "ttl=5s", opts: lab.Options{IntrospectionTTL: 5 * time.Second, PermissionTTL: -1}, check: revoke, cause: finding.CauseLifetime, truthMS: 5000, window: 5 * time.Second},
		{name: "ttl=30s", opts: lab.Options{IntrospectionTTL: 30 * time.Second, PermissionTTL: -1}, check: revoke, cause: finding.CauseLifetime, truthMS: 30000, window: 30 * time.Second},
		{name: "ttl=5s/latency=5ms-60ms", opts: lab.Options{IntrospectionTTL: 5 * time.Second, PermissionTTL: -1, StampOnAnswer: true,
			IntrospectionLatency: lab.Latency{Min: 5 * time.Millisecond, Max: 60 * time.Millisecond}}, check: revoke, cause: finding.CauseLifetime, truthMS: 5000, window: 5 * time.Second},
		{name: "delay=1s", opts: lab.Options{PropagationDelay: time.Second, PermissionTTL: -1}, check: revoke, cause: finding.CauseDelay, truthMS: 1000, window: time.Second},
		{name: "periodic=3s", opts: lab.Options{DenylistSync: 3 * time.Second, PermissionTTL: -1}, check: revoke, cause: finding.CausePeriodic, truthMS: 3000, periodTol: 0.1, window: 3 * time.Second},
		{name: "expiry=3s", opts: lab.Options{OfflineJWT: true, TokenLifetime: 3 * time.Second, PermissionTTL: -1}, check: revoke, cause: finding.CauseExpiry, truthMS: 0, window: 3 * time.Second},
		{name: "expiry=60s", opts: lab.Options{OfflineJWT: true, TokenLifetime: 60 * time.Second, PermissionTTL: -1}, check: revoke, cause: finding.CauseExpiry, truthMS: 0, window: 60 * time.Second},
		{name: "downgrade/permission-ttl=1s", opts: lab.Options{IntrospectionTTL: -1, PermissionTTL: time.Second}, check: downgrade, cause: finding.CauseLifetime, truthMS: 1000, window: time.Second},
	}
}

// BenchmarkWindow measures the staleness measurement on each lab variant (issue 11's figures): the
// fraction of runs whose bracket contains the configured truth in the cause's frame (for a periodic
// refresh: whose period estimate is within 10% and whose observed windows span from under a tenth to
// over nine tenths of the period), the fraction that name the right cause, the median bracket width,
// requests, passes, revocations (changes sent: one per pass and per spare; a token whose deferred change no pass needed is none; the mean and the most in one run), and the median (and worst) wall time of one measurement over one window (the variant's
// lifetime, delay, token lifetime or period): the measurement's own (wall/window) and the whole
// check's, with its controls and the teardown of what each token's setup created (check/window). Run with -benchtime 20x (docs/checks.md has the
// command and the figures); -bench 'Window/ttl=5s$' picks one variant.
func BenchmarkWindow(b *testing.B) {
	for _, v := range windowVariants() {
		b.Run(v.name, func(b *testing.B) {
			opts := v.opts
			opts.Flavor = lab.Vulnerable
			_, tgt := labTarget(b, opts, func(c *config.Config) {
				c.Limits.MaxWindow = max(c.Limits.MaxWindow, 2*v.window) // long windows must close within it
				c.Limits.RequestBudget = 1_000_000                       // the budget is the target's: 20 checks of 30 s windows spend over 2,000
			})
			var contained, named, requests, passes, revocations, mostRevocations float64
			var widths, walls, checks []float64
			runs := 0
			for b.Loop() {
				start := time.Now()
				fs := runCheck(b, v.check, tgt)
				took := time.Since(start)
				runs++
				if len(fs) != 1 || fs[0].Window == nil {
					b.Fatalf("want one window, got %+v", fs)
				}
				f := fs[0]
				w := f.Window
				requests += float64(f.Requests)
				passes += float64(len(w.Passes))
				// Every token changed: the passes replayed, and the spares no pass needed (tokens
				// whose change was deferred and never needed were not changed).
				revoked := float64(len(w.Passes) + w.SpareTokens)
				revocations += revoked
				mostRevocations = max(mostRevocations, revoked)
				walls = append(walls, w.WallMS/1000/v.window.Seconds())
				checks = append(checks, took.Seconds()/v.window.Seconds())
				ok, width := judge(v, w)
				if ok {
					contained++
					widths = append(widths, width)
				}
				if w.Cause == v.cause {
					named++
				}
				if !ok || w.Cause != v.cause {
					b.Logf("run %d: cause %s %v, bracket %s in %s: %s", runs, w.Cause, w.Candidates, w.Bracket, w.Frame, f.Summary)
				}
			}
			n := float64(runs)
			b.ReportMetric(contained/n, "contain-frac")
			b.ReportMetric(named/n, "cause-frac")
			b.ReportMetric(median(widths), "median-width-ms")
			b.ReportMetric(passes/n, "passes")
			b.ReportMetric(revocations/n, "revocations")
			b.ReportMetric(mostRevocations, "max-revocations")
			b.ReportMetric(median(walls), "wall/window")
			b.ReportMetric(median(checks), "check/window")
			b.ReportMetric(slices.Max(walls), "max-wall/window")
			b.ReportMetric(requests/n, "requests")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// judge says whether w holds v's truth, and how wide the figure that holds it is.
func judge(v windowVariant, w *finding.Window) (bool, float64) {
	if v.cause == finding.CausePeriodic {
		p := w.Periodic
		if p == nil || p.Period == nil {
			return false, 0
		}
		mid := (p.Period.LoMS + p.Period.Hi()) / 2
		ok := mid >= (1-v.periodTol)*v.truthMS && mid <= (1+v.periodTol)*v.truthMS &&
			p.Shortest.Hi() <= v.periodTol*v.truthMS && p.Longest.LoMS >= (1-v.periodTol)*v.truthMS
		return ok, p.Period.Width()
	}
	if w.Bracket == nil || !w.Bracket.Closed() {
		return false, 0
	}
	return w.Bracket.LoMS <= v.truthMS && w.Bracket.Hi() >= v.truthMS, w.Bracket.Width()
}

var median = check.Median
