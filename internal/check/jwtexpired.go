package check

// jwt/expired-accepted proves that an API accepts a JWT after its exp. Two ways, the first that
// applies:
//   - when an earlier check proved a way to forge the identity's tokens (the ledger: a cracked
//     secret, an unsigned token, ...) and a token forged that way with a valid exp is accepted by
//     this probe, a token forged the same way with exp an hour ago is sent: no wait;
//   - when the identity's own token expires within limits.max_window, the check waits until a
//     second after its exp and sends it again.
//
// Either way the probe must first accept the real token and refuse a request without one. An
// expired token accepted is the proof; a refused one is a pass. Otherwise the check does not
// apply (not_applicable, with why): no expired token can be had within the scan, since waiting
// out a long-lived token is not worth one.

import (
	"context"
	"fmt"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/forge"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// expiryMargin is how long after its exp the real token is sent again. JWT times have whole
// seconds; a second covers the rounding and a clock a little off. A verifier with a larger
// clock-skew leeway is reported, and the finding says so.
const expiryMargin = time.Second

// ExpiredAccepted is the check jwt/expired-accepted.
type ExpiredAccepted struct{}

func (ExpiredAccepted) Meta() Meta {
	return Meta{
		ID:    "jwt/expired-accepted",
		Title: "Expired JWT accepted",
		CWE:   "CWE-613",
		Description: "Sends the identity's JWT again after its exp (when it expires within limits.max_window), or a token " +
			"forged with exp in the past where an earlier check proved forging possible; acceptance proves exp is not enforced.",
		Remediation: `Reject tokens whose exp has passed, on every route, with at most a few seconds of clock-skew leeway.
- PyJWT: jwt.decode(token, key, algorithms=[...]) checks exp by default: never options={"verify_exp": False}; leeway=timedelta(seconds=5) at most.
- golang-jwt: jwt.Parse checks exp when present; add jwt.WithExpirationRequired() so that a token without one is refused, and keep jwt.WithLeeway small.
- jsonwebtoken (Express): jwt.verify checks exp; never ignoreExpiration: true; clockTolerance of a few seconds at most.
- Spring Security: JwtTimestampValidator is on by default with a 60 s clock skew; lower it (new JwtTimestampValidator(Duration.ofSeconds(5))) and never replace the default validators with ones that skip it.
- Caches of verified tokens must not outlive the token's exp.`,
		References: []string{
			"https://cwe.mitre.org/data/definitions/613.html",
			"https://www.rfc-editor.org/rfc/rfc7519#section-4.1.4",
		},
	}
}

func (c ExpiredAccepted) Run(ctx context.Context, env *Env) ([]finding.Finding, error) {
	meta := c.Meta()
	return forEachProbe(ctx, env, meta.ID, func(ctx context.Context, p *probe.Probe, id *identity.Identity) (*finding.Finding, error) {
		f, err := startForgery(ctx, env, meta, p, id)
		if err != nil {
			return nil, err
		}
		f.rate = expirySeverity
		forger, canForge := env.Ledger.forger(id.Name)
		exp, hasExp := f.tok.Expiry()
		canWait := hasExp && time.Until(exp)+expiryMargin <= env.Target.MaxWindow
		if !canForge && !canWait {
			if !hasExp {
				return nil, notApplicable("the token of identity %q has no exp claim, so it never expires, and no earlier check proved a way to forge one with an exp (hint: run a jwt check that can prove forging before this one, or require exp at the issuer)", id.Name)
			}
			return nil, notApplicable("the token of identity %q expires %s after the check started, later than limits.max_window (%s), and no earlier check proved a way to forge one (hint: use an identity with short-lived tokens, raise limits.max_window, or list a jwt check that can prove forging, such as jwt/weak-hmac-secret, before this one)",
				id.Name, time.Until(exp).Round(time.Second), env.Target.MaxWindow)
		}
		defer f.end(ctx)
		if err := f.begin(ctx); err != nil {
			return nil, err
		}
		if canForge {
			usable, err := f.sendExpiredForgery(ctx, forger)
			if err != nil {
				return nil, err
			}
			if usable {
				return f.result()
			}
			if !canWait {
				return nil, notApplicable("the way to forge tokens of %q that %s proved on probe %q does not work on %s, and the real token expires after limits.max_window (hint: point this check at a probe the forgery works on, or use an identity with short-lived tokens)",
					id.Name, forger.Check, forger.Probe, p.Endpoint())
			}
		}
		if err := f.sendAfterExpiry(ctx, exp); err != nil {
			return nil, err
		}
		return f.result()
	})
}

// sendExpiredForgery sends a token forged the proven way with a valid exp, as a control, then one
// with exp an hour ago. usable is false when the control was not accepted: the forgery does not
// work on this probe, and an expired one being refused would prove nothing.
func (f *forgery) sendExpiredForgery(ctx context.Context, fg Forger) (usable bool, err error) {
	red := f.env.Target.Redactor
	now := time.Now()
	valid := f.tok.CopyClaims()
	valid["exp"] = forge.NumericDate(now.Add(10 * time.Minute))
	token, err := fg.Sign(valid)
	if err != nil {
		return false, fmt.Errorf("forge a token as %s proved: %w", fg.Check, err)
	}
	red.Add("forged", token)
	r, err := sendControl(ctx, f.env, f.p, f.vars, token, red.Label(token), fmt.Sprintf("a token forged as %s proved, with a valid exp", fg.Check), &f.tl)
	if err != nil || r.Outcome != probe.Accepted {
		return false, err
	}
	expired := f.tok.CopyClaims()
	expired["exp"] = forge.NumericDate(now.Add(-time.Hour))
	for _, k := range []string{"iat", "nbf"} {
		if _, ok := expired[k]; ok {
			expired[k] = forge.NumericDate(now.Add(-2 * time.Hour))
		}
	}
	token, err = fg.Sign(expired)
	if err != nil {
		return false, fmt.Errorf("forge a token as %s proved: %w", fg.Check, err)
	}
	_, err = f.send(ctx, token, finding.Forged{
		Variant: "forged with exp an hour ago",
		Made:    fmt.Sprintf("the claims of %s's token with exp an hour ago (iat and nbf, if any, two hours ago), forged as %s proved on probe %s: %s", f.id.Name, fg.Check, fg.Probe, fg.How),
		Subject: f.tok.Subject(),
	})
	f.describe = func(accepted []finding.Forged) string {
		return fmt.Sprintf("%s accepted a token whose exp was an hour in the past (forged as %s proved), where a token forged the same way with a valid exp is accepted and a request without one refused: exp is not enforced.",
			f.p.Endpoint(), fg.Check)
	}
	return true, err
}

// sendAfterExpiry waits until expiryMargin after the real token's exp and sends it again.
func (f *forgery) sendAfterExpiry(ctx context.Context, exp time.Time) error {
	at := exp.Add(expiryMargin)
	f.env.progress("%s: %s: waiting %s for the token of %s to expire", f.meta.ID, f.p.Endpoint(), time.Until(at).Round(100*time.Millisecond), f.id.Name)
	f.tl.add(time.Now(), finding.EventNote, fmt.Sprintf("waiting until %s after the token's exp", expiryMargin), nil, time.Time{}, time.Time{})
	if err := sleepUntil(ctx, at); err != nil {
		return err
	}
	late := time.Since(exp)
	if _, err := f.send(ctx, f.real.Value, finding.Forged{
		Variant: fmt.Sprintf("the real token, %s after its exp", late.Round(100*time.Millisecond)),
		Made:    fmt.Sprintf("the token of %s the check started with, unchanged, sent after its exp", f.id.Name),
		Subject: f.tok.Subject(),
	}); err != nil {
		return err
	}
	f.describe = func([]finding.Forged) string {
		return fmt.Sprintf("%s accepted the real token of %s %s after its exp, where a request without a token is refused (a verifier whose clock-skew leeway is longer than that does this too: Spring Security's default is 60 s).",
			f.p.Endpoint(), f.id.Name, fmtMS(ms(late)))
	}
	return nil
}
