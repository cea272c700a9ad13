package check

// toctou/scope-downgrade-ignored proves that an API keeps honouring a scope or role after it was
// removed from the identity (permissions read once and cached, claims kept from an earlier check),
// and measures for how long: make a privileged probe accepted, downgrade the identity at the identity
// provider, replay until refused, then restore the identity.

import (
	"context"

	"github.com/tocsin/tocsin/internal/finding"
)

// ScopeDowngradeIgnored is the check toctou/scope-downgrade-ignored.
type ScopeDowngradeIgnored struct{}

func (ScopeDowngradeIgnored) Meta() Meta {
	return Meta{
		ID:    "toctou/scope-downgrade-ignored",
		Title: "Removed scope or role still honoured",
		CWE:   "CWE-367",
		Description: "Removes a privilege from the identity at the identity provider and replays a request that " +
			"needs it until the API refuses it, bracketing how long the stale permission is honoured; restores the " +
			"identity afterwards.",
		Remediation: remediationDowngrade,
		References: []string{
			"https://cwe.mitre.org/data/definitions/367.html",
			"https://owasp.org/API-Security/editions/2023/en/0xa5-broken-function-level-authorization/",
		},
	}
}

func (c ScopeDowngradeIgnored) Run(ctx context.Context, env *Env) ([]finding.Finding, error) {
	return runStaleness(ctx, env, c.Meta(), "downgrade")
}

const remediationDowngrade = `Read the identity's current scopes or roles when you authorize the action, not a copy taken earlier.
- Do not cache permissions longer than you accept as an exposure window, and invalidate the cache when the identity provider changes a subject's roles (an event or a version number on the subject that every check compares).
- Keep claims in short-lived access tokens and re-check privileged actions against the authorization source.
Idioms: Flask: do not reuse scopes stored in g or the session for the privileged branch; look them up in the route right before acting. Go net/http: authorize inside the action (guard.Do checks the subject's current scopes and SetScopes waits for in-flight actions). Express: do not trust req.user.roles set by an earlier middleware for the privileged step.`
