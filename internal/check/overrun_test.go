package check_test

import (
	"strings"
	"testing"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/lab"
)

func TestLimitOverrunVulnerable(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: "vulnerable"})
	fs := runCheck(t, check.LimitOverrun{}, tgt)
	if len(fs) != 3 {
		t.Fatalf("got %d findings, want exactly 3 (the coupon, the referral order and the bonus): %+v", len(fs), fs)
	}
	byProbe := map[string]finding.Finding{}
	for _, f := range fs {
		byProbe[f.Probe] = f
	}
	f := byProbe["redeem-coupon"]
	if f.Check != "race/limit-overrun" || f.Severity != finding.High || f.Probe != "redeem-coupon" || f.Identity != "alice" {
		t.Errorf("unexpected finding %+v", f)
	}
	// The summary carries the counts: the lab's coupon is single use, so the baseline is 1 of 20.
	if !strings.Contains(f.Summary, "where 1 of 20 succeeded one after another") {
		t.Errorf("summary %q lacks the baseline", f.Summary)
	}
	var accepted, release int
	for _, e := range f.Evidence {
		if strings.HasPrefix(e.Detail, "race copy") && e.HTTP != nil && e.HTTP.Outcome == "accepted" {
			accepted++
			if strings.Contains(e.HTTP.BodyExcerpt+e.HTTP.URL, "Bearer") || e.HTTP.Token == "" {
				t.Errorf("race evidence %+v: token not labelled", e.HTTP)
			}
		}
		if strings.HasPrefix(e.Detail, "release: last-byte-h1 over http/1.1") {
			release++
		}
	}
	if accepted < 2 || release != 1 {
		t.Errorf("evidence has %d accepted race copies and %d release notes, want >= 2 and 1: %+v", accepted, release, f.Evidence)
	}
	// A token, 2 setups, 20 sequential and 20 raced; then the teardown: a token, 2 deletes, its revocation.
	if f.Requests != 1+2+20+20+4 {
		t.Errorf("spent %d requests, want 47", f.Requests)
	}
	// The bonus is one per account: only an account minted for the race can show the overrun, since
	// the baseline spends the bonus of its own.
	b := byProbe["claim-bonus"]
	if b.Probe != "claim-bonus" || b.Identity != "newcomer" || !strings.Contains(b.Summary, "as one account minted for the race") ||
		!strings.Contains(b.Summary, "where 1 of 20 succeeded one after another") {
		t.Errorf("bonus finding %+v", b)
	}
	// The referral order: a coupon that took two accounts and three steps to get (bob's referral
	// code, alice applying it, the coupon found in her list by a selector), raced with copies: 10.
	o := byProbe["order-with-referral"]
	if o.Identity != "alice" || !strings.Contains(o.Summary, "out of 10 synchronised requests") || !strings.Contains(o.Summary, "where 1 of 10 succeeded one after another") {
		t.Errorf("referral order finding %+v", o)
	}
}

func TestLimitOverrunFixed(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: "fixed"})
	if fs := runCheck(t, check.LimitOverrun{}, tgt); len(fs) != 0 {
		t.Fatalf("fixed lab: got %d findings, want none: %+v", len(fs), fs)
	}
}
