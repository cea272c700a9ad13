package check

// auth/missing proves that an operation meant to require authentication answers without it. Each
// probe is first sent with the identity's real token, which must be accepted (the control: else a
// refusal below means nothing). Then it is sent three more times, in place of that token: with no
// credential at all, with a malformed bearer token, and with a well-formed token that no issuer
// made (the identity's JWT claims signed with tocsin's own random key by the same algorithm, or,
// for an opaque token, a random string of the same length and characters). Each one the probe's
// accept statuses take is a finding, with the request as evidence.
//
// A probe that changes data (destructive) runs only on what the scan creates: each request gets its
// own resource from the probe's setup, made with the real token, and teardown removes what is left.
//
// Operations that an API's description declares public (no security requirement) are not flagged;
// they will not reach this check once probes come from the description (issue 13, section 1).

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/forge"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// AuthMissing is the check auth/missing.
type AuthMissing struct{}

func (AuthMissing) Meta() Meta {
	return Meta{
		ID:    "auth/missing",
		Title: "Operation answers without valid authentication",
		CWE:   "CWE-306",
		Description: "Sends each probe with the identity's real token (which must be accepted), then with no credential, a " +
			"malformed bearer token and a well-formed token no issuer made; each accepted is a finding.",
		Remediation: `Authenticate every operation that is not meant to be public, in one place that no route can skip, and refuse anything that is not a valid token from your issuer.
- Deny by default: install the authentication check for the whole API (a middleware or filter) and mark the few public routes explicitly, instead of adding a decorator to each private one.
- Flask: a before_request hook that verifies the token for every endpoint not in an explicit allowlist, or flask_jwt_extended's @jwt_required() on every view (and a test that lists routes without it).
- Go net/http: wrap the whole mux in the middleware that verifies tokens; register public routes on a separate mux.
- Express: app.use(expressjwt({ secret, algorithms: [...] }).unless({ path: [...public] })) before the routers.
- Spring Security: http.authorizeHttpRequests(a -> a.requestMatchers(publicPaths).permitAll().anyRequest().authenticated()).oauth2ResourceServer(o -> o.jwt(...)).
- A presence check ("there is a Bearer header") is not authentication: verify the token's signature, issuer, audience and expiry.`,
		References: []string{
			"https://cwe.mitre.org/data/definitions/306.html",
			"https://cwe.mitre.org/data/definitions/287.html",
			"https://owasp.org/API-Security/editions/2023/en/0xa2-broken-authentication/",
		},
	}
}

// credential is one way auth/missing sends a probe in place of the identity's token.
type credential struct {
	variant, made string
	token         string // "" sends no Authorization header
	label         string // how evidence names it: empty for no token
}

func (c AuthMissing) Run(ctx context.Context, env *Env) ([]finding.Finding, error) {
	meta := c.Meta()
	key, err := forge.NewKey()
	if err != nil {
		return nil, err
	}
	return forEachProbeFindings(ctx, env, meta.ID, func(ctx context.Context, p *probe.Probe, id *identity.Identity) ([]finding.Finding, error) {
		if p.Destructive && len(p.Setup) == 0 {
			return nil, skip("probe %q is destructive and has no setup: sent without valid credentials it could act on something the scan did not create (hint: give it a setup that creates what it acts on)", p.Name)
		}
		return missingAuth(ctx, env, meta, key, p, id)
	})
}

// missingAuth runs auth/missing on one probe.
func missingAuth(ctx context.Context, env *Env, meta Meta, key *forge.Key, p *probe.Probe, id *identity.Identity) ([]finding.Finding, error) {
	t := env.Target
	red := t.Redactor
	start := time.Now()
	real, err := id.Source.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity %q: get token: %w", id.Name, red.Error(err))
	}
	creds, err := credentials(key, real.Value, id.Name)
	if err != nil {
		return nil, err
	}
	for i, c := range creds {
		if c.token != "" {
			red.Add("forged", c.token) // the malformed and the unissued token: secrets of the run like any token
			creds[i].label = red.Label(c.token)
		}
	}

	ch := newChains(env, meta.ID, p, id, "")
	defer ch.teardown(ctx, nil)
	// fresh returns the probe's variables for one request, with a resource of its own when the probe
	// changes data (what one request did must not decide the next), and adds the setup to tl.
	var vars probe.Vars
	fresh := func(tl *timeline) (probe.Vars, error) {
		if vars != nil && !p.Destructive {
			return vars, nil
		}
		v := ch.begin(real)
		results, err := ch.setup(ctx, v)
		for _, r := range results {
			tl.add(r.Response.Sent, finding.EventSetup, "setup with the real token", resultExchange(red, r), r.Response.Sent, r.Response.Received)
		}
		vars = v
		return v, err
	}

	var control timeline
	v, err := fresh(&control)
	if err != nil {
		return nil, err
	}
	if err := realTokenAccepted(ctx, env, p, v, id.Name, &control); err != nil {
		return nil, err
	}

	var out []finding.Finding
	var undecided []string
	for _, c := range creds {
		tl := copyTimeline(control) // each finding's evidence: the control, then its own request
		v, err := fresh(&tl)
		if err != nil {
			return out, err
		}
		v = maps.Clone(v)
		v["token"] = c.token
		q := p
		if c.token == "" {
			q = p.WithoutCredential()
		}
		r, err := q.Do(ctx, t.Client, v)
		if err != nil {
			return out, err
		}
		x := exchangeOf(red, r.Method, r.URL, c.label, r.Response.Status, r.Outcome, r.Response.Body, r.Response.Truncated)
		tl.add(r.Response.Sent, finding.EventForged, c.variant, x, r.Response.Sent, r.Response.Received)
		switch r.Outcome {
		case probe.Inconclusive:
			undecided = append(undecided, fmt.Sprintf("%d to %s", r.Response.Status, c.variant))
			continue
		case probe.Rejected:
			continue
		}
		sev, why := missingAuthSeverity(p.Destructive)
		out = append(out, finding.Finding{
			ID:             finding.StableID(meta.ID, p.Endpoint()+" "+c.variant, id.Name),
			Check:          meta.ID,
			Title:          meta.Title,
			Severity:       sev,
			SeverityReason: why,
			CWE:            meta.CWE,
			Endpoint:       p.Endpoint(),
			Probe:          p.Name,
			Identity:       id.Name,
			Summary: fmt.Sprintf("%s answered %d (accepted) with %s, as it does with a real token of %s: it does not require valid authentication.",
				p.Endpoint(), r.Response.Status, c.variant, id.Name),
			Forged:      []finding.Forged{{Variant: c.variant, Made: c.made, Status: r.Response.Status, Outcome: r.Outcome.String()}},
			Evidence:    tl.relativeTo(start),
			Remediation: meta.Remediation,
			References:  meta.References,
		})
	}
	if len(out) == 0 && len(undecided) > 0 {
		return nil, inconclusive("%s answered %s: neither accepted nor refused, so whether it requires authentication could not be judged (hint: set the probe's reject statuses to what the API answers a request without valid credentials)",
			p.Endpoint(), strings.Join(undecided, ", "))
	}
	return out, nil
}

// credentials are what auth/missing sends in place of the identity's token.
func credentials(key *forge.Key, real, ident string) ([]credential, error) {
	malformed := "tocsin.malformed." + strings.ToLower(rand.Text())
	out := []credential{
		{variant: "no credentials", made: "the probe without its Authorization header"},
		{variant: "a malformed bearer token", made: "Authorization: Bearer followed by a value that is no token format (three dot-separated segments that are not base64url JSON)", token: malformed},
	}
	unissued := credential{variant: "a token no issuer made"}
	if tok, err := forge.Parse(real); err == nil {
		claims, _ := forgeryClaims(tok, "")
		s, err := key.Unissued(tok, claims)
		if err != nil {
			return nil, err
		}
		unissued.token = s
		unissued.made = fmt.Sprintf("the header and claims of %s's token signed %s with a random key tocsin made for this scan", ident, tok.Alg)
		if tok.Alg == "" || !(tok.Asymmetric() || strings.HasPrefix(tok.Alg, "HS")) {
			unissued.made = fmt.Sprintf("the header and claims of %s's token signed HS256 with a random key tocsin made for this scan", ident)
		}
	} else {
		s, err := forge.OpaqueLike(real)
		if err != nil {
			return nil, err
		}
		unissued.token = s
		unissued.made = fmt.Sprintf("a random string as long as %s's token (%d characters), of the same kinds of characters", ident, len(real))
	}
	return append(out, unissued), nil
}

func copyTimeline(tl timeline) timeline {
	return timeline{events: slices.Clone(tl.events), at: slices.Clone(tl.at), sent: slices.Clone(tl.sent), recv: slices.Clone(tl.recv)}
}
