package check_test

import (
	"context"
	"encoding/json"
	"slices"
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

// runWith runs c on tgt with ledger, as a scan would, and returns its findings and experiments.
func runWith(tb testing.TB, c check.Check, tgt *target.Target, ledger *check.Ledger) ([]finding.Finding, []check.Experiment) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := c.Meta().ID
	plan, ok := tgt.Checks[id]
	if !ok {
		tb.Fatalf("the lab config does not configure %s", id)
	}
	fs, err := c.Run(ctx, &check.Env{Target: tgt, Plan: plan, Ledger: ledger})
	if err != nil {
		tb.Fatalf("%s: %v", id, err)
	}
	return fs, ledger.Experiments(id)
}

// accepted lists the variants of f's forged tokens the API accepted.
func accepted(f finding.Finding) []string {
	var out []string
	for _, fg := range f.Forged {
		if fg.Outcome == "accepted" {
			out = append(out, fg.Variant)
		}
	}
	return out
}

// assertNoSecret checks that a finding, as a report would write it, holds none of the run's secrets.
func assertNoSecret(t *testing.T, tgt *target.Target, fs []finding.Finding, extra ...string) {
	t.Helper()
	b, err := json.Marshal(fs)
	if err != nil {
		t.Fatal(err)
	}
	// redact.Shows applies the redactor's own rule: a short secret counts only where it stands as a
	// whole value (an id "2" inside "120 ms" is not a leak).
	for _, s := range append(tgt.Redactor.Secrets(), extra...) {
		if redact.Shows(string(b), s) {
			t.Errorf("a finding holds the secret %.12q...", s)
		}
	}
	if strings.Contains(string(b), "eyJ") {
		t.Error("a finding holds a JWT")
	}
}

// Each jwt/* check on its route of the vulnerable lab: one finding, with exactly the forgeries that
// route's flaw lets through; on the fixed lab: passed, nothing accepted.
func TestJWTChecksOnTheLab(t *testing.T) {
	for _, tc := range []struct {
		check    check.Check
		accepted []string
		severity finding.Severity
	}{
		{check.NoneAlgorithm{}, []string{`alg "none", no signature`, `alg "None", no signature`, `alg "NONE", no signature`, `alg "none", no signature, claiming bob`}, finding.Critical},
		{check.SignatureNotVerified{}, []string{"payload changed, original signature kept", "signature removed", "signature corrupted", "payload changed, original signature kept, claiming bob"}, finding.Critical},
		{check.EmbeddedKey{}, []string{"ES256 with tocsin's key in the jwk header", "RS256 with tocsin's key in the jwk header", "ES256 with tocsin's key in the jwk header, claiming bob"}, finding.Critical},
		{check.WeakHMACSecret{}, []string{"HS256 re-signed with the secret found"}, finding.High},
		{check.AlgorithmConfusion{}, []string{"HS256 keyed with the public key as PEM (SubjectPublicKeyInfo, as a file ends: with a newline)"}, finding.High},
	} {
		id := tc.check.Meta().ID
		t.Run(id, func(t *testing.T) {
			_, tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable})
			fs, xs := runWith(t, tc.check, tgt, &check.Ledger{})
			if len(fs) != 1 || len(xs) != 1 || xs[0].Verdict != check.Found {
				t.Fatalf("vulnerable lab: %d findings %+v, experiments %+v; want one finding", len(fs), fs, xs)
			}
			f := fs[0]
			if got := accepted(f); !slices.Equal(got, tc.accepted) {
				t.Errorf("accepted %q\nwant %q", got, tc.accepted)
			}
			if f.Severity != tc.severity || f.Check != id || f.CWE == "" || f.Remediation == "" || len(f.References) == 0 {
				t.Errorf("finding %+v", f)
			}
			var controls, forged int
			for _, e := range f.Evidence {
				switch e.Kind {
				case finding.EventControl:
					controls++
				case finding.EventForged:
					forged++
					if !strings.HasPrefix(e.HTTP.Token, "[forged:") {
						t.Errorf("forged request labelled %q", e.HTTP.Token)
					}
				}
			}
			if controls != 2 || forged != len(f.Forged) {
				t.Errorf("evidence has %d controls and %d forged requests (%d forged tokens): %+v", controls, forged, len(f.Forged), f.Evidence)
			}
			assertNoSecret(t, tgt, fs)

			_, fixed := labTarget(t, lab.Options{Flavor: lab.Fixed})
			fs, xs = runWith(t, tc.check, fixed, &check.Ledger{})
			if len(fs) != 0 || len(xs) != 1 || xs[0].Verdict != check.Passed {
				t.Fatalf("fixed lab: findings %+v, experiments %+v; want passed", fs, xs)
			}
		})
	}
}

// The secret is found offline and named by its label and place in the list, never shown.
func TestWeakSecretIsNeverShown(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable})
	fs, _ := runWith(t, check.WeakHMACSecret{}, tgt, &check.Ledger{})
	if len(fs) != 1 {
		t.Fatalf("findings %+v", fs)
	}
	if s := fs[0].Summary; !strings.Contains(s, "[secret:") || !strings.Contains(s, "from the built-in list, entry ") {
		t.Errorf("summary %q does not name the secret by its label and entry", s)
	}
	assertNoSecret(t, tgt, fs, "your-256-bit-secret")
}

// jwt/expired-accepted builds on what jwt/weak-hmac-secret proved: a token forged with the cracked
// secret and exp an hour ago, no wait. Without it, the legacy tokens live 2 s: the check waits
// them out. The fixed lab refuses the expired token.
func TestExpiredAccepted(t *testing.T) {
	t.Run("forged after the weak secret", func(t *testing.T) {
		_, tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable})
		ledger := &check.Ledger{}
		runWith(t, check.WeakHMACSecret{}, tgt, ledger)
		start := time.Now()
		fs, _ := runWith(t, check.ExpiredAccepted{}, tgt, ledger)
		if len(fs) != 1 || !slices.Equal(accepted(fs[0]), []string{"forged with exp an hour ago"}) || fs[0].Severity != finding.Medium {
			t.Fatalf("findings %+v", fs)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("took %s: the forged path should not wait", took)
		}
		assertNoSecret(t, tgt, fs, "your-256-bit-secret")
	})
	t.Run("real token after its exp", func(t *testing.T) {
		_, tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable})
		fs, _ := runWith(t, check.ExpiredAccepted{}, tgt, &check.Ledger{})
		if len(fs) != 1 || len(fs[0].Forged) != 1 || !strings.HasPrefix(fs[0].Forged[0].Variant, "the real token, ") || fs[0].Forged[0].Outcome != "accepted" {
			t.Fatalf("findings %+v", fs)
		}
	})
	t.Run("fixed", func(t *testing.T) {
		_, tgt := labTarget(t, lab.Options{Flavor: lab.Fixed})
		ledger := &check.Ledger{}
		runWith(t, check.WeakHMACSecret{}, tgt, ledger)
		fs, xs := runWith(t, check.ExpiredAccepted{}, tgt, ledger)
		if len(fs) != 0 || len(xs) != 1 || xs[0].Verdict != check.Passed {
			t.Fatalf("findings %+v, experiments %+v; want passed", fs, xs)
		}
	})
	t.Run("long-lived and nothing proven", func(t *testing.T) {
		_, tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable}, func(c *config.Config) {
			for _, ch := range c.Checks {
				if ch.ID == config.CheckJWTExpired {
					ch.Identity, ch.Probes = "alice", []string{"whoami-none"}
				}
			}
		})
		fs, xs := runWith(t, check.ExpiredAccepted{}, tgt, &check.Ledger{})
		// The check applies to short-lived tokens or proven forgeries: neither is here, and no
		// expired token can be had within the scan.
		if len(fs) != 0 || len(xs) != 1 || xs[0].Verdict != check.NotApplicable || !strings.Contains(xs[0].Reason, "later than limits.max_window") {
			t.Fatalf("findings %+v, experiments %+v; want not applicable", fs, xs)
		}
	})
}

// A token that is no JWT: every jwt check is not applicable, with the reason, and nothing is sent.
// Not applicable is a verdict (no JWT signature exists to defeat), so the scan stays complete.
func TestJWTChecksOnOpaqueTokensDoNotApply(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable}, func(c *config.Config) {
		c.Identities["alice"].Token = config.TokenSource{Static: "opaque-0123456789abcdef"}
		c.Identities["alice"].Revoke, c.Identities["alice"].Downgrade, c.Identities["alice"].Restore = nil, nil, nil
		var keep []*config.Check
		for _, ch := range c.Checks {
			if strings.HasPrefix(ch.ID, "jwt/") {
				ch.Identity, ch.Verifier, ch.Probes = "alice", "", []string{"whoami-none"}
			}
			if strings.HasPrefix(ch.ID, "jwt/") || ch.ID == config.CheckAuthMissing {
				keep = append(keep, ch)
			}
		}
		c.Checks = keep
	})
	before := tgt.Client.Sent()
	for _, c := range []check.Check{check.NoneAlgorithm{}, check.SignatureNotVerified{}, check.WeakHMACSecret{}, check.AlgorithmConfusion{}, check.EmbeddedKey{}, check.ExpiredAccepted{}} {
		fs, xs := runWith(t, c, tgt, &check.Ledger{})
		if len(fs) != 0 || len(xs) != 1 || xs[0].Verdict != check.NotApplicable || !strings.Contains(xs[0].Reason, "is not a JWT") {
			t.Errorf("%s: findings %+v, experiments %+v; want not applicable", c.Meta().ID, fs, xs)
		}
	}
	if n := tgt.Client.Sent() - before; n != 0 {
		t.Errorf("sent %d requests for a check that could not run", n)
	}
}

// A public endpoint accepts anything: a forged token accepted there proves nothing, and the check
// says so instead of claiming a flaw.
func TestForgeryOnAPublicEndpointIsInconclusive(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable}, func(c *config.Config) {
		for _, ch := range c.Checks {
			if ch.ID == config.CheckJWTNone {
				ch.Probes = []string{"read-daily-report"}
			}
		}
	})
	fs, xs := runWith(t, check.NoneAlgorithm{}, tgt, &check.Ledger{})
	if len(fs) != 0 || len(xs) != 1 || xs[0].Verdict != check.Inconclusive || !strings.Contains(xs[0].Reason, "accepted with no token") {
		t.Fatalf("findings %+v, experiments %+v; want inconclusive", fs, xs)
	}
}

// Without jwks_url, the issuer's public key is found the way a verifier finds it: the OpenID
// discovery document at the token's iss. A jwks_url off the allowed origins is never fetched.
func TestConfusionFindsTheKey(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable}, func(c *config.Config) { c.Identities["sso"].JWKSURL = "" })
	fs, _ := runWith(t, check.AlgorithmConfusion{}, tgt, &check.Ledger{})
	if len(fs) != 1 || !strings.Contains(fs[0].Forged[0].Made, "/sso/.well-known/openid-configuration") {
		t.Fatalf("findings %+v", fs)
	}

	_, tgt = labTarget(t, lab.Options{Flavor: lab.Vulnerable})
	tgt.Identities["sso"].JWKSURL = "http://127.0.0.2:9/jwks.json"
	before := tgt.Client.Sent()
	fs, xs := runWith(t, check.AlgorithmConfusion{}, tgt, &check.Ledger{})
	if len(fs) != 0 || len(xs) != 1 || xs[0].Verdict != check.Skipped || !strings.Contains(xs[0].Reason, "add its origin to target.origins") {
		t.Fatalf("findings %+v, experiments %+v; want skipped", fs, xs)
	}
	if n := tgt.Client.Sent() - before; n != 1 { // the login; nothing went to the other origin
		t.Errorf("sent %d requests, want only the login", n)
	}
}

// A check run without a ledger (a caller that keeps no verdicts) still runs.
func TestJWTCheckWithoutLedger(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable})
	if fs := runCheck(t, check.NoneAlgorithm{}, tgt); len(fs) != 1 {
		t.Fatalf("findings %+v", fs)
	}
}
