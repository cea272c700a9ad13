package check

// toctou/inflight-revocation proves the source document's flaw: the API checks the token when the
// request starts, then loads and acts, and the action commits after the token's revocation was
// acknowledged, on the strength of the earlier check. It uses the observed-after-revocation oracle
// (docs/checks.md): create a fresh resource, send the action with the identity's fresh token, revoke
// that token while the action is in flight and wait for the acknowledgement at R, then read the
// resource with a second, valid identity. If that read, sent after R, still finds the resource, and
// the action then succeeds and the resource is gone, the action committed after R: proven, with the
// timeline as evidence. Timing alone never flags: a success that arrives after R proves nothing
// without the read. The revocation is swept across the action's measured latency, a few attempts per
// offset, stopping at the first proof.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
	"github.com/tocsin/tocsin/internal/race"
)

const (
	latencyRuns       = 3 // un-raced runs of the action to measure its latency
	attemptsPerOffset = 2
)

// maxPrimedVerifyWait is the longest a primed verify read may wait for its release (the action's
// latency plus the revocation's round trip). Servers drop a connection whose headers do not complete
// in time (Go's ReadHeaderTimeout, nginx's client_header_timeout, often a few seconds), so beyond it
// the read is sent through the HTTP client right after the acknowledgement instead: slower to reach
// the server, which matters only for gaps far shorter than such an action. A var for tests.
var maxPrimedVerifyWait = time.Second

// revokeFractions are where in the action's latency the revocation is sent, most promising first:
// the middle of the flight, then the quarters, then the eighths.
var revokeFractions = []float64{0.5, 0.25, 0.75, 0.125, 0.375, 0.625, 0.875, 0.0625}

// InflightRevocation is the check toctou/inflight-revocation.
type InflightRevocation struct{}

func (InflightRevocation) Meta() Meta {
	return Meta{
		ID:    "toctou/inflight-revocation",
		Title: "Action committed after its token was revoked",
		CWE:   "CWE-367",
		Description: "Revokes the token while a destructive action it authorized is in flight, then reads the resource " +
			"with a second identity: a read after the acknowledged revocation that still finds the resource, followed " +
			"by the action's success, proves the action committed on a check made before the revocation.",
		Remediation: remediationInflight,
		References: []string{
			"https://cwe.mitre.org/data/definitions/367.html",
			"https://www.rfc-editor.org/rfc/rfc7009",
		},
	}
}

const remediationInflight = `Check the grant at the moment of the action, atomically with revocation, not once at the start of the request.
- Re-validate the token (and its scopes) immediately before the sensitive step, and make revocation and the action exclude each other: the action holds the grant (a shared lock, or SELECT ... FOR SHARE on the grant row inside the action's transaction) while it runs, and revocation updates that row, so it waits for in-flight actions and every later action sees it revoked.
- Keep the load-then-act gap out of the authorization decision: authorize at the data layer in the same transaction as the write.
Idioms: Flask: do not authorize the delete from g.user set in before_request; re-validate inside the route under the same lock or transaction as the delete. Go net/http: wrap the load and the delete in guard.Do(ctx, jti, "items:delete", ...) (tocsin's guard package), whose Revoke returns only after in-flight actions finished. Express: re-check in the handler inside the database transaction, not only in an app.use middleware.`

func (c InflightRevocation) Run(ctx context.Context, env *Env) ([]finding.Finding, error) {
	t := env.Target
	verifier := env.Plan.Verifier
	if verifier == "" {
		return nil, skip("no verifier (hint: set checks.%s.verifier to a second identity that stays valid, or to anonymous when the resource can be read without a token)", c.Meta().ID)
	}
	if _, ok := t.Identities[verifier]; !ok && verifier != probe.Anonymous {
		return nil, fmt.Errorf("verifier %q is not defined", verifier)
	}
	return forEachProbe(ctx, env, c.Meta().ID, func(ctx context.Context, p *probe.Probe, id *identity.Identity) (*finding.Finding, error) {
		if id.Revoke == nil {
			return nil, skip("identity %q has no revoke hook (hint: add identities.%s.revoke)", id.Name, id.Name)
		}
		if !id.Source.Fresh() {
			return nil, skip("identity %q has a %s token: each attempt revokes a token, so it needs a command, oauth2 or http source", id.Name, id.Source.Kind())
		}
		if !p.Destructive || len(p.Setup) == 0 || len(p.Verify) == 0 {
			return nil, skip("probe %q: the in-flight check needs an action probe with destructive: true, a setup that creates the resource and a verify that reads it back", p.Name)
		}
		r := &inflightRun{env: env, meta: c.Meta(), ident: id, verifier: verifier, probe: p, ch: newChains(env, c.Meta().ID, p, id, verifier)}
		// Whatever happens, remove what the attempts created and their actions did not; without a
		// teardown the action itself, with a fresh token, removes a resource.
		defer r.ch.teardown(ctx, func(ctx context.Context, vars probe.Vars) error {
			res, err := p.Do(ctx, t.Client, vars)
			if err == nil && res.Outcome != probe.Accepted {
				err = fmt.Errorf("the action answered %d", res.Response.Status)
			}
			return err
		})
		return r.run(ctx)
	})
}

type inflightRun struct {
	env         *Env
	meta        Meta
	ident       *identity.Identity
	verifier    string // an identity's name, or probe.Anonymous
	probe       *probe.Probe
	ch          *chains
	primeVerify bool // raced attempts prime the verify read (see maxPrimedVerifyWait)
	// verifyLatency is the verify read's median round trip when nothing races it.
	verifyLatency time.Duration
	controlled    bool     // the action was shown to be refused without a valid token
	controls      timeline // those requests, for the finding's evidence
	verifierSees  bool     // the verifier was shown to read what a setup created
}

// attemptResult is one raced attempt, with absolute times.
type attemptResult struct {
	offset                 time.Duration
	actionStart            time.Time // when the action's request was written
	action                 *probe.Result
	revokeSent, ack        time.Time
	verify, final          *probe.Result
	setup                  *probe.Result
	tokenAt                time.Time
	token                  string
	verifyToken            string // the verify read's token; empty when it is anonymous
	existedAfterAck, proof bool
}

func (r *inflightRun) run(ctx context.Context) (*finding.Finding, error) {
	// Measure the action when nothing races it, and check that setup, action and verify mean what
	// the oracle needs: the action succeeds with a fresh token and the verify read then finds nothing.
	var latencies, verifyLatencies []time.Duration
	for range latencyRuns {
		a, err := r.attempt(ctx, latencyRun, 0)
		if err != nil {
			return nil, err
		}
		if a.action.Outcome != probe.Accepted {
			return nil, fmt.Errorf("probe %q: %s answered %d with a fresh token of %q and no revocation (hint: the action must succeed on a resource its setup created; check accept statuses and scopes)", r.probe.Name, r.probe.Endpoint(), a.action.Response.Status, r.ident.Name)
		}
		if a.final.Outcome != probe.Rejected {
			return nil, fmt.Errorf("probe %q: verify %s still answers %d after the action succeeded (hint: verify must read the resource the action removes; its accept statuses mean \"still there\", its reject statuses \"gone\")", r.probe.Name, r.readEndpoint(), a.final.Response.Status)
		}
		latencies = append(latencies, a.action.Response.Received.Sub(a.actionStart))
		verifyLatencies = append(verifyLatencies, a.final.Response.Received.Sub(a.final.Response.Sent))
	}
	slices.Sort(latencies)
	latency := latencies[len(latencies)/2]
	slices.Sort(verifyLatencies)
	r.verifyLatency = verifyLatencies[len(verifyLatencies)/2]

	// Control: revoke first, then act. A refusal shows the API does check revocation, so a proof
	// below is about the moment of the check, not about a cache. It also times the revocation.
	control, err := r.attempt(ctx, controlRun, 0)
	if err != nil {
		return nil, err
	}
	refusedAfter := control.action.Outcome == probe.Rejected
	revokeRTT := control.ack.Sub(control.revokeSent)
	r.primeVerify = latency+revokeRTT <= maxPrimedVerifyWait

	var tried []float64
	attempts, waited := 0, 0
	for _, offset := range revokeOffsets(latency, revokeRTT) {
		tried = append(tried, finding.Round(ms(offset)))
		for range attemptsPerOffset {
			attempts++
			r.env.progress("%s: attempt %d: revocation sent %.3f ms from the action's release (action %.3f ms, revocation %.3f ms)", r.meta.ID, attempts, ms(offset), ms(latency), ms(revokeRTT))
			a, err := r.attempt(ctx, racedRun, offset)
			if err != nil {
				return nil, err
			}
			if a.proof {
				return r.finding(a, latency, tried, attempts, refusedAfter), nil
			}
			if r.verifyWaited(a) {
				waited++
			}
		}
	}
	// A read that answered "gone" only after waiting behind the action shows the state when it was
	// served, not at the acknowledgement: such attempts decide nothing, and when they are most of
	// the sweep the check cannot pass.
	if 2*waited >= attempts {
		return nil, inconclusive("verify reads waited behind the action %d of %d times (a read usually takes %s; these were served only as the action finished), so their \"gone\" says nothing about the moment of the revocation (hint: verify with a read that does not write: verifier: anonymous on a public read, another endpoint, or an identity whose requests the API does not record)",
			waited, attempts, fmtMS(ms(r.verifyLatency)))
	}
	if waited > 0 {
		// The pass stands on the other attempts; say that these decided nothing.
		return nil, passedBecause("no action committed after its revocation was acknowledged in %d attempts; %d more were not counted, their verify reads having waited behind the action (a read usually takes %s)",
			attempts-waited, waited, fmtMS(ms(r.verifyLatency)))
	}
	return nil, nil
}

// verifyWaited reports whether an attempt's verify read, sent clearly before the action answered,
// answered "gone" only after waiting: it took much longer than a read takes when nothing races it,
// or it came back with the action's own answer. Such a read shows the state when it was finally
// served (after the action committed), not at the acknowledgement.
func (r *inflightRun) verifyWaited(a *attemptResult) bool {
	v := a.verify
	// tol absorbs the scheduling between two goroutines' clock reads: where the revocation waited
	// for the action (a correct API), the action's answer and the acknowledgement arrive together,
	// and the read goes out in the same instant.
	tol := max(time.Millisecond, r.verifyLatency)
	actionAnswered := a.action.Response.Received
	if v == nil || v.Outcome != probe.Rejected || !v.Response.Sent.Before(actionAnswered.Add(-tol)) {
		return false
	}
	took := v.Response.Received.Sub(v.Response.Sent)
	slow := took > max(3*r.verifyLatency, r.verifyLatency+2*time.Millisecond)
	withAction := !v.Response.Received.Before(actionAnswered.Add(-tol))
	return slow || withAction
}

// revokeOffsets returns when to send the revocation, relative to the action's release, most
// promising first. The usual flaw checks at the start of the request, so the best moment is the
// revocation taking effect just after the action arrives: the revocation is sent about half its
// round trip before the release (a negative offset), then a little later in steps of a sixteenth of
// the action's latency. Then the revocation sweeps the action's flight (an eighth, a quarter, half,
// three quarters), for APIs that check later. Offsets closer than half a step are tried once.
func revokeOffsets(latency, revokeRTT time.Duration) []time.Duration {
	step := min(max(latency/16, 20*time.Microsecond), 2*time.Millisecond)
	centre := -revokeRTT / 2
	var out []time.Duration
	add := func(d time.Duration) {
		for _, o := range out {
			if (d - o).Abs() < step/2 {
				return
			}
		}
		out = append(out, d)
	}
	for _, k := range []time.Duration{1, 0, 2, 4} {
		add(centre + k*step)
	}
	for _, frac := range []float64{0.125, 0.25, 0.5, 0.75} {
		add(time.Duration(frac * float64(latency)))
	}
	return out
}

// attemptKind says what an attempt does with the revocation.
type attemptKind int

const (
	latencyRun attemptKind = iota // no revocation while the action runs: measures the action
	controlRun                    // the revocation is acknowledged before the action is released
	racedRun                      // the revocation is sent at an offset from the action's release
)

// attempt creates a resource and acts on it. A racedRun sends the revocation offset after the
// action's release (before it when negative), then reads the resource as the verifier the moment the
// revocation is acknowledged.
func (r *inflightRun) attempt(ctx context.Context, kind attemptKind, offset time.Duration) (*attemptResult, error) {
	t := r.env.Target
	a := &attemptResult{offset: offset}
	tok, err := r.ident.Source.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity %q: get token: %w", r.ident.Name, t.Redactor.Error(err))
	}
	a.tokenAt, a.token = time.Now(), tok.Value
	vars := r.ch.begin(tok)
	setup, err := r.ch.setup(ctx, vars)
	if err != nil {
		return nil, err
	}
	a.setup = setup[len(setup)-1]
	if !r.controlled {
		// Controls before claims, once: the action must be refused without a valid token. A
		// refused control leaves the resource for this attempt's action; an accepted one may have
		// removed it, and the teardown sees to what is left.
		if err := authControl(ctx, r.env, r.probe, vars, &r.controls); err != nil {
			return nil, err
		}
		r.controlled = true
	}
	read, verifyVars, err := r.ch.verifyRead(ctx, vars)
	if err != nil {
		return nil, err
	}
	a.verifyToken = verifyVars["token"]
	if !r.verifierSees {
		// Control, once: the verifier sees the resource before the action. One that may not read
		// it (another account's note answers 404) would find it "gone" whatever happened, and the
		// resource would be left behind as removed.
		v, err := read.Do(ctx, t.Client, verifyVars)
		if err != nil {
			return nil, fmt.Errorf("probe %q: verify: %w", r.probe.Name, t.Redactor.Error(err))
		}
		if v.Outcome != probe.Accepted {
			return nil, inconclusive("control: the verifier (%s) cannot read what the setup created: %s answered %d before the action, so its \"gone\" after it would prove nothing (hint: set checks.%s.verifier to an identity that may read the resource, or anonymous for a public read)", r.verifier, read.Endpoint(), v.Response.Status, r.meta.ID)
		}
		r.verifierSees = true
	}

	revoke := func() error {
		a.revokeSent = time.Now()
		if err := r.ident.Revoke.Run(ctx, tok); err != nil {
			return r.revokeFailed(err)
		}
		a.ack = time.Now()
		return nil
	}

	// The action, and in a raced run the verify read, go through the race engine, primed: connected
	// and written up to the last byte of the header section, so the server has read them but cannot
	// start them. A release is then one small write from this goroutine: the action's offsets count
	// from it, and the read reaches the server microseconds after the acknowledgement, without the
	// HTTP client's connection pool and goroutines in between.
	// The action, the revocation and both reads must not wait for the rate limit halfway.
	if err := t.Client.Ready(ctx, 4); err != nil {
		return nil, err
	}
	action, err := r.prime(ctx, r.probe, vars)
	if err != nil {
		return nil, r.actionFailed(err, 0)
	}
	defer action.Close()
	primed := time.Now()
	var verify *primedProbe
	if kind == racedRun && r.primeVerify {
		if verify, err = r.prime(ctx, read, verifyVars); err != nil {
			return nil, fmt.Errorf("probe %q: verify: %w", r.probe.Name, t.Redactor.Error(err))
		}
		defer verify.Close()
	}

	var revokeErr error
	switch {
	case kind == controlRun:
		// Revoke first, then act: without an acknowledged revocation the action is not sent (the
		// deferred Close drops it unserved).
		if revokeErr = revoke(); revokeErr == nil {
			a.actionStart = action.Release().Start
		}
	case kind == racedRun && offset < 0:
		// The revocation goes first and the action is released while it is on its way.
		started, done := make(chan time.Time, 1), make(chan error, 1)
		go func() {
			started <- time.Now()
			done <- revoke()
		}()
		if err := sleepUntil(ctx, (<-started).Add(-offset)); err != nil {
			<-done
			return nil, err
		}
		a.actionStart = action.Release().Start
		revokeErr = <-done
	case kind == racedRun:
		a.actionStart = action.Release().Start
		if err := sleepUntil(ctx, a.actionStart.Add(offset)); err != nil {
			return nil, err
		}
		revokeErr = revoke()
	default:
		a.actionStart = action.Release().Start
	}
	if revokeErr != nil {
		// The revocation's failure is the cause, whatever became of the action: a hook that stalls
		// keeps the primed action waiting past its connection's deadline, and the action's error
		// would blame the target. A released action is let finish before the teardown.
		if !a.actionStart.IsZero() {
			_, _ = action.result()
		}
		return nil, revokeErr
	}
	var verifyErr error
	if kind == racedRun {
		// The oracle: read the resource right after the acknowledgement, as an identity that stays
		// valid.
		if verify != nil {
			verify.Release()
		} else {
			a.verify, verifyErr = read.Do(ctx, t.Client, verifyVars)
		}
	}
	a.action, err = action.result()
	if err != nil {
		return nil, r.actionFailed(err, a.actionStart.Sub(primed))
	}
	if verify != nil {
		if a.verify, err = verify.result(); err != nil {
			return nil, fmt.Errorf("probe %q: verify: %w", r.probe.Name, t.Redactor.Error(err))
		}
	}
	if verifyErr != nil {
		return nil, fmt.Errorf("probe %q: verify: %w", r.probe.Name, t.Redactor.Error(verifyErr))
	}
	if a.final, err = read.Do(ctx, t.Client, verifyVars); err != nil {
		return nil, fmt.Errorf("probe %q: verify: %w", r.probe.Name, t.Redactor.Error(err))
	}
	for _, v := range []*probe.Result{a.verify, a.final} {
		if v != nil && v.Outcome == probe.Inconclusive {
			return nil, fmt.Errorf("probe %q: verify %s answered %d, neither \"still there\" (accept) nor \"gone\" (reject) (hint: set the verify probe's accept and reject statuses, e.g. accept [200], reject [404])", r.probe.Name, read.Endpoint(), v.Response.Status)
		}
	}
	if kind == latencyRun {
		// Latency runs do not race a revocation; spend the token anyway so that no token the scan
		// minted stays usable after it.
		_ = r.ident.Revoke.Run(ctx, tok)
	}
	if a.final.Outcome == probe.Rejected {
		r.ch.markGone(vars) // the action removed it; nothing for the teardown to do
	}
	a.existedAfterAck = a.verify != nil && a.verify.Outcome == probe.Accepted && a.verify.Response.Sent.After(a.ack)
	a.proof = a.existedAfterAck && a.action.Outcome == probe.Accepted && a.final.Outcome == probe.Rejected
	return a, nil
}

// revokeFailed is the error of a revocation hook that failed or did not answer in time: the cause
// of the attempt's failure, named as the hook, with what to do about it.
func (r *inflightRun) revokeFailed(err error) error {
	return fmt.Errorf("identity %q: revocation (%s hook) failed: %w (hint: fix identities.%s.revoke: each attempt of this check revokes a fresh token with it and waits for its acknowledgement, which must come within limits.timeout, %s)",
		r.ident.Name, r.ident.Revoke.Kind(), r.env.Target.Redactor.Error(err), r.ident.Name, r.env.Target.Client.Timeout())
}

// actionFailed is the error of an action that could not be primed or got no answer. held is how
// long it stayed primed before its release: one held for a revocation that took long (the control
// attempt revokes before it releases) may have outlived its connection's deadline (limits.timeout
// from priming) or the server's patience with unfinished headers, which says nothing about HTTP/1.1.
func (r *inflightRun) actionFailed(err error, held time.Duration) error {
	err = r.env.Target.Redactor.Error(err)
	if held > min(maxPrimedVerifyWait, r.env.Target.Client.Timeout()/2) {
		return fmt.Errorf("probe %q: action: %w (it waited %s, primed on its own connection, for the revocation's acknowledgement; hint: make identities.%s.revoke answer sooner, or raise limits.timeout, %s)",
			r.probe.Name, err, held.Round(time.Millisecond), r.ident.Name, r.env.Target.Client.Timeout())
	}
	return fmt.Errorf("probe %q: action: %w (hint: this check sends the action and the verify read over HTTP/1.1 on connections of their own, to time them; the target must accept HTTP/1.1)", r.probe.Name, err)
}

// readEndpoint names the verify read for messages.
func (r *inflightRun) readEndpoint() string { return r.probe.Verify[len(r.probe.Verify)-1].Endpoint() }

// primedProbe is a probe's request primed on its own connection.
type primedProbe struct {
	*race.Primed
	probe *probe.Probe
	req   race.Request
	shown string // the URL as evidence shows it (probe.ShownURL)
	token string // the token it carries
}

// prime renders p and primes it, with the end of its headers withheld.
func (r *inflightRun) prime(ctx context.Context, p *probe.Probe, vars probe.Vars) (*primedProbe, error) {
	req, err := raceRequest(p, vars)
	if err != nil {
		return nil, err
	}
	pr, err := race.Prime(ctx, race.Options{Client: r.env.Target.Client, Mode: race.LastByteH1, HoldHeaders: true}, []race.Request{req})
	if err != nil {
		return nil, err
	}
	shown, err := p.ShownURL(vars, r.env.Target.Redactor)
	if err != nil {
		shown = req.URL
	}
	return &primedProbe{Primed: pr, probe: p, req: req, shown: shown, token: vars["token"]}, nil
}

// result waits for the response and judges it as the probe says.
func (pp *primedProbe) result() (*probe.Result, error) {
	resp := pp.Wait().Responses[0]
	if resp.Err != nil {
		return nil, resp.Err
	}
	return &probe.Result{
		Method:   pp.req.Method,
		URL:      pp.shown,
		Token:    pp.token,
		Response: &client.Response{Status: resp.Status, Header: resp.Header, Body: resp.Body, Truncated: resp.Truncated, Sent: resp.Sent, Received: resp.Received},
		Outcome:  probe.Judge(resp.Status, pp.probe.Accept, pp.probe.Reject),
	}, nil
}

func (r *inflightRun) finding(a *attemptResult, latency time.Duration, tried []float64, attempts int, refusedAfter bool) *finding.Finding {
	red := r.env.Target.Redactor
	rel := func(x time.Time) float64 { return finding.Round(ms(x.Sub(a.ack))) }
	exch := func(res *probe.Result, token string) *finding.Exchange {
		x := exchangeOf(red, res.Method, res.URL, tokenLabel(red, token), res.Response.Status, res.Outcome, res.Response.Body, res.Response.Truncated)
		x.SentMS, x.ReceivedMS = rel(res.Response.Sent), rel(res.Response.Received)
		return x
	}
	events := []finding.Event{
		{AtMS: rel(a.tokenAt), Kind: finding.EventToken, Detail: fmt.Sprintf("fresh token for %s (%s)", r.ident.Name, r.ident.Source.Kind())},
		{AtMS: rel(a.setup.Response.Sent), Kind: finding.EventSetup, Detail: "resource created", HTTP: exch(a.setup, a.token)},
		{AtMS: rel(a.action.Response.Sent), Kind: finding.EventAction, Detail: "action sent", HTTP: exch(a.action, a.token)},
		{AtMS: rel(a.revokeSent), Kind: finding.EventChangeSent, Detail: "revocation sent (" + r.ident.Revoke.Kind() + ")"},
		{AtMS: 0, Kind: finding.EventChangeAcked, Detail: "revocation acknowledged"},
		{AtMS: rel(a.verify.Response.Sent), Kind: finding.EventVerify, Detail: "resource still there after the acknowledgement (as " + r.verifier + ")", HTTP: exch(a.verify, a.verifyToken)},
		{AtMS: rel(a.action.Response.Received), Kind: finding.EventAnswered, Detail: fmt.Sprintf("action answered %d", a.action.Response.Status)},
		{AtMS: rel(a.final.Response.Sent), Kind: finding.EventVerify, Detail: "resource gone (as " + r.verifier + ")", HTTP: exch(a.final, a.verifyToken)},
	}
	// The controls, from the first attempt: the action refused with no token and a garbage one.
	events = append(events, r.controls.relativeTo(a.ack)...)
	sort.SliceStable(events, func(i, j int) bool { return events[i].AtMS < events[j].AtMS })
	sinceAction := func(x time.Time) float64 { return finding.Round(ms(x.Sub(a.action.Response.Sent))) }
	in := &finding.Inflight{
		ActionLatencyMS:        finding.Round(ms(latency)),
		AckMS:                  sinceAction(a.ack),
		VerifyMS:               sinceAction(a.verify.Response.Sent),
		AnsweredMS:             sinceAction(a.action.Response.Received),
		RevokeOffsetsHitMS:     []float64{finding.Round(ms(a.offset))},
		RevokeOffsetsTriedMS:   tried,
		Attempts:               attempts,
		RefusedAfterRevocation: refusedAfter,
	}
	summary := fmt.Sprintf("%s succeeded (%d) and removed the resource after the revocation of its token was acknowledged: the revocation was acknowledged %s after the action was sent, a read %s later still found the resource, and the action answered at %s (attempt %d, revocation sent %s from the release of a %s action).",
		r.probe.Endpoint(), a.action.Response.Status, fmtMS(in.AckMS), fmtMS(in.VerifyMS-in.AckMS), fmtMS(in.AnsweredMS), attempts, fmtMS(ms(a.offset)), fmtMS(in.ActionLatencyMS))
	reason := "destructive action committed on a check made before the revocation was acknowledged"
	if !refusedAfter {
		summary += " The API also accepted the action when the token was revoked before it was sent: it does not see revocations promptly at all (see toctou/revoked-token-accepted)."
		reason += "; revoked tokens are accepted even before the action starts"
	}
	return &finding.Finding{
		ID:             finding.StableID(r.meta.ID, r.probe.Endpoint(), r.ident.Name),
		Check:          r.meta.ID,
		Title:          r.meta.Title,
		Severity:       finding.High,
		SeverityReason: reason,
		CWE:            r.meta.CWE,
		Endpoint:       r.probe.Endpoint(),
		Probe:          r.probe.Name,
		Identity:       r.ident.Name,
		Summary:        summary,
		Inflight:       in,
		Evidence:       events,
		Remediation:    r.meta.Remediation,
		References:     r.meta.References,
	}
}
