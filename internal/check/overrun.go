package check

// race/limit-overrun proves that a one-shot action (redeem a coupon, spend a voucher, claim a
// reward) can be done more times than its limit allows when the requests arrive together: the API
// checks "not used yet" and marks it used in two steps, and requests landing between the steps all
// pass the check. It first learns the limit by sending the action N times one after another against a
// fresh resource (the setup creates it), then sends N synchronised copies against another fresh
// resource through the race engine (HTTP/2 single-packet where the server negotiates it, else
// HTTP/1.1 last-byte sync). More successes in the race than in the sequential baseline is the proof.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
	"github.com/tocsin/tocsin/internal/race"
)

// overrunCopies is how many copies race unless the probe says (copies: N): Kettle's single packet
// carries 20-30 requests, and 20 is enough to expose a limit of one many times over.
const overrunCopies = 20

// LimitOverrun is the check race/limit-overrun.
type LimitOverrun struct {
	// Copies overrides the probe's copies and overrunCopies (tests); zero takes those.
	Copies int
	// Mode is the race engine's mode; zero is race.Auto (single-packet over h2, else last-byte
	// HTTP/1.1). Tests set race.SinglePacketH2 to race over h2c, where a server's stream limit
	// splits the release.
	Mode race.Mode
}

func (LimitOverrun) Meta() Meta {
	return Meta{
		ID:    "race/limit-overrun",
		Title: "One-shot action succeeds several times when requests race",
		CWE:   "CWE-367",
		Description: "Sends a one-shot action (declared destructive, with a setup that creates the resource, or as an identity " +
			"minted per experiment) N times in sequence against one fresh resource to learn its limit, then N synchronised " +
			"copies against another; " +
			"more successes in the race than in sequence prove a check-then-act race.",
		Remediation: remediationOverrun,
		References: []string{
			"https://cwe.mitre.org/data/definitions/367.html",
			"https://portswigger.net/research/smashing-the-state-machine",
		},
	}
}

const remediationOverrun = `Make the check and the update one atomic step, so that concurrent requests cannot all pass the check.
- SQL: a conditional update whose row count decides, e.g. UPDATE coupons SET used = true WHERE id = $1 AND used = false, and succeed only if it changed one row; or SELECT ... FOR UPDATE inside the transaction that marks it used; or a unique constraint on (coupon, redemption).
- Key-value stores: compare-and-set (Redis SET key NX, a Lua script, DynamoDB ConditionExpression).
- In process: hold one lock across the check and the update, not only around each.
Idempotency keys do not fix this on their own: the copies of a race carry the same key only if the client sends one.`

func (c LimitOverrun) Run(ctx context.Context, env *Env) ([]finding.Finding, error) {
	meta := c.Meta()
	copies := c.Copies
	return forEachProbe(ctx, env, meta.ID, func(ctx context.Context, p *probe.Probe, id *identity.Identity) (*finding.Finding, error) {
		if !p.Destructive || len(p.Setup) == 0 && !id.PerExperiment {
			return nil, skip("probe %q is not a declared one-shot action (hint: set destructive: true and a setup that creates the resource, or run it as an identity with fresh: per-experiment)", p.Name)
		}
		n := copies
		if n <= 0 {
			n = p.Copies
		}
		if n <= 0 {
			n = overrunCopies
		}
		return overrun(ctx, env, meta, id, p, n, c.Mode)
	})
}

// overrun runs the baseline and the race for one probe and returns a finding, or nil.
func overrun(ctx context.Context, env *Env, meta Meta, id *identity.Identity, p *probe.Probe, n int, mode race.Mode) (*finding.Finding, error) {
	t := env.Target
	red := t.Redactor
	start := time.Now()
	at := func(tm time.Time) float64 { return ms(tm.Sub(start)) }
	var events []finding.Event
	note := func(tm time.Time, detail string, x *finding.Exchange) {
		events = append(events, finding.Event{AtMS: at(tm), Kind: finding.EventNote, Detail: detail, HTTP: x})
	}

	ch := newChains(env, meta.ID, p, id, "")
	defer ch.teardown(ctx, nil)
	mint := func(purpose string) (identity.Token, error) {
		tok, err := id.Source.Token(ctx)
		if err != nil {
			return tok, fmt.Errorf("identity %q: get token: %w", id.Name, red.Error(err))
		}
		events = append(events, finding.Event{AtMS: at(time.Now()), Kind: finding.EventToken, Detail: fmt.Sprintf("token for %s (%s), for the %s", id.Name, id.Source.Kind(), purpose)})
		return tok, nil
	}
	tok, err := mint("sequential baseline")
	if err != nil {
		return nil, err
	}

	// fresh creates a resource through the setup and returns the probe's variables for it.
	fresh := func(purpose string, tok identity.Token) (probe.Vars, error) {
		vars := ch.begin(tok)
		results, err := ch.setup(ctx, vars)
		for _, r := range results {
			note(r.Response.Sent, "setup: fresh resource for the "+purpose, resultExchange(red, r))
		}
		return vars, err
	}

	// Baseline: the same number of attempts, one after another.
	env.progress("%s: %s: sequential baseline, %d requests", meta.ID, p.Endpoint(), n)
	vars, err := fresh("sequential baseline", tok)
	if err != nil {
		return nil, err
	}
	label := red.Label(tok.Value)
	baseline := 0
	for i := range n {
		// The baseline is the limit the race is compared with, so every one of its requests must
		// count: one that may have succeeded unseen (no answer in time, or a status that says
		// neither) leaves the limit unknown, and whatever follows cannot make it known. It stops
		// there, without the race.
		r, err := p.Do(ctx, t.Client, vars)
		if err != nil {
			if r == nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return nil, inconclusive("sequential baseline request %d of %d to %s got no response within limits.timeout, after %d success(es): the target looks overloaded, and the request may have succeeded unseen, so the baseline does not give the limit the race would be compared with; the race was not sent (hint: scan when the target is less loaded, or raise limits.timeout)", i+1, n, p.Endpoint(), baseline)
			}
			return nil, fmt.Errorf("probe %q: baseline request %d: %w", p.Name, i+1, red.Error(err))
		}
		switch r.Outcome {
		case probe.Accepted:
			baseline++
		case probe.Inconclusive:
			if overloadedStatus(r.Response.Status) {
				return nil, inconclusive("sequential baseline request %d of %d to %s answered %s, after %d success(es): the target looks overloaded, and the request may have succeeded unseen, so the baseline does not give the limit the race would be compared with; the race was not sent (hint: scan when the target is less loaded, or lower limits.rate)", i+1, n, p.Endpoint(), r.Response.StatusText(), baseline)
			}
			return nil, inconclusive("sequential baseline request %d of %d to %s answered %s, neither accepted nor refused, after %d success(es): the baseline does not give the limit the race would be compared with; the race was not sent (hint: add %d to the probe's accept or reject statuses, whichever it means)", i+1, n, p.Endpoint(), r.Response.StatusText(), baseline, r.Response.Status)
		}
		if i < 2 || r.Outcome == probe.Accepted {
			note(r.Response.Sent, fmt.Sprintf("baseline request %d: %s", i+1, r.Outcome), resultExchange(red, r))
		}
	}
	note(time.Now(), fmt.Sprintf("sequential baseline: %d of %d succeeded", baseline, n), nil)
	if baseline == 0 {
		return nil, fmt.Errorf("probe %q never succeeded in %d sequential requests on a fresh resource, so there is no limit to overrun (hint: check its accept statuses and the identity's permissions)", p.Name, n)
	}
	if baseline >= n {
		// Not limited within n attempts: a race of n copies could overrun nothing, so it tested
		// nothing either, and no pass can be claimed.
		return nil, inconclusive("all %d sequential requests to %s succeeded on one fresh resource: no limit shows within %d, so a race of %d copies has nothing to overrun and was not sent (hint: if the operation is one-shot, its limit is above %d: raise the probe's copies above it; otherwise it is not single_use)", n, p.Endpoint(), n, n, n)
	}

	// The race: n copies against another fresh resource, released together.
	env.progress("%s: %s: %d synchronised requests", meta.ID, p.Endpoint(), n)
	if id.PerExperiment {
		// An identity minted per experiment: the race gets its own, as a limit per account (a
		// welcome bonus) would otherwise be spent by the baseline.
		if tok, err = mint("race"); err != nil {
			return nil, err
		}
		label = red.Label(tok.Value)
	}
	vars, err = fresh("race", tok)
	if err != nil {
		return nil, err
	}
	reqs := make([]race.Request, n)
	for i := range reqs {
		if reqs[i], err = raceRequest(p, vars); err != nil {
			return nil, err
		}
	}
	b, err := race.Send(ctx, race.Options{Client: t.Client, Mode: mode}, reqs)
	if err != nil {
		return nil, fmt.Errorf("probe %q: race: %w", p.Name, red.Error(err))
	}
	rel := b.Release
	// Every copy is the same request: evidence shows it with its secrets as labels where they stand.
	shownURL, err := p.ShownURL(vars, red)
	if err != nil {
		shownURL = reqs[0].URL
	}
	succeeded, failed, undecided := 0, 0, 0
	for i, r := range b.Responses {
		if r.Err != nil {
			failed++
			note(r.Sent, fmt.Sprintf("race copy %d: no response: %v", i+1, red.Error(r.Err)), nil)
			continue
		}
		o := probe.Judge(r.Status, p.Accept, p.Reject)
		switch o {
		case probe.Accepted:
			succeeded++
		case probe.Inconclusive:
			undecided++
		}
		x := exchangeOf(red, reqs[i].Method, shownURL, label, r.Status, o, r.Body, r.Truncated)
		x.SentMS, x.ReceivedMS = at(r.Sent), at(r.Received)
		note(r.Received, fmt.Sprintf("race copy %d: %s", i+1, o), x)
	}
	release := fmt.Sprintf("%s over %s: %d write(s)", rel.Mode, rel.Protocol, rel.Writes)
	if rel.Segments >= 0 {
		release += fmt.Sprintf(", %d TCP segment(s)", rel.Segments)
	}
	if rel.Split {
		release += " (split: " + rel.Reason + ")"
	}
	release += fmt.Sprintf(", release took %.3f ms; responses arrived over %.3f ms", ms(rel.Duration), ms(b.Spread()))
	note(rel.Start, "release: "+release, nil)
	note(time.Now(), fmt.Sprintf("race: %d of %d succeeded (sequential baseline %d), %d without a response, %d neither accepted nor refused", succeeded, n, baseline, failed, undecided), nil)
	against := "against one fresh resource"
	if len(p.Setup) == 0 {
		against = "as one account minted for the race (" + id.Name + ", fresh: per-experiment)"
	}
	if succeeded <= baseline {
		// A race proves nothing unless its copies were answered and it had something to win.
		switch {
		case failed+undecided == n:
			return nil, inconclusive("none of the %d synchronised copies of %s got an answer that says accepted or refused (%d without a response, %d with another status): the race was not observed (hint: the target may be overloaded or refuse the synchronised connections; lower the probe's copies or raise limits.timeout)", n, p.Endpoint(), failed, undecided)
		case failed+undecided > 0:
			return nil, inconclusive("%d of %d synchronised copies of %s timed out or failed (%d without a response, %d with a status neither accepted nor refused, such as 5xx or 429) and only %d succeeded: the target looks overloaded, and the copies that failed could have won (hint: lower the probe's copies below what the target serves at once)", failed+undecided, n, p.Endpoint(), failed, undecided, succeeded)
		case succeeded == 0:
			return nil, inconclusive("none of the %d synchronised copies of %s succeeded, though the sequential baseline succeeded %d time(s) on its own fresh resource: the race had nothing to win, as if the limit is per identity rather than per resource and the baseline spent it (hint: give the race a resource or an identity the baseline did not use, e.g. an identity minted per experiment)", n, p.Endpoint(), baseline)
		case rel.Split:
			// The copies went out in several writes, so they did not arrive together: no overrun
			// then says nothing about the synchronised race this check claims to have tested.
			return nil, inconclusive("the release of the %d synchronised copies of %s was split over %d writes (%s), so the copies did not arrive together: %d of them succeeded, no more than the %d of the sequential baseline, which says nothing of the synchronised race (hint: lower the probe's copies so that one connection and one packet carry them all)", n, p.Endpoint(), rel.Writes, rel.Reason, succeeded, baseline)
		}
		return nil, nil
	}
	split := ""
	if rel.Split {
		split = " The release was split, so not every copy arrived at once; the overrun shows all the same."
	}
	return &finding.Finding{
		ID:             finding.StableID(meta.ID, p.Endpoint(), id.Name),
		Check:          meta.ID,
		Title:          meta.Title,
		Severity:       finding.High,
		SeverityReason: "a destructive one-shot action was performed more times than its limit allows",
		CWE:            meta.CWE,
		Endpoint:       p.Endpoint(),
		Probe:          p.Name,
		Identity:       id.Name,
		Summary: fmt.Sprintf("%s succeeded %d times out of %d synchronised requests %s, where %d of %d succeeded one after another (%s).%s",
			p.Endpoint(), succeeded, n, against, baseline, n, release, split),
		Evidence:    events,
		Remediation: meta.Remediation,
		References:  meta.References,
	}, nil
}

// overloadedStatus reports whether status is how a server says it cannot serve the request now: a
// 5xx or 429 (Too Many Requests).
func overloadedStatus(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests
}

// raceRequest renders p for the race engine the way probe.Do renders it for the client.
func raceRequest(p *probe.Probe, vars probe.Vars) (race.Request, error) {
	r, err := p.Render(vars)
	if err != nil {
		return race.Request{}, err
	}
	return race.Request{Method: r.Method, URL: r.URL, Header: r.Header, Body: []byte(r.Body)}, nil
}
