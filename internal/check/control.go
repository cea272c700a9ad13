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
	t := env.Target
	red := t.Redactor
	garbage := "tocsin-invalid-" + strings.ToLower(rand.Text())
	for _, c := range []struct {
		what  string
		probe *probe.Probe
		token string
	}{
		{"no token", p.WithoutCredential(), ""},
		{"a garbage token", p, garbage},
	} {
		v := maps.Clone(vars)
		v["token"] = c.token // empty: no Authorization header, and {{token}} elsewhere renders empty
		r, err := c.probe.Do(ctx, t.Client, v)
		if err != nil {
			return fmt.Errorf("control with %s: %w", c.what, err)
		}
		label := "(none)"
		if c.token != "" {
			label = "[garbage token]"
		}
		x := exchangeOf(red, r.Method, r.URL, label, r.Response.Status, r.Outcome, r.Response.Body, r.Response.Truncated)
		tl.add(r.Response.Sent, finding.EventControl, "control: "+c.what, x, r.Response.Sent, r.Response.Received)
		if r.Outcome == probe.Accepted {
			return inconclusive("%s was accepted with %s (status %d): the API does not require authentication here, so neither a token's state nor whose token it is can matter (missing authentication, not a stale decision or a flaw between identities; hint: point this check at a probe the API refuses without a valid token, and fix the endpoint's authentication)",
				p.Endpoint(), c.what, r.Response.Status)
		}
	}
	return nil
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
	tl.add(r.Response.Sent, finding.EventControl, "control: a token minted after the "+kind, x, r.Response.Sent, r.Response.Received)
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
