package check

// authz/bfla proves broken function level authorization (OWASP API5, CWE-285): an operation that
// needs a privilege (an admin route, a moderation action; privileged: true on the probe) lets an
// identity without it through, because the route checks only that the token is valid. The
// privileged identity (the check's owner) first shows that the operation works and what it gives;
// then the identity under test sends it. A read is a finding when its answer reproduces the
// privileged identity's (at least half of its fields, with the same values); a write when the
// privileged identity, reading back, finds the effect. A 401 is no pass: it may mean the token was
// refused, not the privilege.

import (
	"context"
	"fmt"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

const bflaID = "authz/bfla"

// BFLA is the check authz/bfla.
type BFLA struct{}

func (BFLA) Meta() Meta {
	return Meta{
		ID:    bflaID,
		Title: "Privileged operation allowed without the privilege",
		CWE:   "CWE-285",
		Description: "Sends operations marked privileged as the privileged identity (the owner), which must succeed, then as " +
			"an identity without the privilege; a read is proven by an answer that reproduces the privileged one, a write " +
			"by the privileged identity reading back its effect.",
		Remediation: remediationBFLA,
		References: []string{
			"https://owasp.org/API-Security/editions/2023/en/0xa5-broken-function-level-authorization/",
			"https://cwe.mitre.org/data/definitions/285.html",
			"https://cheatsheetseries.owasp.org/cheatsheets/Authorization_Cheat_Sheet.html",
		},
	}
}

const remediationBFLA = `Authorize every privileged operation by the caller's role or scope, on the route itself, and deny by default: authentication says who is calling, not what it may do.
- Keep the rule next to the route (a decorator, a middleware or an annotation per route or router group) so that an admin route cannot be added without it, and test that a user token gets 403.
- Read the role from the server's own record (or a verified token claim), never from the request.
Idioms: Flask: a decorator that checks the role, @admin_required, not only @login_required (Flask-Login's login_required checks authentication only). FastAPI: a dependency such as Depends(require_role("admin")) or Security(get_user, scopes=["admin"]). Django: @permission_required or @user_passes_test(lambda u: u.is_staff); in Django REST framework, permission_classes = [IsAdminUser]. Express: a middleware per admin router, router.use(requireRole("admin")). Go net/http: wrap the admin handlers in middleware that checks the role (with tocsin's guard, guard.Require("admin:write", ...) for a scope, and the grant's subject from guard.GrantFrom for a role). Spring: @PreAuthorize("hasRole('ADMIN')") or requestMatchers("/admin/**").hasRole("ADMIN").`

func (c BFLA) Run(ctx context.Context, env *Env) ([]finding.Finding, error) {
	admit := func(p *probe.Probe, _ *identity.Identity) error {
		if !p.Privileged {
			return skip("probe %q is not marked privileged (hint: set probes.%s.privileged: true for an operation only some identities may call)", p.Name, p.Name)
		}
		return nil
	}
	return forEachPair(ctx, env, c.Meta(), "the privileged identity", "the identity under test, without the privilege", admit,
		func(ctx context.Context, x *authzRun, two pair) (*finding.Finding, error) { return x.bfla(ctx, two) })
}

// bfla runs one experiment: the privileged identity's call, then the identity under test's.
func (x *authzRun) bfla(ctx context.Context, two pair) (*finding.Finding, error) {
	p := x.p
	privileged, low := two.owner, two.id
	tokPriv, tokLow, ch := two.ownerTok, two.idTok, two.ownerCh

	vars, err := x.object(ctx, ch, tokPriv, privileged.Name)
	if err != nil && (len(p.Setup) > 0 || p.List != nil && len(p.List.Extract) > 0) {
		return nil, err
	}
	if err != nil {
		vars = ch.begin(tokPriv) // an operation on nothing in particular (GET /admin/accounts)
	}
	if err := authControl(ctx, x.env, p, vars, &x.tl); err != nil {
		return nil, err
	}
	if writes(p) {
		// The privileged identity does it to one fresh resource and sees the effect; the identity
		// under test tries it on another.
		if err := x.ownWrite(ctx, ch, tokPriv, vars, privileged.Name, "a resource of its own"); err != nil {
			return nil, err
		}
		target, err := x.object(ctx, ch, tokPriv, privileged.Name)
		if err != nil {
			return nil, err
		}
		return x.attemptWrite(ctx, privileged, low, ch, tokPriv, tokLow, target, "what only "+privileged.Name+" may change")
	}

	priv, err := x.send(ctx, p, vars, tokPriv)
	if err != nil {
		return nil, err
	}
	x.event(finding.EventControl, privileged.Name+", who holds the privilege, calls it", priv)
	if priv.Outcome != probe.Accepted {
		return nil, inconclusive("%s, the privileged identity, was refused too (%s answered %d): nothing shows the operation works (hint: check the probe and %s's privileges)", privileged.Name, p.Endpoint(), priv.Response.Status, privileged.Name)
	}
	r, err := x.send(ctx, p, vars, tokLow)
	if err != nil {
		return nil, err
	}
	x.event(finding.EventAccess, low.Name+", without the privilege, calls it", r)
	switch authzOutcome(p, r.Response.Status) {
	case probe.Rejected:
		return nil, x.refusedBy(low.Name, r)
	case probe.Inconclusive:
		return nil, inconclusive("%s's call got %d, neither accepted nor refused (hint: set the probe's accept and reject statuses)", low.Name, r.Response.Status)
	}
	matched, total := sameAnswer(priv, r)
	if total == 0 || matched*2 < total {
		return nil, passedBecause("%s's call was answered %d, but not with what %s gets (%d of %d fields alike)", low.Name, r.Response.Status, privileged.Name, matched, total)
	}
	op := operation(p.Method)
	sev, why := authzSeverity(x.meta.ID, op, nil)
	summary := fmt.Sprintf("%s, without the privilege, called %s and got what %s, who holds it, gets: %d of %d fields of its answer alike (status %d).",
		low.Name, p.Endpoint(), privileged.Name, matched, total, r.Response.Status)
	return x.finding(low, sev, why, summary, &finding.Authz{Owner: privileged.Name, Operation: op,
		Fields: []string{fmt.Sprintf("%d of %d fields of %s's answer", matched, total, privileged.Name)}}), nil
}

// sameAnswer counts the fields of the privileged answer that answer holds with the same value, of
// how many; a body that is not JSON counts as one field, equal or not.
func sameAnswer(priv, answer *probe.Result) (matched, total int) {
	pv, okP := viewOf(priv.Response.Body)
	av, okA := viewOf(answer.Response.Body)
	if !okP || !okA {
		if len(priv.Response.Body) == 0 {
			return 0, 0
		}
		if string(priv.Response.Body) == string(answer.Response.Body) {
			return 1, 1
		}
		return 0, 1
	}
	for k, v := range pv {
		if a, ok := av[k]; ok && a == v {
			matched++
		}
	}
	return matched, len(pv)
}
