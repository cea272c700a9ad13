package check

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"strings"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// Controls come before claims. A TOCTOU claim says "the API let an old authorization through", which
// means nothing unless the API refuses no authorization at all, and unless the change it is said to
// ignore is really in effect. The checks call these before (and after) claiming.

// authControl sends p with no credential and with a garbage bearer token, with the experiment's
// vars, and returns an *InconclusiveError if either is accepted: an API that lets anyone through is
// missing authentication, not holding stale authorization. The exchanges join tl.
func authControl(ctx context.Context, env *Env, p *probe.Probe, vars probe.Vars, tl *timeline) error {
	garbage := "tocsin-invalid-" + strings.ToLower(rand.Text())
	for _, c := range []struct{ what, token, label string }{
		{"no token", "", ""},
		{"a garbage token", garbage, "[garbage token]"},
	} {
		r, err := sendControl(ctx, env, p, vars, c.token, c.label, c.what, tl)
		if err != nil {
			return err
		}
		if r.Outcome == probe.Accepted {
			return inconclusive("%s was accepted with %s (status %d): the API does not require authentication here, so neither a token's state nor whose token it is can matter (missing authentication, not a stale decision or a flaw between identities; hint: auth/missing reports it as a finding (add this probe to its probes), and point this check at a probe the API refuses without a valid token)",
				p.Endpoint(), c.what, r.Response.Status)
		}
	}
	return nil
}

// sendControl sends p once as a control: with token (none when empty: no Authorization header, and
// {{token}} elsewhere renders empty) and the experiment's vars. The exchange joins tl, its token
// shown as label (empty for none).
func sendControl(ctx context.Context, env *Env, p *probe.Probe, vars probe.Vars, token, label, what string, tl *timeline) (*probe.Result, error) {
	v := maps.Clone(vars)
	v["token"] = token
	q := p
	if token == "" {
		q = p.WithoutCredential()
	}
	r, err := q.Do(ctx, env.Target.Client, v)
	if err != nil {
		return nil, fmt.Errorf("control with %s: %w", what, err)
	}
	x := exchangeOf(env.Target.Redactor, r.Method, r.URL, label, r.Response.Status, r.Outcome, r.Response.Body, r.Response.Truncated)
	tl.add(r.Response.Sent, finding.EventControl, "with "+what, x, r.Response.Sent, r.Response.Received)
	return r, nil
}

// realTokenAccepted sends p with the identity's real token: an API that refuses it there tells
// nothing by refusing anything else. It returns an *InconclusiveError when the token is not accepted.
func realTokenAccepted(ctx context.Context, env *Env, p *probe.Probe, vars probe.Vars, ident string, tl *timeline) error {
	tok := vars["token"]
	r, err := sendControl(ctx, env, p, vars, tok, tokenLabel(env.Target.Redactor, tok), "the real token of "+ident, tl)
	if err != nil {
		return err
	}
	if r.Outcome != probe.Accepted {
		return inconclusive("%s answered %d to a real token of %q, which the probe's accept statuses do not include: nothing sent in its place can be judged (hint: point the check at a probe the identity may call, and check its accept statuses)",
			p.Endpoint(), r.Response.Status, ident)
	}
	return nil
}

// forgeryControl is what makes an accepted forged token a proof: the identity's real token is
// accepted by p, and a request with no token is refused (else the endpoint is public, and accepts
// anything). It returns an *InconclusiveError when either fails.
func forgeryControl(ctx context.Context, env *Env, p *probe.Probe, vars probe.Vars, ident string, tl *timeline) error {
	if err := realTokenAccepted(ctx, env, p, vars, ident, tl); err != nil {
		return err
	}
	r, err := sendControl(ctx, env, p, vars, "", "", "no token", tl)
	if err != nil {
		return err
	}
	switch r.Outcome {
	case probe.Rejected:
		return nil
	case probe.Accepted:
		return inconclusive("%s was accepted with no token (status %d): it is public or ignores authentication, so a forged token being accepted proves nothing about its verification (auth/missing reports it; hint: point this check at a probe that refuses a request without a token)",
			p.Endpoint(), r.Response.Status)
	}
	return inconclusive("%s answered %d to a request with no token, neither accepted nor refused, so the endpoint could not be shown to require a token (hint: set the probe's reject statuses)",
		p.Endpoint(), r.Response.Status)
}

// changeInEffect sends p with a token minted after the change, to confirm that the change is still
// in effect when a window is claimed: another scan's restore, an administrator or the API itself may
// have undone it. It returns an *InconclusiveError when the fresh token is accepted. The exchange
// joins tl.
func changeInEffect(ctx context.Context, env *Env, ident *identity.Identity, p *probe.Probe, vars probe.Vars, kind string, tl *timeline) error {
	t := env.Target
	red := t.Redactor
	tok, err := ident.Source.Token(ctx)
	if err != nil {
		return inconclusive("could not mint a fresh token for %q to confirm the %s was still in effect: %v (hint: the identity's token source must work while it is downgraded)", ident.Name, kind, red.Error(err))
	}
	v := maps.Clone(vars)
	v["token"] = tok.Value
	r, err := p.Do(ctx, t.Client, v)
	if err != nil {
		return err
	}
	x := resultExchange(red, r)
	tl.add(r.Response.Sent, finding.EventControl, "with a token minted after the "+kind, x, r.Response.Sent, r.Response.Received)
	switch r.Outcome {
	case probe.Rejected:
		return nil
	case probe.Accepted:
		return inconclusive("a token of %q minted after the %s was also accepted by %s (status %d): the %s is not in effect (undone by someone else, or it never took), or the API does not enforce this privilege at all; either way no stale decision is shown (hint: run one scan at a time against an identity, and make the downgrade remove what %s needs)",
			ident.Name, kind, p.Endpoint(), r.Response.Status, kind, p.Endpoint())
	}
	return inconclusive("a token of %q minted after the %s got status %d from %s, neither accepted nor refused, so the %s could not be confirmed (hint: set the probe's accept and reject statuses)",
		ident.Name, kind, r.Response.Status, p.Endpoint(), kind)
}
