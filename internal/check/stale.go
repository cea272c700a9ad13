package check

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
	"github.com/tocsin/tocsin/internal/redact"
)

// The staleness measurement shared by the revocation and downgrade checks.
//
// One pass: mint a fresh token, make the probe accepted (this fills whatever the API caches), apply the
// change (revoke or downgrade) and wait for its acknowledgement, then replay the probe until it is
// refused. Each pass is kept as data with absolute times (stale_model.go): when the token was minted
// and its exp, the first use's send and receipt, the change's send and acknowledgement, every
// replay's send, receipt and outcome. The passes are combined only in a frame in which they agree,
// which names the window's cause (a cache lifetime from the first use, a delay after the change, a
// periodic refresh, the token's expiry, or never within the replays); stale_sched.go arms later
// passes' tokens while the first pass still replays, so that the measurement takes about one window;
// stale_plan.go places each later pass's replays where the causes still standing predict its end.
// The measurement stops when one cause remains and one pass brackets its parameter within
// limits.precision, after maxPasses, or when the request budget is spent. This file is the
// staleWorld of a real target: the requests.

// errRateLimited marks replays stopped by the API's rate limit (429 after 429), which the report
// names as such rather than as a failed request.
var errRateLimited = errors.New("the API is rate-limiting the replays")

// maxInconclusive is how many consecutive answers that are neither accepted nor refused end the
// measurement.
const maxInconclusive = 5

// staleMeasurement describes one experiment: which identity and probe, what change, how to undo it.
type staleMeasurement struct {
	env     *Env
	checkID string
	ident   *identity.Identity
	probe   *probe.Probe
	hook    identity.Hook // the change: revoke or downgrade
	restore identity.Hook // nil when the change cannot be undone (revocation spends the token)
	kind    string        // "revocation" or "downgrade", for the report

	// What earlier passes taught: when the API last refused (it refilled its cache with the changed
	// state then) and how long a window lasts counted from a fill. After a restore, the API honours
	// the old (changed) state for about as long, so arming waits that out instead of polling it.
	lastRejectAt time.Time
	fillWindow   time.Duration
	wakeLag      time.Duration // how late the first replay after the acknowledgement left, at worst
	changed      bool          // the change hook was run at least once: a restore is owed
	clock        clockSkew     // the target's clock, from its Date headers
	chains       *chains       // the probe's setup and teardown
}

func (m *staleMeasurement) learn(p *stalePass) {
	for _, r := range p.replays {
		if r.outcome == probe.Rejected {
			m.lastRejectAt = r.sent
			m.fillWindow = r.received.Sub(p.fillSent)
			return
		}
	}
}

// measure runs the measurement's schedule (stale_sched.go). It returns a nil window when the first
// replay after the first acknowledgement was already refused: the API honoured the change at once.
// A window and an error together mean the measurement stopped early (the budget, the deadline, a
// failed request) after a replay had already proven the finding.
func (m *staleMeasurement) measure(ctx context.Context) (*finding.Window, []finding.Event, error) {
	if m.restore != nil {
		// Put the identity back however the measurement ends; a scan must not leave it downgraded.
		defer func() {
			if m.changed { // nothing to put back if the downgrade was never sent
				_ = restoreIdentity(ctx, m.env, m.checkID, m.ident, "downgraded (the downgrade hook's change is still in effect)")
			}
		}()
	}
	t := m.env.Target
	s := newStaleSchedule(m, staleConfig{maxWindow: t.MaxWindow, precision: t.Precision, perSubject: m.restore != nil})
	err := s.run(ctx)
	if err != nil && len(s.pending) > 0 {
		// Tokens armed ahead whose change was due and still to come: send it now, outside the
		// budget and past an interrupt.
		fctx, cancel := context.WithTimeout(client.Unmetered(context.WithoutCancel(ctx)), restoreFor)
		s.flushPending(fctx)
		cancel()
	}
	m.revokeUnneeded(ctx, s.deferred)
	var passes []*stalePass
	for _, p := range s.passes {
		if len(p.replays) > 0 {
			passes = append(passes, p)
		}
	}
	if err != nil {
		return m.stoppedEarly(ctx, s, passes, err)
	}
	if s.atOnce {
		return nil, nil, nil
	}
	// The claim stands only if the change is still in effect now that the window closed.
	if err := m.confirmChange(ctx, passes[len(passes)-1]); err != nil {
		return nil, nil, err
	}
	w, events := m.window(s, passes, s.inf)
	return w, events, nil
}

// measured reports whether the passes are enough: the window never closed, one cause remains and is
// bracketed within precision (or no further pass can narrow it: the API's own time to refuse sets
// the width), or a periodic refresh's period and its extreme windows are known.
func measured(passes []*stalePass, inf inference, precision time.Duration) bool {
	switch {
	case inf.cause == finding.CauseNever:
		return true
	case inf.fixed != nil:
		return inf.narrowest <= precision || answerBound(passes[inf.bracketAt], inf.fixed.frame, precision)
	case inf.cause == finding.CausePeriodic && inf.period.ok:
		f := inf.period
		period := (f.period.lo + f.period.hi) / 2
		return f.period.width() <= period/20 && f.shortSeen() && f.longSeen()
	}
	return false
}

// answerBound reports whether pass p's interval in frame f is wider than precision because the API
// took long to answer the refused replay (it may introspect before refusing), not because of where
// the replays went: another pass would aim no closer, and could narrow the bracket only by luck. A
// frame that spans a long first use or change is not answer-bound: a later pass may single out
// which end of it the API counts from.
func answerBound(p *stalePass, f frameDef, precision time.Duration) bool {
	if rlo, rhi, ok := f.ref(p); !ok || rhi.Sub(rlo) > precision/4 {
		return false
	}
	var lastAccepted, firstRefused *replayObs
	for i := range p.replays {
		r := &p.replays[i]
		switch {
		case r.outcome == probe.Accepted:
			lastAccepted = r
		case r.outcome == probe.Rejected && firstRefused == nil:
			firstRefused = r
		}
	}
	if lastAccepted == nil || firstRefused == nil {
		return false
	}
	answer := firstRefused.received.Sub(firstRefused.sent)
	return answer > precision/2 && answer >= 2*firstRefused.sent.Sub(lastAccepted.sent)
}

// stoppedEarly ends a measurement that an error cut short. A replay accepted after an
// acknowledgement is proof enough for a finding: the window is built from the passes made, says how
// far the replays reached and why they stopped, and comes back with the error (the scan is then
// incomplete). A downgrade's claim also needs its control; without it there is only the error.
func (m *staleMeasurement) stoppedEarly(ctx context.Context, s *staleSchedule, passes []*stalePass, err error) (*finding.Window, []finding.Event, error) {
	proven := false
	for _, p := range passes {
		proven = proven || p.acceptedAfterAck()
	}
	if !proven {
		return nil, nil, err
	}
	last := passes[len(passes)-1]
	if !last.closed() && last.stoppedBy == "" {
		last.stoppedBy, last.stopDetail = stopReason(ctx, err), m.redactor().String(err.Error())
	}
	if cerr := m.confirmChange(ctx, last); cerr != nil {
		return nil, nil, fmt.Errorf("%w (a replay was accepted after the %s, but the control that must confirm the %s was still in effect could not run: %v)", err, m.kind, m.kind, cerr)
	}
	w, events := m.window(s, passes, infer(passes))
	return w, events, fmt.Errorf("the measurement stopped early, the finding stands on the replays made: %w", err)
}

// stopReason names why replays stopped for an error, as a finding.Stopped* value.
func stopReason(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, client.ErrBudget):
		return finding.StoppedBudget
	case errors.Is(err, errRateLimited):
		return finding.StoppedRate
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return finding.StoppedDeadline
	}
	return finding.StoppedError
}

// confirmChange runs the change-in-effect control at the end of pass p, while the change is still
// made: for a downgrade, a token minted now must be refused. A revocation spends one token only, so
// there is nothing to mint; its claim rests on the revoked token's own replays. The control's
// exchange joins p's timeline.
func (m *staleMeasurement) confirmChange(ctx context.Context, p *stalePass) error {
	if m.kind != "downgrade" {
		return nil
	}
	return changeInEffect(ctx, m.env, m.ident, m.probe, p.vars, m.kind, &p.tl)
}

func (m *staleMeasurement) redactor() *redact.Redactor { return m.env.Target.Redactor }

// timeline collects events with absolute times; they become offsets from the acknowledgement once
// it is known.
type timeline struct {
	events []finding.Event
	at     []time.Time
	sent   []time.Time
	recv   []time.Time
}

func (tl *timeline) add(at time.Time, kind, detail string, x *finding.Exchange, sent, recv time.Time) {
	tl.events = append(tl.events, finding.Event{Kind: kind, Detail: detail, HTTP: x})
	tl.at = append(tl.at, at)
	tl.sent = append(tl.sent, sent)
	tl.recv = append(tl.recv, recv)
}

func (tl *timeline) relativeTo(r time.Time) []finding.Event {
	out := make([]finding.Event, len(tl.events))
	for i, e := range tl.events {
		e.AtMS = finding.Round(ms(tl.at[i].Sub(r)))
		if e.HTTP != nil {
			x := *e.HTTP
			x.SentMS = finding.Round(ms(tl.sent[i].Sub(r)))
			x.ReceivedMS = finding.Round(ms(tl.recv[i].Sub(r)))
			e.HTTP = &x
		}
		out[i] = e
	}
	return out
}

// The staleWorld of a real target.

func (m *staleMeasurement) now() time.Time { return time.Now() }

func (m *staleMeasurement) sleepUntil(ctx context.Context, at time.Time) error {
	return sleepUntil(ctx, at)
}

func (m *staleMeasurement) progress(format string, args ...any) {
	m.env.progress("%s: "+format, append([]any{m.checkID}, args...)...)
}

func (m *staleMeasurement) skew() (span, bool) { return m.clock.s, m.clock.ok }

func (m *staleMeasurement) closed(p *stalePass) {
	if m.restore != nil {
		m.learn(p)
	}
}

// arm brings pass p up to its acknowledged change, as plan says (see staleWorld).
func (m *staleMeasurement) arm(ctx context.Context, p *stalePass, plan passPlan, first bool) error {
	t := m.env.Target
	maxWindow := t.MaxWindow
	tl := &p.tl

	if !first && m.restore != nil {
		if err := restoreIdentity(ctx, m.env, m.checkID, m.ident, "downgraded (the downgrade hook's change is still in effect)"); err != nil {
			// Recorded and alerted once; the measurement's own restore must not spend another
			// restore budget on the same failure.
			m.changed = false
			return fmt.Errorf("identity %q: restore before the next pass: %w", m.ident.Name, err)
		}
		tl.add(time.Now(), finding.EventRestore, "identity restored", nil, time.Time{}, time.Time{})
	}
	if plan.waitBefore > 0 {
		if err := sleepUntil(ctx, time.Now().Add(plan.waitBefore)); err != nil {
			return err
		}
	}
	p.started = time.Now()
	tok, err := m.ident.Source.Token(ctx)
	if err != nil {
		return fmt.Errorf("identity %q: get token: %w", m.ident.Name, t.Redactor.Error(err))
	}
	p.minted = time.Now()
	p.exp, p.iat = jwtTimes(tok.Value)
	p.tok = tok
	tl.add(p.minted, finding.EventToken, fmt.Sprintf("fresh token for %s (%s)", m.ident.Name, m.ident.Source.Kind()), nil, time.Time{}, time.Time{})
	vars := m.chains.begin(tok)
	p.vars = vars

	// The fill is the round trip of the first request in the final unbroken run of accepted requests
	// made with this token before the change: when the API last (re)filled what it caches. A setup
	// step run as another identity does not use this token.
	setFill := func(r *probe.Result) {
		if p.fillSent.IsZero() {
			p.fillSent, p.fillReceived = r.Response.Sent, r.Response.Received
		}
	}
	results, err := m.chains.setup(ctx, vars)
	for i, r := range results {
		tl.add(r.Response.Sent, finding.EventFill, "setup", m.exchange(r, r.Token), r.Response.Sent, r.Response.Received)
		if runsAs(m.probe.Setup[i], m.ident.Name) {
			setFill(r)
		}
	}
	if err != nil {
		return err
	}
	if first {
		// Controls before claims: the probe must be refused without a valid token.
		// They carry no valid token, so they leave whatever the setup's request filled alone.
		if err := authControl(ctx, m.env, m.probe, vars, tl); err != nil {
			return err
		}
	}
	// Make the probe accepted before the change. After a restore, the API may still honour the
	// downgrade for a while (its own cache): wait for that, with backoff, up to the max window.
	// A fresh token's first use fills a per-token cache for certain; after a restore, the first
	// acceptance after a refusal refills a per-subject one; on a downgrade's first pass, or when a
	// restored identity is accepted at once, the subject's cache may have been filled before.
	p.fillCertain = m.restore == nil
	armStart := time.Now()
	wait := firstStep
	inconclusive := 0
	for {
		r, err := m.probe.Do(ctx, t.Client, vars)
		if err != nil {
			return fmt.Errorf("probe %q: %w", m.probe.Name, t.Redactor.Error(err))
		}
		tl.add(r.Response.Sent, finding.EventFill, "probe before the change", m.exchange(r, tok.Value), r.Response.Sent, r.Response.Received)
		if r.Outcome == probe.Accepted {
			setFill(r)
			p.acceptedBefore = r.Response.Sent
			break
		}
		p.fillSent, p.fillReceived = time.Time{}, time.Time{}
		tl.events[len(tl.events)-1].Kind = finding.EventNote
		tl.events[len(tl.events)-1].Detail = "probe refused before the change: waiting for the restore to take effect"
		if r.Outcome == probe.Inconclusive {
			if inconclusive++; inconclusive >= maxInconclusive {
				return m.inconclusiveErr(r)
			}
		} else if m.restore == nil {
			return m.refusedBeforeChange(r, 0)
		} else {
			// A downgrade made moments ago (the previous pass, an earlier probe or check) may still
			// be cached: wait for the restore to be honoured. The acceptance after the refusal is
			// then the refill.
			p.fillCertain = true
		}
		if time.Since(armStart) > maxWindow {
			if first {
				return m.refusedBeforeChange(r, maxWindow)
			}
			return fmt.Errorf("probe %q: still refused %s after restoring identity %q (hint: the restore hook may not give back the privilege the probe needs)", m.probe.Name, maxWindow, m.ident.Name)
		}
		next := time.Now().Add(wait)
		if waited := m.lastRejectAt.Add(m.fillWindow - 2*firstStep); !m.lastRejectAt.IsZero() && waited.After(next) && time.Until(waited) < maxWindow {
			next, m.lastRejectAt = waited, time.Time{} // wait out the expected staleness once, then poll
		}
		if err := sleepUntil(ctx, next); err != nil {
			return err
		}
		wait = min(wait*3/2, 250*time.Millisecond)
	}
	p.gap = plan.gap
	return nil
}

// change sends p's change and waits for its acknowledgement (see staleWorld).
func (m *staleMeasurement) change(ctx context.Context, p *stalePass) error {
	t := m.env.Target
	tl := &p.tl
	p.changeSent = time.Now()
	m.changed = true // from here the change may have taken effect, even if its request fails
	if err := m.hook.Run(ctx, p.tok); err != nil {
		return fmt.Errorf("identity %q: %s (%s hook): %w", m.ident.Name, m.kind, m.hook.Kind(), t.Redactor.Error(err))
	}
	p.ack = time.Now()
	tl.add(p.changeSent, finding.EventChangeSent, m.kind+" sent ("+m.hook.Kind()+")", nil, time.Time{}, time.Time{})
	tl.add(p.ack, finding.EventChangeAcked, m.kind+" acknowledged", nil, time.Time{}, time.Time{})
	return nil
}

// revokeUnneeded revokes the tokens of rungs whose deferred change no pass needed, once the
// measurement is over (or cut short), outside the budget and past an interrupt: they took no part in
// the measurement as revocations, but no token the scan minted may stay valid after it. A token whose
// revocation fails is reported as left on the target. A downgrade has no such rungs (its passes run
// one after another).
func (m *staleMeasurement) revokeUnneeded(ctx context.Context, rungs []*stalePass) {
	if len(rungs) == 0 || m.restore != nil {
		return
	}
	fctx, cancel := context.WithTimeout(client.Unmetered(context.WithoutCancel(ctx)), restoreFor)
	defer cancel()
	failed, why := 0, ""
	for _, p := range rungs {
		if err := m.hook.Run(fctx, p.tok); err != nil {
			failed++
			why = m.env.Target.Redactor.Error(err).Error()
		}
	}
	if failed > 0 {
		m.env.leftBehind(Leftover{Check: m.checkID, Probe: m.probe.Name, Count: failed,
			What:   fmt.Sprintf("%d token(s) of identity %s minted for the measurement and not needed by it, still valid", failed, m.ident.Name),
			Reason: fmt.Sprintf("their revocation after the measurement failed: %s (hint: they expire on their own; revoke the identity's tokens by hand if they must not wait)", why)})
	}
}

// replay sends one replay of p, at at or at once if at has passed (see staleWorld).
func (m *staleMeasurement) replay(ctx context.Context, p *stalePass, at time.Time) (replayObs, error) {
	t := m.env.Target
	r, err := m.probe.Do(ctx, t.Client, p.vars)
	if err != nil {
		return replayObs{}, fmt.Errorf("probe %q: replay after %s: %w", m.probe.Name, m.kind, t.Redactor.Error(err))
	}
	rp := replayObs{sent: r.Response.Sent, received: r.Response.Received, outcome: r.Outcome, status: r.Response.Status}
	p.replays = append(p.replays, rp)
	p.tl.add(r.Response.Sent, finding.EventReplay, "", m.exchange(r, p.tok.Value), r.Response.Sent, r.Response.Received)
	switch rp.outcome {
	case probe.Accepted:
		p.inconclusive = 0
	case probe.Rejected:
	default:
		if p.inconclusive++; p.inconclusive >= maxInconclusive {
			return rp, m.inconclusiveErr(r)
		}
	}
	if rp.outcome == probe.Accepted && time.Since(p.lastProgress) > 2*time.Second {
		if !p.lastProgress.IsZero() {
			m.progress("pass %d: %s still honoured %.1f s after the %s (%d replays)", p.n, m.probe.Endpoint(), rp.sent.Sub(p.ack).Seconds(), m.kind, len(p.replays))
		}
		p.lastProgress = time.Now()
	}
	return rp, nil
}

// jwtTimes reads a token's exp and iat without verifying it, when it is a JWT; zero otherwise.
func jwtTimes(token string) (exp, iat time.Time) {
	if strings.Count(token, ".") != 2 {
		return
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return
	}
	if e, err := claims.GetExpirationTime(); err == nil && e != nil {
		exp = e.Time
	}
	if i, err := claims.GetIssuedAt(); err == nil && i != nil {
		iat = i.Time
	}
	return exp, iat
}

// refusedBeforeChange is the error for a probe a fresh token cannot use before any change, for as long
// as waited.
func (m *staleMeasurement) refusedBeforeChange(r *probe.Result, waited time.Duration) error {
	during := ""
	if waited > 0 {
		during = fmt.Sprintf(" for %s", waited)
	}
	return fmt.Errorf("probe %q: %s answered %d with a fresh token of %q before any change%s (hint: the probe must be accepted by a valid token; check its path, setup and accept statuses, and the identity's scopes)", m.probe.Name, m.probe.Endpoint(), r.Response.Status, m.ident.Name, during)
}

func (m *staleMeasurement) inconclusiveErr(r *probe.Result) error {
	if r.Response.Status == http.StatusTooManyRequests {
		return fmt.Errorf("probe %q: %s answered 429 Too Many Requests %d times in a row: %w (hint: lower limits.rate to what the API allows, or scan when its rate limit is not shared with other traffic)", m.probe.Name, m.probe.Endpoint(), maxInconclusive, errRateLimited)
	}
	return fmt.Errorf("probe %q: %s answered %d, neither accepted nor rejected, %d times in a row (hint: set the probe's accept and reject statuses to what this API answers)", m.probe.Name, m.probe.Endpoint(), r.Response.Status, maxInconclusive)
}

// exchange turns a probe result into redacted evidence.
func (m *staleMeasurement) exchange(r *probe.Result, token string) *finding.Exchange {
	if r.Response != nil && r.Response.Header != nil {
		m.clock.observe(r.Response.Header.Get("Date"), r.Response.Sent, r.Response.Received)
	}
	red := m.redactor()
	return exchangeOf(red, r.Method, r.URL, tokenLabel(red, token), r.Response.Status, r.Outcome, r.Response.Body, r.Response.Truncated)
}

// runsAs reports whether step runs as the identity named ident (steps default to it).
func runsAs(step *probe.Probe, ident string) bool { return step.As == "" || step.As == ident }

// sleepUntil waits until at. Long timers fire late on an idle virtual machine (3-5 ms after a 2 s
// sleep on the 2-core machines this runs on), which would blur a bracket that aims at a few
// milliseconds; so it sleeps to just before at and spins through the last few milliseconds, which
// also keeps the CPU awake for the request that follows.
func sleepUntil(ctx context.Context, at time.Time) error {
	const finalStep, spinFor = 15 * time.Millisecond, 12 * time.Millisecond
	for {
		d := time.Until(at)
		if d <= 0 {
			return ctx.Err()
		}
		if d < spinFor {
			for time.Now().Before(at) {
			}
			return ctx.Err()
		}
		if d > 2*finalStep {
			d -= finalStep
		}
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtMS formats a figure for a summary.
func fmtMS(v float64) string {
	if v >= 10000 || v <= -10000 {
		return fmt.Sprintf("%.1f s", v/1000)
	}
	if v < 1 && v > -1 {
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.1f ms", math.Round(v*10)/10)
}
