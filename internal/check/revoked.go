package check

// toctou/revoked-token-accepted proves that an API keeps honouring a bearer token after the identity
// provider acknowledged its revocation (cached introspection, local JWT validation without a
// revocation check), and measures for how long: mint a fresh token, make one accepted request (it
// fills the API's caches), revoke, replay until refused. See staleMeasurement for the schedule.

import (
	"context"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// RevokedTokenAccepted is the check toctou/revoked-token-accepted.
type RevokedTokenAccepted struct{}

func (RevokedTokenAccepted) Meta() Meta {
	return Meta{
		ID:    "toctou/revoked-token-accepted",
		Title: "Revoked token still accepted",
		CWE:   "CWE-613",
		Description: "Revokes a fresh token at the identity provider and replays a request with it until the API " +
			"refuses it, bracketing how long after the acknowledged revocation the token is still honoured.",
		Remediation: remediationRevocation,
		References: []string{
			"https://cwe.mitre.org/data/definitions/613.html",
			"https://www.rfc-editor.org/rfc/rfc7009",
			"https://www.rfc-editor.org/rfc/rfc7662#section-4",
		},
	}
}

func (c RevokedTokenAccepted) Run(ctx context.Context, env *Env) ([]finding.Finding, error) {
	return runStaleness(ctx, env, c.Meta(), "revocation")
}

const remediationRevocation = `Check the token's state at the moment of the action, not from a cache that can outlive a revocation.
- Couple cache invalidation with revocation: when the identity provider revokes a token, evict it from every introspection cache (push the event, e.g. a pub/sub message or back-channel logout), or do not cache introspection results for sensitive routes.
- If you validate JWTs locally, also check a revocation list (by jti) that is updated when tokens are revoked, and keep access tokens short-lived (minutes) with refresh tokens for renewal.
- If a cache must stay, bound its TTL to what you accept as an exposure window and say so.
Idioms: Flask: call your validate/introspect function inside the route right before the action instead of trusting g.user set in before_request. Go net/http: run the action inside a call that checks the grant at that moment (tocsin's guard package: guard.Do(ctx, jti, scope, action)). Express: re-check in the route handler rather than only in an app.use middleware that stored req.user.`

// runStaleness is shared by the revocation and downgrade checks: it measures each configured probe.
func runStaleness(ctx context.Context, env *Env, meta Meta, kind string) ([]finding.Finding, error) {
	t := env.Target
	return forEachProbe(ctx, env, meta.ID, func(ctx context.Context, p *probe.Probe, id *identity.Identity) (*finding.Finding, error) {
		m := &staleMeasurement{env: env, checkID: meta.ID, ident: id, kind: kind, probe: p}
		switch kind {
		case "revocation":
			if id.Revoke == nil {
				return nil, skip("identity %q has no revoke hook (hint: add identities.%s.revoke)", id.Name, id.Name)
			}
			if !id.Source.Fresh() {
				return nil, skip("identity %q has a %s token: revoking it would spend the only token it has (hint: use a command, oauth2 or http token source, which mint a fresh token per experiment)", id.Name, id.Source.Kind())
			}
			m.hook = id.Revoke
		case "downgrade":
			if id.Downgrade == nil || id.Restore == nil {
				return nil, skip("identity %q needs both downgrade and restore hooks (hint: add identities.%s.downgrade and .restore)", id.Name, id.Name)
			}
			m.hook, m.restore = id.Downgrade, id.Restore
		}
		m.chains = newChains(env, meta.ID, p, id, "")
		// After the measurement (and its restore): remove what each pass's setup created.
		defer m.chains.teardown(ctx, nil)
		before := t.Client.Sent()
		w, events, err := m.measure(ctx)
		if w == nil {
			return nil, err
		}
		sev, why := stalenessSeverity(w, p.Destructive)
		return &finding.Finding{
			ID:             finding.StableID(meta.ID, p.Endpoint(), id.Name),
			Check:          meta.ID,
			Title:          meta.Title,
			Severity:       sev,
			SeverityReason: why,
			CWE:            meta.CWE,
			Endpoint:       p.Endpoint(),
			Probe:          p.Name,
			Identity:       id.Name,
			Summary:        staleSummary(w, p.Endpoint()) + stoppedNote(w),
			Window:         w,
			Requests:       t.Client.Sent() - before,
			Evidence:       events,
			Remediation:    remediationFor(w.Cause, w.Candidates, kind, meta.Remediation),
			References:     meta.References,
		}, err // an error with a window: stopped early, after the finding was proven
	})
}
