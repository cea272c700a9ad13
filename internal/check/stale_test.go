package check_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/lab"
)

// The staleness checks against each way the lab can learn of a revocation: the cause named, and the
// bracket, in the cause's frame, holding the configured truth. Short windows and generous bounds:
// these prove correctness; make bench measures precision and cost (docs/checks.md).

func revocationFinding(t *testing.T, opts lab.Options) finding.Finding {
	t.Helper()
	opts.Flavor, opts.PermissionTTL = lab.Vulnerable, -1
	_, tgt := labTarget(t, opts)
	fs := runCheck(t, check.RevokedTokenAccepted{}, tgt)
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want exactly 1: %+v", len(fs), fs)
	}
	t.Logf("%s", fs[0].Summary)
	return fs[0]
}

// A proxy that caches introspection from the moment the (slow, jittery) answer arrives: the window
// is a lifetime from the first use, whatever the first use's latency.
func TestStalenessIntrospectionLatency(t *testing.T) {
	const ttl = 400 * time.Millisecond
	f := revocationFinding(t, lab.Options{IntrospectionTTL: ttl, StampOnAnswer: true,
		IntrospectionLatency: lab.Latency{Min: 5 * time.Millisecond, Max: 30 * time.Millisecond}})
	// A refused replay waits for an introspection too (up to 30 ms), as does the first use: the
	// bracket can be as wide as both.
	assertWindowWithin(t, f, finding.CauseLifetime, ttl, 80)
	assertEvidence(t, f)
}

func TestStalenessPropagationDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	f := revocationFinding(t, lab.Options{PropagationDelay: delay})
	assertWindow(t, f, finding.CauseDelay, delay)
	if !strings.Contains(f.Remediation, "propagat") {
		t.Errorf("remediation does not fit a propagation delay: %q", f.Remediation)
	}
}

func TestStalenessOfflineJWT(t *testing.T) {
	f := revocationFinding(t, lab.Options{OfflineJWT: true, TokenLifetime: 2 * time.Second})
	// The lab refuses a token once its exp has passed: the leeway is zero.
	assertWindow(t, f, finding.CauseExpiry, 0)
	w := f.Window
	if w.TokenExp == nil || w.TokenLifetimeMS != 2000 || w.WorstCaseMS < 2000 || w.WorstCaseMS > 2040 {
		t.Errorf("exp %v, lifetime %.0f ms, worst case %.1f ms; want the token's exp and its 2 s lifetime", w.TokenExp, w.TokenLifetimeMS, w.WorstCaseMS)
	}
	if strings.Contains(f.Summary, "cache") || !strings.Contains(f.Summary, "exp") {
		t.Errorf("summary %q: an expiry-bound window is not a cache", f.Summary)
	}
}

func TestStalenessDenylistSync(t *testing.T) {
	const every = 600 * time.Millisecond
	f := revocationFinding(t, lab.Options{DenylistSync: every})
	w := f.Window
	if w.Cause != finding.CausePeriodic || w.Periodic == nil {
		t.Fatalf("cause %q (%s), want periodic; window %+v", w.Cause, w.CauseReason, w)
	}
	p := w.Periodic
	if p.Period == nil || p.Period.LoMS > 1.2*600 || p.Period.Hi() < 0.8*600 {
		t.Errorf("period %+v (%s), want about 600 ms", p.Period, p.PeriodNote)
	}
	// A bracket's lower bound may lie before the acknowledgement (a change can take effect while its
	// answer is on the way back), and a pass asked once may leave it wide: each bracket must still
	// meet the truth, windows within [0, 600] ms.
	for _, b := range []finding.Bracket{p.Shortest, p.Longest} {
		if b.Hi() < 0 || b.LoMS > 600+50 {
			t.Errorf("window %+v; a refresh every 600 ms gives windows within [0, 600] ms", b)
		}
	}
	if p.Shortest.LoMS > p.Longest.LoMS {
		t.Errorf("shortest window %+v begins after the longest %+v", p.Shortest, p.Longest)
	}
	if w.WorstCaseMS < 0.8*600 {
		t.Errorf("worst case %.1f ms; a change just after a refresh waits about a whole period", w.WorstCaseMS)
	}
}

// Replays stopped by the request budget after a revoked token was accepted: the finding stands, says
// how far the replays reached and why they stopped, claims no "never within max_window", and the
// error makes the check (and the scan) incomplete.
func TestStalenessStoppedByBudget(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable, IntrospectionTTL: time.Hour, PermissionTTL: -1}, func(c *config.Config) {
		c.Limits.RequestBudget = 14
		c.Limits.MaxWindow = 30 * time.Second
	})
	fs, xs, err := runRecorded(t, check.RevokedTokenAccepted{}, tgt)
	if err == nil || !strings.Contains(err.Error(), "budget") {
		t.Fatalf("err %v; want the budget error", err)
	}
	if len(fs) != 1 || len(xs) != 1 || xs[0].Verdict != check.Errored {
		t.Fatalf("findings %+v, experiments %+v; want the finding and an errored experiment", fs, xs)
	}
	w := fs[0].Window
	if w.Cause != finding.CauseNever || w.Reach == nil || w.Reach.StoppedBy != finding.StoppedBudget || w.Reach.LastReplayMS >= 30000 {
		t.Errorf("window %+v reach %+v; want never, stopped by the budget before the max window", w, w.Reach)
	}
	if fs[0].Severity == finding.High || strings.Contains(fs[0].Summary, "never refused within") || !strings.Contains(fs[0].Summary, "budget") {
		t.Errorf("severity %s, summary %q: replays stopped by the budget claim only as far as they reached", fs[0].Severity, fs[0].Summary)
	}
}
