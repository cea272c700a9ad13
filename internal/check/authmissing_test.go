package check_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/lab"
)

// The vulnerable lab's daily report checks no token: one finding per credential it should have
// refused. Its items, read and deleted, require a token in both flavours; the DELETE runs only on
// items the check created, and nothing is left behind.
func TestAuthMissingVulnerable(t *testing.T) {
	l, tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable, ActionGap: -1}, withDeleteItem)
	before := l.Resources()
	fs, xs := runWith(t, check.AuthMissing{}, tgt, &check.Ledger{})
	var variants []string
	for _, f := range fs {
		if f.Probe != "read-daily-report" || f.Severity != finding.High || len(f.Forged) != 1 || f.Forged[0].Outcome != "accepted" {
			t.Errorf("finding %+v", f)
			continue
		}
		variants = append(variants, f.Forged[0].Variant)
		// The evidence: the real token accepted first (the control), then the request in its place.
		if len(f.Evidence) != 2 || f.Evidence[0].Kind != finding.EventControl || f.Evidence[0].HTTP.Outcome != "accepted" ||
			!strings.HasPrefix(f.Evidence[0].HTTP.Token, "[token:") || f.Evidence[1].Kind != finding.EventForged {
			t.Errorf("evidence %+v", f.Evidence)
		}
	}
	if want := []string{"no credentials", "a malformed bearer token", "a token no issuer made"}; !slices.Equal(variants, want) {
		t.Errorf("findings for %q, want %q", variants, want)
	}
	ids := map[string]bool{}
	for _, f := range fs {
		ids[f.ID] = true
	}
	if len(ids) != len(fs) {
		t.Errorf("finding IDs are not one per variant: %v", ids)
	}
	verdicts := map[string]check.Verdict{}
	for _, x := range xs {
		verdicts[x.Probe] = x.Verdict
	}
	if want := map[string]check.Verdict{"read-daily-report": check.Found, "read-item": check.Passed, "delete-item": check.Passed}; !maps.Equal(verdicts, want) {
		t.Errorf("verdicts %v, want %v", verdicts, want)
	}
	if after := l.Resources(); !maps.Equal(before, after) {
		t.Errorf("resources %v before, %v after: the check left something behind", before, after)
	}
	assertNoSecret(t, tgt, fs)
}

// withDeleteItem adds the DELETE to auth/missing's probes: a write, on items its setup creates.
func withDeleteItem(c *config.Config) {
	for _, ch := range c.Checks {
		if ch.ID == config.CheckAuthMissing {
			ch.Probes = append(ch.Probes, "delete-item")
		}
	}
}

func TestAuthMissingFixed(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: lab.Fixed, ActionGap: -1}, withDeleteItem)
	fs, xs := runWith(t, check.AuthMissing{}, tgt, &check.Ledger{})
	if len(fs) != 0 || len(xs) != 3 {
		t.Fatalf("findings %+v, experiments %+v", fs, xs)
	}
	for _, x := range xs {
		if x.Verdict != check.Passed {
			t.Errorf("%s: %s (%s), want passed", x.Probe, x.Verdict, x.Reason)
		}
	}
}

// A write without a setup could act on what the scan did not create: the check does not send it.
func TestAuthMissingSkipsWritesWithoutSetup(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable})
	// The config refuses it (config.Validate); a target built some other way must not send it either.
	plan := tgt.Checks[config.CheckAuthMissing]
	plan.Probes = []string{"claim-bonus"}
	tgt.Checks[config.CheckAuthMissing] = plan
	before := tgt.Client.Sent()
	fs, xs := runWith(t, check.AuthMissing{}, tgt, &check.Ledger{})
	if len(fs) != 0 || len(xs) != 1 || xs[0].Verdict != check.Skipped || tgt.Client.Sent() != before {
		t.Fatalf("findings %+v, experiments %+v, %d requests", fs, xs, tgt.Client.Sent()-before)
	}
}

// Every check this tocsin runs is one a config may name, and each describes itself fully.
func TestEveryCheckIsKnownAndDescribed(t *testing.T) {
	var ids []string
	for _, c := range check.All() {
		m := c.Meta()
		ids = append(ids, m.ID)
		if m.Title == "" || m.CWE == "" || m.Description == "" || m.Remediation == "" || len(m.References) == 0 {
			t.Errorf("%s: incomplete metadata %+v", m.ID, m)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(ids)), slices.Sorted(slices.Values(config.KnownChecks))) {
		t.Errorf("check.All() is %v, config.KnownChecks %v", ids, config.KnownChecks)
	}
}
