package check_test

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/lab"
	"github.com/tocsin/tocsin/internal/redact"
	"github.com/tocsin/tocsin/internal/target"
)

// labTarget starts a lab with opts and builds the target its own config describes.
func labTarget(tb testing.TB, opts lab.Options, tweaks ...func(*config.Config)) (*lab.Lab, *target.Target) {
	tb.Helper()
	ctx := context.Background()
	l, err := lab.Start(ctx, "127.0.0.1:0", opts)
	if err != nil {
		tb.Fatalf("start lab: %v", err)
	}
	tb.Cleanup(func() { l.Close() })
	cfg, err := l.Config("lab.yaml")
	if err != nil {
		tb.Fatalf("lab config: %v", err)
	}
	// Generous, so that a slow -race run cannot turn a window into "never"; the lab's windows are
	// well under a second.
	cfg.Limits.MaxWindow = 15 * time.Second
	for _, tweak := range tweaks {
		tweak(cfg)
	}
	tgt, err := target.Build(ctx, cfg, &redact.Redactor{})
	if err != nil {
		tb.Fatalf("build target: %v", err)
	}
	return l, tgt
}

func runCheck(tb testing.TB, c check.Check, tgt *target.Target) []finding.Finding {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := c.Meta().ID
	plan, ok := tgt.Checks[id]
	if !ok {
		tb.Fatalf("the lab config does not configure %s", id)
	}
	fs, err := c.Run(ctx, &check.Env{Target: tgt, Plan: plan})
	if err != nil {
		tb.Fatalf("%s: %v", id, err)
	}
	return fs
}

// assertWindow checks that the measured window names cause and that its bracket, in the cause's own
// frame, contains the configured truth (a lifetime, a delay, a leeway), and that the pass it comes
// from is on record. The slack covers a loaded 2-core CI machine running every package's tests at
// once, where the lab can handle a request several milliseconds after it was sent; it is small next
// to the windows, so a wrong frame still fails.
func assertWindow(t *testing.T, f finding.Finding, cause string, truth time.Duration) {
	t.Helper()
	assertWindowWithin(t, f, cause, truth, 40)
}

// assertWindowWithin is assertWindow with the widest bracket accepted, in ms.
func assertWindowWithin(t *testing.T, f finding.Finding, cause string, truth time.Duration, maxWidth float64) {
	t.Helper()
	w := f.Window
	if w == nil || w.Bracket == nil {
		t.Fatalf("window = %+v, want a bracket", w)
	}
	if w.Cause != cause {
		t.Fatalf("cause %q (%s), want %q; window %+v", w.Cause, w.CauseReason, cause, w)
	}
	const slack = 15.0 // ms
	want := float64(truth.Microseconds()) / 1000
	if !w.Bracket.Closed() || w.Bracket.LoMS-slack > want || w.Bracket.Hi()+slack < want {
		t.Errorf("%s bracket [%.2f, %.2f] ms in frame %s does not contain %.0f ms (window %+v)", w.Parameter, w.Bracket.LoMS, w.Bracket.Hi(), w.Frame, want, w)
	}
	if w.BracketPass < 1 || w.BracketPass > len(w.Passes) || w.Passes[w.BracketPass-1].Bracket == nil || w.Passes[w.BracketPass-1].Bracket.LoMS != w.Bracket.LoMS {
		t.Errorf("bracket pass %d does not hold the bracket: %+v", w.BracketPass, w.Passes)
	}
	if w.LastAcceptedMS > w.FirstRejectedMS || w.WorstCaseMS < w.Bracket.LoMS {
		t.Errorf("inverted bracket or worst case below it: %+v", w)
	}
	// The precision goal is 8 ms (make bench measures it); allow more under the race
	// detector on a busy machine.
	if w.Bracket.Width() > maxWidth {
		t.Errorf("bracket width %.2f ms, want <= %.0f", w.Bracket.Width(), maxWidth)
	}
}

func TestRevokedTokenAcceptedVulnerable(t *testing.T) {
	ttl := 400 * time.Millisecond
	_, tgt := labTarget(t, lab.Options{Flavor: "vulnerable", IntrospectionTTL: ttl, PermissionTTL: -1})
	fs := runCheck(t, check.RevokedTokenAccepted{}, tgt)
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want exactly 1: %+v", len(fs), fs)
	}
	f := fs[0]
	if f.Check != "toctou/revoked-token-accepted" || f.Identity != "alice" || f.Window.Change != "revocation" {
		t.Errorf("unexpected finding %+v", f)
	}
	if f.Severity != finding.Low {
		t.Errorf("severity %s for a %.0f ms read-only window, want low (docs/severity.md)", f.Severity, f.Window.WorstCaseMS)
	}
	assertWindow(t, f, finding.CauseLifetime, ttl)
	if f.Requests > 80 {
		t.Errorf("spent %d requests, want <= 80", f.Requests)
	}
	assertEvidence(t, f)
}

// Issue 19: a window that belongs to the token is measured in about one window. The later passes use
// tokens armed while the first pass replayed; passes one after another would take three windows or
// more. The bound is generous (a loaded CI machine); BenchmarkWindow has the figures.
func TestRevokedTokenAcceptedOverlapped(t *testing.T) {
	ttl := 3 * time.Second
	l, tgt := labTarget(t, lab.Options{Flavor: "vulnerable", IntrospectionTTL: ttl, PermissionTTL: -1})
	before, beforeTokens := l.Resources(), l.ActiveTokens("alice")
	fs := runCheck(t, check.RevokedTokenAccepted{}, tgt)
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want exactly 1: %+v", len(fs), fs)
	}
	f := fs[0]
	assertWindow(t, f, finding.CauseLifetime, ttl)
	w := f.Window
	if w.Schedule != finding.ScheduleOverlapped || w.ScheduleReason == "" {
		t.Errorf("schedule %q (%s), want overlapped with a reason", w.Schedule, w.ScheduleReason)
	}
	if w.WallMS <= float64(ttl.Milliseconds()) || w.WallMS > 2*float64(ttl.Milliseconds()) {
		t.Errorf("the measurement took %.0f ms for a %s window, want between one and two windows", w.WallMS, ttl)
	}
	ahead := 0
	for i, p := range w.Passes {
		if p.Why == "" {
			t.Errorf("pass %d says not why it was needed", i+1)
		}
		if p.ArmedAheadMS > 0 {
			ahead++
		}
	}
	if ahead == 0 {
		t.Errorf("no pass used a token armed while pass 1 replayed: %+v", w.Passes)
	}
	// Tokens armed ahead whose change no pass needed are not revoked during the measurement,
	// but after it; what their setup created is removed like every other token's.
	if after := l.Resources(); !maps.Equal(before, after) {
		t.Errorf("resources before %v, after %v (%d token(s) not needed): the check left something behind", before, after, w.UnchangedTokens)
	}
	if after := l.ActiveTokens("alice"); after > beforeTokens {
		t.Errorf("alice has %d valid tokens after the check, %d before (%d token(s) armed ahead were not needed): a token the check minted stays valid", after, beforeTokens, w.UnchangedTokens)
	}
	if w.UnchangedTokens == 0 {
		t.Logf("every token armed ahead was changed: the revocation and teardown of unneeded ones was not exercised")
	}
	assertEvidence(t, f)
}

func TestRevokedTokenAcceptedFixed(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: "fixed"})
	if fs := runCheck(t, check.RevokedTokenAccepted{}, tgt); len(fs) != 0 {
		t.Fatalf("fixed lab: got %d findings, want none: %+v", len(fs), fs)
	}
}

// With no introspection cache, the vulnerable lab still keeps claims for the length of a request, but
// a replay after the acknowledgement is a new request: there is nothing for this check to find.
func TestRevokedTokenAcceptedVulnerableWithoutCache(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: "vulnerable", IntrospectionTTL: -1, PermissionTTL: -1})
	if fs := runCheck(t, check.RevokedTokenAccepted{}, tgt); len(fs) != 0 {
		t.Fatalf("got %d findings, want none: %+v", len(fs), fs)
	}
}

func TestScopeDowngradeIgnoredVulnerable(t *testing.T) {
	ttl := 400 * time.Millisecond
	l, tgt := labTarget(t, lab.Options{Flavor: "vulnerable", IntrospectionTTL: -1, PermissionTTL: ttl})
	fs := runCheck(t, check.ScopeDowngradeIgnored{}, tgt)
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want exactly 1: %+v", len(fs), fs)
	}
	f := fs[0]
	if f.Check != "toctou/scope-downgrade-ignored" || f.Window.Change != "downgrade" {
		t.Errorf("unexpected finding %+v", f)
	}
	if w := f.Window; w.Schedule != finding.ScheduleSequential || !strings.Contains(w.ScheduleReason, "subject") {
		t.Errorf("schedule %q (%s): a downgrade's passes run one after another, and the report says why", w.Schedule, w.ScheduleReason)
	}
	assertWindow(t, f, finding.CauseLifetime, ttl)
	assertEvidence(t, f)
	assertRestored(t, l, tgt)
}

func TestScopeDowngradeIgnoredFixed(t *testing.T) {
	l, tgt := labTarget(t, lab.Options{Flavor: "fixed"})
	if fs := runCheck(t, check.ScopeDowngradeIgnored{}, tgt); len(fs) != 0 {
		t.Fatalf("fixed lab: got %d findings, want none: %+v", len(fs), fs)
	}
	assertRestored(t, l, tgt)
}

// assertRestored proves the check put the identity back: a fresh token of the identity under test is
// accepted by the privileged probe again.
func assertRestored(t *testing.T, _ *lab.Lab, tgt *target.Target) {
	t.Helper()
	ctx := context.Background()
	plan := tgt.Checks["toctou/scope-downgrade-ignored"]
	id := tgt.Identities[plan.Identity]
	p := tgt.Probes[plan.Probes[0]]
	deadline := time.Now().Add(5 * time.Second)
	for {
		tok, err := id.Source.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Do(ctx, tgt.Client, map[string]string{"token": tok.Value})
		if err != nil {
			t.Fatal(err)
		}
		if r.Response.Status == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the check, %s answers %d to a fresh token: identity not restored", p.Endpoint(), r.Response.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func assertEvidence(t *testing.T, f finding.Finding) {
	t.Helper()
	var acked, accepted, rejected bool
	for _, e := range f.Evidence {
		switch {
		case e.Kind == finding.EventChangeAcked:
			acked = e.AtMS == 0
		case e.Kind == finding.EventReplay && e.HTTP != nil && e.HTTP.Outcome == "accepted":
			accepted = true
			if strings.Contains(e.HTTP.Token, ".") || !strings.HasPrefix(e.HTTP.Token, "[token:") {
				t.Errorf("evidence token not redacted: %q", e.HTTP.Token)
			}
		case e.Kind == finding.EventReplay && e.HTTP != nil && e.HTTP.Outcome == "rejected":
			rejected = true
		}
	}
	if !acked || !accepted || !rejected {
		t.Errorf("evidence lacks the acknowledgement at 0 (%v), an accepted replay (%v) or a rejected one (%v): %+v", acked, accepted, rejected, f.Evidence)
	}
}

// A token still honoured when the measurement gives up is reported as never revoked within the max
// window, rated high for a read-only probe (docs/severity.md).
func TestRevokedTokenNeverRejected(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: "vulnerable", IntrospectionTTL: 10 * time.Minute, PermissionTTL: -1}, func(c *config.Config) {
		c.Limits.MaxWindow = 600 * time.Millisecond
	})
	fs := runCheck(t, check.RevokedTokenAccepted{}, tgt)
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want exactly 1: %+v", len(fs), fs)
	}
	f := fs[0]
	if !f.Window.Never || f.Window.Cause != finding.CauseNever || f.Window.MaxWaitMS != 600 || f.Severity != finding.High {
		t.Errorf("window %+v severity %s, want never rejected within 600 ms, high", f.Window, f.Severity)
	}
	if r := f.Window.Reach; r == nil || r.StoppedBy != finding.StoppedMaxWindow || r.LastReplayMS < 600 {
		t.Errorf("reach %+v, want the last replay at the max window", r)
	}
	// "Never within 600 ms" is a claim about a replay sent at 600 ms, not wherever the schedule's
	// last step before it fell.
	if f.Window.LastAcceptedMS < 600 || f.Window.LastAcceptedMS > 700 || len(f.Window.Passes) != 1 {
		t.Errorf("last accepted at %.1f ms after %d passes; want the last replay at the max window (600 ms) in a single pass", f.Window.LastAcceptedMS, len(f.Window.Passes))
	}
	if !strings.Contains(f.Summary, "never refused within 6") {
		t.Errorf("summary %q does not say it was never refused within the window", f.Summary)
	}
}
