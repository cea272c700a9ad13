package check

// The jwt/* checks share one shape. Take the identity's real JWT; show that the probe accepts it and
// refuses a request with no token (forgeryControl: otherwise an accepted forgery proves nothing);
// then send tokens forged from it. An accepted forgery is the proof. When one is accepted and the
// check names a second identity (verifier), the same forgery is sent once more claiming that
// identity's subject: accepted, it impersonates, which raises the finding to critical. A way of
// forging that was proven is left in the ledger, for jwt/expired-accepted.
//
// Every forged token is registered with the target's redactor before it is sent, so reports show
// it as [forged:1a2b3c4d]; Forged.Made says how to build it again.

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/forge"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// Forger is a way to sign tokens for an identity that a check proved the API accepts.
type Forger struct {
	Check, Probe string
	How          string // e.g. "signed HS256 with the cracked secret [secret:1a2b3c4d]"
	Sign         func(claims map[string]any) (string, error)
}

func (l *Ledger) proveForging(identity string, f Forger) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.forgers == nil {
		l.forgers = map[string]Forger{}
	}
	if _, ok := l.forgers[identity]; !ok {
		l.forgers[identity] = f
	}
}

// forger returns a proven way to forge identity's tokens, if a check found one.
func (l *Ledger) forger(identity string) (Forger, bool) {
	if l == nil {
		return Forger{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.forgers[identity]
	return f, ok
}

// variant is one forged token a check sends.
type variant struct {
	name, made string
	// sign builds the token from the claims to carry (the identity's, or with another subject).
	sign func(claims map[string]any) (string, error)
}

// shortLived is how close to its exp a token's claims must be for a re-signed forgery to move exp
// later: a token that expires while the check works would be refused for that alone.
const shortLived = time.Minute

// forgery is one jwt/* experiment: the identity's JWT, the probe, and what was sent.
type forgery struct {
	env   *Env
	meta  Meta
	p     *probe.Probe
	id    *identity.Identity
	real  identity.Token
	tok   *forge.Token
	ch    *chains
	vars  probe.Vars // the probe's variables, with the real token
	tl    timeline
	start time.Time

	forged []finding.Forged
	note   string // a sentence the finding's summary ends with (how a secret was found)
	// describe and rate, when set, replace the summary's first sentence and the severity rule.
	describe func(accepted []finding.Forged) string
	rate     func(accepted []finding.Forged) (finding.Severity, string)
}

// startForgery mints the identity's token; the check is skipped when it is not a JWT or the probe
// changes data.
func startForgery(ctx context.Context, env *Env, meta Meta, p *probe.Probe, id *identity.Identity) (*forgery, error) {
	if p.Destructive {
		return nil, skip("probe %q is destructive; %s sends forged tokens to read probes only (hint: name a GET the identity may call)", p.Name, meta.ID)
	}
	real, err := id.Source.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity %q: get token: %w", id.Name, env.Target.Redactor.Error(err))
	}
	tok, err := forge.Parse(real.Value)
	if err != nil {
		return nil, notApplicable("the token of identity %q is not a JWT (%v): there is no JWT signature to defeat (hint: to test JWT verification, name an identity whose tokens are JWTs, three base64url segments)", id.Name, err)
	}
	return &forgery{env: env, meta: meta, p: p, id: id, real: real, tok: tok, start: time.Now()}, nil
}

// begin runs the probe's setup with the real token and the controls. end must follow.
func (f *forgery) begin(ctx context.Context) error {
	red := f.env.Target.Redactor
	f.ch = newChains(f.env, f.meta.ID, f.p, f.id, "")
	f.vars = f.ch.begin(f.real)
	results, err := f.ch.setup(ctx, f.vars)
	for _, r := range results {
		f.tl.add(r.Response.Sent, finding.EventSetup, "setup", resultExchange(red, r), r.Response.Sent, r.Response.Received)
	}
	if err != nil {
		return err
	}
	return forgeryControl(ctx, f.env, f.p, f.vars, f.id.Name, &f.tl)
}

// end removes what the setup created.
func (f *forgery) end(ctx context.Context) {
	if f.ch != nil {
		f.ch.teardown(ctx, nil)
	}
}

// runForgery is the whole experiment for checks whose forgeries can be listed before anything is
// sent: plan returns them (it may work offline or fetch what it needs); none means nothing to try,
// and the probe passes without a request.
func runForgery(ctx context.Context, env *Env, meta Meta, p *probe.Probe, id *identity.Identity, plan func(ctx context.Context, f *forgery) ([]variant, error)) (*finding.Finding, error) {
	f, err := startForgery(ctx, env, meta, p, id)
	if err != nil {
		return nil, err
	}
	variants, err := plan(ctx, f)
	if err != nil || len(variants) == 0 {
		return nil, err
	}
	defer f.end(ctx)
	if err := f.begin(ctx); err != nil {
		return nil, err
	}
	if err := f.tryAll(ctx, variants); err != nil {
		return nil, err
	}
	return f.result()
}

// tryAll sends each variant with the identity's own claims; if one is accepted, the first accepted
// is sent again claiming the second identity's subject, when the check names one.
func (f *forgery) tryAll(ctx context.Context, variants []variant) error {
	var proven *variant
	for i := range variants {
		v := &variants[i]
		o, err := f.try(ctx, *v, "")
		if err != nil {
			return err
		}
		if o == probe.Accepted && proven == nil {
			proven = v
			f.env.Ledger.proveForging(f.id.Name, Forger{Check: f.meta.ID, Probe: f.p.Name, How: v.made, Sign: v.sign})
		}
	}
	if proven == nil {
		return nil
	}
	other, err := f.otherSubject(ctx)
	if err != nil || other == "" {
		return err
	}
	_, err = f.try(ctx, *proven, other)
	return err
}

// try builds v with the identity's claims (sub replaced by asSubject when set) and sends it.
func (f *forgery) try(ctx context.Context, v variant, asSubject string) (probe.Outcome, error) {
	claims, moved := f.claims(asSubject)
	token, err := v.sign(claims)
	if err != nil {
		return probe.Inconclusive, fmt.Errorf("forge %s: %w", v.name, err)
	}
	made := v.made + moved
	name := v.name
	if asSubject != "" {
		made += fmt.Sprintf("; sub set to %q, the subject of %s", asSubject, f.env.Plan.VerifierFor(f.p.Name))
		name += ", claiming " + f.env.Plan.VerifierFor(f.p.Name)
	}
	sub, _ := claims["sub"].(string)
	return f.send(ctx, token, finding.Forged{Variant: name, Made: made, Subject: sub, OtherSubject: asSubject != ""})
}

// send registers token as a secret of the run and sends the probe with it; the exchange joins the
// timeline and fg, completed with the answer, the finding's list of forged tokens.
func (f *forgery) send(ctx context.Context, token string, fg finding.Forged) (probe.Outcome, error) {
	red := f.env.Target.Redactor
	red.Add("forged", token)
	v := maps.Clone(f.vars)
	v["token"] = token
	r, err := f.p.Do(ctx, f.env.Target.Client, v)
	if err != nil {
		return probe.Inconclusive, err
	}
	fg.Status, fg.Outcome = r.Response.Status, r.Outcome.String()
	f.forged = append(f.forged, fg)
	f.tl.add(r.Response.Sent, finding.EventForged, fg.Variant, resultExchange(red, r), r.Response.Sent, r.Response.Received)
	return r.Outcome, nil
}

// claims returns a copy of the identity's claims for a forgery; see forgeryClaims.
func (f *forgery) claims(asSubject string) (claims map[string]any, moved string) {
	return forgeryClaims(f.tok, asSubject)
}

// forgeryClaims returns a copy of tok's claims for a forgery, with sub replaced when asSubject is
// set. A short-lived token's exp is moved later, and moved says so for Made.
func forgeryClaims(tok *forge.Token, asSubject string) (claims map[string]any, moved string) {
	claims = tok.CopyClaims()
	if asSubject != "" {
		claims["sub"] = asSubject
	}
	if exp, ok := tok.Expiry(); ok && time.Until(exp) < shortLived {
		claims["exp"] = forge.NumericDate(time.Now().Add(10 * time.Minute))
		moved = "; exp moved 10 min ahead (the real token was about to expire)"
	}
	return claims, moved
}

// otherSubject is the sub of the check's second identity (verifier), or "" when the check names
// none, its token is no JWT or it has no other subject.
func (f *forgery) otherSubject(ctx context.Context) (string, error) {
	name := f.env.Plan.VerifierFor(f.p.Name)
	other, ok := f.env.Target.Identities[name]
	if name == "" || name == probe.Anonymous || name == f.id.Name || !ok {
		return "", nil
	}
	tok, err := other.Source.Token(ctx)
	if err != nil {
		return "", fmt.Errorf("identity %q: get token: %w", name, f.env.Target.Redactor.Error(err))
	}
	t, err := forge.Parse(tok.Value)
	if err != nil || t.Subject() == "" || t.Subject() == f.tok.Subject() {
		return "", nil
	}
	return t.Subject(), nil
}

// result is the experiment's verdict: a finding when a forgery was accepted, inconclusive when one
// got an answer that is neither accepted nor refused, else passed.
func (f *forgery) result() (*finding.Finding, error) {
	var accepted, undecided []finding.Forged
	for _, fg := range f.forged {
		switch fg.Outcome {
		case probe.Accepted.String():
			accepted = append(accepted, fg)
		case probe.Inconclusive.String():
			undecided = append(undecided, fg)
		}
	}
	if len(accepted) == 0 {
		if len(undecided) > 0 {
			return nil, inconclusive("%s answered %d to the forged token %q, neither accepted nor refused, so its verification could not be judged (hint: set the probe's reject statuses to what the API answers a bad token)",
				f.p.Endpoint(), undecided[0].Status, undecided[0].Variant)
		}
		return nil, nil
	}
	describe, rate := f.describe, f.rate
	if describe == nil {
		describe = f.defaultDescription
	}
	if rate == nil {
		rate = forgerySeverity
	}
	sev, why := rate(accepted)
	summary := describe(accepted)
	if f.note != "" {
		summary += " " + f.note
	}
	return &finding.Finding{
		ID:             finding.StableID(f.meta.ID, f.p.Endpoint(), f.id.Name),
		Check:          f.meta.ID,
		Title:          f.meta.Title,
		Severity:       sev,
		SeverityReason: why,
		CWE:            f.meta.CWE,
		Endpoint:       f.p.Endpoint(),
		Probe:          f.p.Name,
		Identity:       f.id.Name,
		Summary:        summary,
		Forged:         f.forged,
		Evidence:       f.tl.relativeTo(f.start),
		Remediation:    f.meta.Remediation,
		References:     f.meta.References,
	}, nil
}

func (f *forgery) defaultDescription(accepted []finding.Forged) string {
	names := make([]string, len(accepted))
	for i, a := range accepted {
		names[i] = a.Variant
	}
	return fmt.Sprintf("%s accepted %d of the %d tokens forged from a JWT of %s (%s, alg %s), where the real token is accepted and a request without one refused: %s.",
		f.p.Endpoint(), len(accepted), len(f.forged), f.id.Name, f.id.Source.Kind(), f.tok.Alg, strings.Join(names, "; "))
}

// fetch GETs url through the target's client, so that only an allowed origin is contacted and the
// request counts against the budget, and returns the body of a 200.
func (f *forgery) fetch(ctx context.Context, url, what string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	// Public metadata: its credential-named keys (id_token_signing_alg_values_supported: ["RS256"])
	// describe credentials and carry none, so they are not learned as secrets.
	resp, err := f.env.Target.Client.Do(client.Description(ctx), req)
	if err != nil {
		return nil, err
	}
	f.tl.add(resp.Sent, finding.EventNote, "fetched "+what, exchangeOf(f.env.Target.Redactor, http.MethodGet, url, "", resp.Status, probe.Judge(resp.Status, []int{200}, nil), resp.Body, resp.Truncated), resp.Sent, resp.Received)
	if resp.Status != http.StatusOK {
		return nil, fmt.Errorf("GET %s answered %s", url, resp.StatusText())
	}
	return resp.Body, nil
}
