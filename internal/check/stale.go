package check

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
	"github.com/tocsin/tocsin/internal/redact"
)

// The staleness measurement shared by the revocation and downgrade checks.
//
// One pass: mint a fresh token, make the probe accepted (this fills whatever the API caches), apply the
// change (revoke or downgrade) and wait for its acknowledgement at R, then replay the probe on a
// schedule until it is refused. The window is bracketed by the last replay accepted (its send time,
// so the API still honoured the old state at or after that moment) and the first refused (its
// receive time, so the API had stopped by then): the bracket always contains the true end.
//
// Precision comes from the schedule, not from brute force. The first pass polls on a geometric
// schedule, so a window of any length up to max_window costs a few dozen requests; each later pass
// uses a fresh token and spends a dozen replays evenly across the previous bracket (plus a margin for
// the jitter between passes), shrinking it about tenfold, until it is narrower than targetWidth.

const (
	firstStep       = 25 * time.Millisecond // coarse schedule: smallest step
	growth          = 1.4                   // coarse schedule: each step this much longer than the offset so far
	refinePoints    = 16                    // replays spread across a bracket in a refinement pass
	targetWidth     = 8 * time.Millisecond  // stop refining once the bracket is this narrow
	maxPasses       = 5
	maxInconclusive = 5 // consecutive inconclusive answers before the measurement gives up
)

// staleMeasurement describes one experiment: which identity and probe, what change, how to undo it.
type staleMeasurement struct {
	env     *Env
	checkID string
	ident   *identity.Identity
	probe   *probe.Probe
	change  identity.Hook
	restore identity.Hook // nil when the change cannot be undone (revocation spends the token)
	kind    string        // "revocation" or "downgrade", for the report

	// What earlier passes taught: when the API last refused (it refilled its cache with the changed
	// state then) and how long a window lasts counted from a fill. After a restore, the API honours
	// the old (changed) state for about as long, so arming waits that out instead of polling it.
	lastRejectAt time.Time
	fillWindow   time.Duration
	wakeLag      time.Duration // how late the first replay after the acknowledgement left, at worst
	changed      bool          // the change hook was run at least once: a restore is owed
	chains       *chains       // the probe's setup and teardown
}

func (m *staleMeasurement) learn(p passResult) {
	if p.haveRejected {
		m.lastRejectAt = p.rejectedAt
		m.fillWindow = p.firstRejected + p.fillToChange
	}
}

// replay is one observation after the change.
type replay struct {
	sent, received time.Duration // relative to the acknowledgement
	outcome        probe.Outcome
	status         int
}

// passResult is what one pass saw.
type passResult struct {
	fillToChange  time.Duration
	lastAccepted  time.Duration
	haveAccepted  bool // at least one replay after the acknowledgement was accepted
	firstRejected time.Duration
	haveRejected  bool
	rejectedAt    time.Time // when the first refused replay was sent
	replays       int
	events        []finding.Event
	ack           time.Time  // when the change was acknowledged
	vars          probe.Vars // the pass's variables (token, setup's extracts), for controls
	controls      []finding.Event
}

func (p passResult) never() bool { return !p.haveRejected }

// schedule returns the offset after the acknowledgement at which replay i should be sent, given
// the offset of the previous replay.
type schedule func(i int, prev time.Duration) time.Duration

func coarseSchedule(from time.Duration) schedule {
	return func(i int, prev time.Duration) time.Duration {
		if i == 0 {
			return from
		}
		next := time.Duration(float64(prev) * growth)
		return max(next, prev+firstStep)
	}
}

// refineSchedule spreads refinePoints replays evenly across [lo, hi], then falls back to the coarse
// schedule should the window outlast hi in this pass.
func refineSchedule(lo, hi time.Duration) schedule {
	lo = max(lo, 0)
	step := (hi - lo) / (refinePoints - 1)
	coarse := coarseSchedule(hi)
	return func(i int, prev time.Duration) time.Duration {
		if i < refinePoints {
			return lo + time.Duration(i)*step
		}
		return coarse(i-refinePoints+1, prev)
	}
}

// measure runs passes until the bracket is narrow enough. It returns a nil window when the first
// replay after the acknowledgement was already refused: the API honoured the change at once.
func (m *staleMeasurement) measure(ctx context.Context) (*finding.Window, []finding.Event, error) {
	if m.restore != nil {
		// Put the identity back however the measurement ends; a scan must not leave it downgraded.
		defer func() {
			if m.changed { // nothing to put back if the downgrade was never sent
				_ = restoreIdentity(ctx, m.env, m.checkID, m.ident, "downgraded (the downgrade hook's change is still in effect)")
			}
		}()
	}
	maxWindow := m.env.Target.MaxWindow
	first, err := m.pass(ctx, 1, func(time.Duration) schedule { return coarseSchedule(0) }, maxWindow)
	if err != nil {
		return nil, nil, err
	}
	w := &finding.Window{
		Change:         m.kind,
		MaxWaitMS:      ms(maxWindow),
		FillToChangeMS: finding.Round(ms(first.fillToChange)),
	}
	w.Passes = append(w.Passes, passSummary(first))
	if !first.haveAccepted && first.haveRejected {
		return nil, first.events, nil
	}
	m.learn(first)
	if first.never() {
		if err := m.confirmChange(ctx, &first); err != nil {
			return nil, nil, err
		}
		w.Never = true
		w.LastAcceptedMS = finding.Round(ms(first.lastAccepted))
		return w, first.events, nil
	}
	last := first
	lo, hi := first.lastAccepted, first.firstRejected
	// The evidence is the latest pass that saw both sides of the transition; notes say what else
	// happened.
	evidence, prevFill := first.events, first.fillToChange
	var notes []finding.Event
	for n := 2; n <= maxPasses && hi-lo > targetWidth; n++ {
		// Between passes the time from cache fill to acknowledgement differs a little, which moves a
		// window counted from the fill; widen the bracket by that difference and by a tenth of its
		// width so that the transition falls inside it either way.
		m.env.progress("%s: pass %d: refining [%.1f, %.1f] ms", m.checkID, n, ms(lo), ms(hi))
		refine := func(fillToChange time.Duration) schedule {
			margin := max((hi-lo)/10, 2*time.Millisecond) + (fillToChange - prevFill).Abs() + m.wakeLag
			return refineSchedule(lo-margin, hi+margin)
		}
		p, err := m.pass(ctx, n, refine, maxWindow)
		if err != nil {
			return nil, nil, err
		}
		w.Passes = append(w.Passes, passSummary(p))
		last = p
		if p.never() {
			notes = append(notes, note(p, fmt.Sprintf("pass %d: still accepted at the max window; the window varies between tokens", n)))
			break
		}
		m.learn(p)
		if p.haveAccepted {
			evidence = p.events
		}
		newLo, newHi := lo, min(hi, p.firstRejected)
		if p.haveAccepted {
			newLo = max(lo, p.lastAccepted)
		}
		if newLo > newHi {
			// This pass closed outside the earlier bracket: the window moved between tokens by more
			// than the margin (typically because the first pass's cache entry was filled earlier by
			// another request). Later passes all start from a fresh fill, so continue from this one.
			notes = append(notes, note(p, fmt.Sprintf("pass %d closed at %.1f ms, outside the earlier bracket [%.1f, %.1f] ms; refining from this pass", n, ms(p.firstRejected), ms(lo), ms(hi))))
			newLo, newHi = 0, p.firstRejected
			if p.haveAccepted {
				newLo = p.lastAccepted
			}
		}
		lo, hi, prevFill = newLo, newHi, p.fillToChange
		w.FillToChangeMS = ms(p.fillToChange)
	}
	// The claim stands only if the change is still in effect now that the window closed.
	if err := m.confirmChange(ctx, &last); err != nil {
		return nil, nil, err
	}
	if last.haveAccepted {
		evidence = last.events // the control's exchange is on it
	} else {
		evidence = append(evidence, last.controls...)
	}
	w.LastAcceptedMS, w.FirstRejectedMS = finding.Round(ms(lo)), finding.Round(ms(hi))
	w.FillToChangeMS = finding.Round(w.FillToChangeMS)
	return w, append(evidence, notes...), nil
}

// confirmChange runs the change-in-effect control at the end of pass p, while the change is still
// made: for a downgrade, a token minted now must be refused. A revocation spends one token only, so
// there is nothing to mint; its claim rests on the revoked token's own replays. The control's
// exchange joins p's evidence.
func (m *staleMeasurement) confirmChange(ctx context.Context, p *passResult) error {
	if m.kind != "downgrade" {
		return nil
	}
	var tl timeline
	err := changeInEffect(ctx, m.env, m.ident, m.probe, p.vars, m.kind, &tl)
	events := tl.relativeTo(p.ack)
	p.controls = append(p.controls, events...)
	p.events = append(p.events, events...)
	return err
}

func note(p passResult, detail string) finding.Event {
	var at float64
	if n := len(p.events); n > 0 {
		at = p.events[n-1].AtMS
	}
	return finding.Event{AtMS: at, Kind: finding.EventNote, Detail: detail}
}

func passSummary(p passResult) finding.Pass {
	s := finding.Pass{Replays: p.replays, FillToChangeMS: finding.Round(ms(p.fillToChange)), Never: p.never()}
	if p.haveAccepted {
		s.LastAcceptedMS = finding.Round(ms(p.lastAccepted))
	}
	if p.haveRejected {
		s.FirstRejectedMS = finding.Round(ms(p.firstRejected))
	}
	return s
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

// pass runs one measurement pass with a fresh token.
func (m *staleMeasurement) pass(ctx context.Context, n int, plan func(fillToChange time.Duration) schedule, maxWindow time.Duration) (passResult, error) {
	t := m.env.Target
	var tl timeline
	var res passResult

	if n > 1 && m.restore != nil {
		if err := retryRestore(ctx, m.ident); err != nil {
			return res, fmt.Errorf("identity %q: restore before pass %d: %w", m.ident.Name, n, t.Redactor.Error(err))
		}
		tl.add(time.Now(), finding.EventRestore, "identity restored", nil, time.Time{}, time.Time{})
	}
	tok, err := m.ident.Source.Token(ctx)
	if err != nil {
		return res, fmt.Errorf("identity %q: get token: %w", m.ident.Name, t.Redactor.Error(err))
	}
	tl.add(time.Now(), finding.EventToken, fmt.Sprintf("fresh token for %s (%s)", m.ident.Name, m.ident.Source.Kind()), nil, time.Time{}, time.Time{})
	vars := m.chains.begin(tok)

	// fill is the send time of the first request in the final unbroken run of accepted requests made
	// with this token before the change: that is when the API last (re)filled what it caches.
	var fill time.Time
	results, err := m.chains.setup(ctx, vars)
	for i, r := range results {
		tl.add(r.Response.Sent, finding.EventFill, "setup", m.exchange(r, r.Token), r.Response.Sent, r.Response.Received)
		if fill.IsZero() && runsAs(m.probe.Setup[i], m.ident.Name) {
			fill = r.Response.Sent
		}
	}
	if err != nil {
		return res, err
	}
	if n == 1 {
		// Controls before claims: the probe must be refused without a valid token.
		// They carry no valid token, so they leave whatever the setup's request filled alone.
		if err := authControl(ctx, m.env, m.probe, vars, &tl); err != nil {
			return res, err
		}
	}
	// Make the probe accepted before the change. After a restore, the API may still honour the
	// downgrade for a while (its own cache): wait for that, with backoff, up to the max window.
	armStart := time.Now()
	wait := firstStep
	inconclusive := 0
	for {
		r, err := m.probe.Do(ctx, t.Client, vars)
		if err != nil {
			return res, fmt.Errorf("probe %q: %w", m.probe.Name, t.Redactor.Error(err))
		}
		tl.add(r.Response.Sent, finding.EventFill, "probe before the change", m.exchange(r, tok.Value), r.Response.Sent, r.Response.Received)
		if r.Outcome == probe.Accepted {
			if fill.IsZero() {
				fill = r.Response.Sent
			}
			break
		}
		fill = time.Time{}
		tl.events[len(tl.events)-1].Kind = finding.EventNote
		tl.events[len(tl.events)-1].Detail = "probe refused before the change: waiting for the restore to take effect"
		if r.Outcome == probe.Inconclusive {
			if inconclusive++; inconclusive >= maxInconclusive {
				return res, m.inconclusiveErr(r)
			}
		} else if m.restore == nil || n == 1 {
			return res, fmt.Errorf("probe %q: %s answered %d with a fresh token of %q before any change (hint: the probe must be accepted by a valid token; check its path, setup and accept statuses, and the identity's scopes)", m.probe.Name, m.probe.Endpoint(), r.Response.Status, m.ident.Name)
		}
		if time.Since(armStart) > maxWindow {
			return res, fmt.Errorf("probe %q: still refused %s after restoring identity %q (hint: the restore hook may not give back the privilege the probe needs)", m.probe.Name, maxWindow, m.ident.Name)
		}
		next := time.Now().Add(wait)
		if waited := m.lastRejectAt.Add(m.fillWindow - 2*firstStep); !m.lastRejectAt.IsZero() && waited.After(next) && time.Until(waited) < maxWindow {
			next, m.lastRejectAt = waited, time.Time{} // wait out the expected staleness once, then poll
		}
		if err := sleepUntil(ctx, next); err != nil {
			return res, err
		}
		wait = min(wait*3/2, 250*time.Millisecond)
	}

	changeSent := time.Now()
	m.changed = true // from here the change may have taken effect, even if its request fails
	if err := m.change.Run(ctx, tok); err != nil {
		return res, fmt.Errorf("identity %q: %s (%s hook): %w", m.ident.Name, m.kind, m.change.Kind(), t.Redactor.Error(err))
	}
	ack := time.Now()
	res.ack, res.vars = ack, vars
	tl.add(changeSent, finding.EventChangeSent, m.kind+" sent ("+m.change.Kind()+")", nil, time.Time{}, time.Time{})
	tl.add(ack, finding.EventChangeAcked, m.kind+" acknowledged", nil, time.Time{}, time.Time{})
	res.fillToChange = ack.Sub(fill)
	sched := plan(res.fillToChange)

	prev := time.Duration(0)
	inconclusive = 0
	lastProgress := time.Now()
	for i := 0; ; i++ {
		offset := sched(i, prev)
		if offset > maxWindow {
			// "Never within max_window" must be measured: the last replay goes out at max_window,
			// not wherever the schedule's last step before it happened to fall.
			if prev >= maxWindow || i == 0 {
				break
			}
			offset = maxWindow
		}
		prev = offset
		if err := sleepUntil(ctx, ack.Add(offset)); err != nil {
			return res, err
		}
		r, err := m.probe.Do(ctx, t.Client, vars)
		if err != nil {
			return res, fmt.Errorf("probe %q: replay after %s: %w", m.probe.Name, m.kind, t.Redactor.Error(err))
		}
		res.replays++
		rp := replay{sent: r.Response.Sent.Sub(ack), received: r.Response.Received.Sub(ack), outcome: r.Outcome, status: r.Response.Status}
		if i == 0 {
			// The first request after a long wait leaves late even so (the machine wakes slowly);
			// later refinement passes widen their margin by the worst lag seen.
			m.wakeLag = min(max(m.wakeLag, rp.sent-offset), 50*time.Millisecond)
		}
		tl.add(r.Response.Sent, finding.EventReplay, "", m.exchange(r, tok.Value), r.Response.Sent, r.Response.Received)
		switch rp.outcome {
		case probe.Accepted:
			inconclusive = 0
			res.lastAccepted, res.haveAccepted = rp.sent, true
		case probe.Rejected:
			res.firstRejected, res.haveRejected = rp.received, true
			res.rejectedAt = r.Response.Sent
		default:
			if inconclusive++; inconclusive >= maxInconclusive {
				return res, m.inconclusiveErr(r)
			}
		}
		if res.haveRejected {
			break
		}
		if time.Since(lastProgress) > 2*time.Second {
			lastProgress = time.Now()
			m.env.progress("%s: pass %d: %s still honoured %.1f s after the %s (%d replays)", m.checkID, n, m.probe.Endpoint(), rp.sent.Seconds(), m.kind, res.replays)
		}
	}
	res.events = tl.relativeTo(ack)
	return res, nil
}

func (m *staleMeasurement) inconclusiveErr(r *probe.Result) error {
	return fmt.Errorf("probe %q: %s answered %d, neither accepted nor rejected, %d times in a row (hint: set the probe's accept and reject statuses to what this API answers)", m.probe.Name, m.probe.Endpoint(), r.Response.Status, maxInconclusive)
}

// exchange turns a probe result into redacted evidence.
func (m *staleMeasurement) exchange(r *probe.Result, token string) *finding.Exchange {
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

// roundUp formats a bracket bound for a summary.
func fmtMS(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1f s", v/1000)
	}
	if v < 1 && v > -1 {
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.1f ms", math.Round(v*10)/10)
}
