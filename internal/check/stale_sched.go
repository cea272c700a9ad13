package check

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/probe"
)

// The schedule of a staleness measurement: when tokens are armed (minted, used, changed) and which
// pass's replays go out when. It acts on a staleWorld, the target or, in tests, a simulated API on
// a simulated clock, so that the same schedule is tested over many seeds in milliseconds.
//
// Passes one after another cost a window each: five passes over a 10-minute cache take most of an
// hour. Where the window belongs to the token (a lifetime from its first use, a delay after its
// change, its own exp), a token armed later has its window end later by as much, so tokens are armed
// while the first pass is still replaying, on a ladder of staggers after its acknowledgement
// (ladderBase, doubling). The first pass's replays are spaced no wider than the largest stagger
// below ladderShare of the time elapsed, so that once the first pass is refused, a token armed by
// then is young enough that its end still lies ahead, where the bracket predicts it: its replays are
// aimed there, a window after it was armed rather than a window after the first pass closed. The
// next rung refines that pass in turn. The measurement takes about (1 + 2*ladderShare) windows.
//
// Where the window belongs to the subject (a downgrade: permissions cached per subject), a pass can
// only begin once the previous one's refusal has been waited out and the restore filled the cache
// again, so passes stay one after another, and the report says so.

const (
	ladderBase = 200 * time.Millisecond // the first token armed ahead, this long after pass 1's acknowledgement
	// ladderShare bounds the first pass's replay spacing at time t after its acknowledgement to the
	// largest rung at most ladderShare*t: the rung that refines it is then at most that far behind.
	// The passes after the first use the rung that refines it and the next, up to twice the
	// rung: the measurement takes at most 1 + 2*ladderShare windows. 0.12 (was 0.1) saves
	// first-pass replays for a wall time well under issue 19's bound of 1.3; 0.15, the bound
	// itself, saved a few more but lengthened the measurements that need more passes (jittered
	// introspection: 1.34 windows to 1.66).
	ladderShare = 0.12
	// ladderSlack keeps the spacing a little under the rung, so that the rung's predicted end still
	// lies ahead once the refusal has been answered.
	ladderSlack = 8 // spacing = rung - rung/ladderSlack
	// expSkew is how far from a JWT's exp the first pass aims replays when exp falls within the max
	// window: the token's whole-second exp and the clocks of two machines.
	expSkew   = time.Second
	expPoints = 16
	// ladderReach bounds the rungs to this share of the max window. The passes after pass 1 use
	// rungs about one and two times the largest rung below ladderShare of the window (the
	// spacing its end was bracketed with), at most 2*ladderShare of it: a later rung could serve
	// only a window longer than the max window, and would be minted, used and revoked for nothing.
	ladderReach = 2 * ladderShare
	// onSchedule is how many rungs have their change sent as soon as they are armed (after their
	// gap): the first, and the first with a gap between its first use and its change, which
	// predict different ends for a lifetime and a delay. The later rungs' changes are deferred until
	// a pass needs them (see staleSchedule.deferred).
	onSchedule = 2
)

// staleWorld is what a schedule acts on.
type staleWorld interface {
	now() time.Time
	sleepUntil(ctx context.Context, at time.Time) error
	// arm brings pass p up to its first use as plan says: the restore owed by an earlier pass (per
	// subject), the plan's wait, a fresh token, the setup, the controls (first pass only) and the
	// first use. change then sends the change and waits for its acknowledgement.
	arm(ctx context.Context, p *stalePass, plan passPlan, first bool) error
	change(ctx context.Context, p *stalePass) error
	// replay sends one replay of p at at (at once if at has passed) and appends it to p.replays.
	replay(ctx context.Context, p *stalePass, at time.Time) (replayObs, error)
	// closed tells the world a pass's replays are over (a downgrade learns how long it lasted).
	closed(p *stalePass)
	progress(format string, args ...any)
	// skew is what the target's Date headers say of its clock: server time minus ours, in [lo, hi].
	skew() (s span, ok bool)
}

// clockSkew narrows the target's clock against ours from its Date headers: a Date of D written
// between a request's send and its answer puts server - local in [D - answer, D + 1 s - send].
type clockSkew struct {
	s  span
	ok bool
}

func (c *clockSkew) observe(date string, sent, received time.Time) {
	d, err := http.ParseTime(date)
	if err != nil || sent.IsZero() || received.Before(sent) {
		return
	}
	in := span{d.Sub(received), d.Add(time.Second).Sub(sent)}
	if c.ok {
		if lo, hi := max(c.s.lo, in.lo), min(c.s.hi, in.hi); lo <= hi {
			c.s = span{lo, hi}
			return
		}
		// They disagree (the clock was set, or another server answered): start from this answer.
	}
	c.s, c.ok = in, true
}

// staleConfig is what a schedule needs to know of the scan.
type staleConfig struct {
	maxWindow time.Duration
	precision time.Duration // stop once one pass brackets the cause's parameter this narrowly
	// perSubject runs passes one after another (the window belongs to the subject, not the token).
	perSubject bool
}

// staleSchedule runs one measurement.
type staleSchedule struct {
	w   staleWorld
	cfg staleConfig

	passes  []*stalePass // passes whose replays began, in that order (numbered so)
	spares  []*stalePass // tokens armed ahead and not replayed (yet)
	armed   int          // tokens armed
	wakeLag time.Duration
	inf     inference
	atOnce  bool // the first pass was refused at once: the API honoured the change
	started time.Time

	p1       *stalePass
	ladderAt []time.Duration // rungs still to arm, as staggers after pass 1's acknowledgement
	rungs    int             // rungs armed
	pending  []*stalePass    // rungs armed whose change waits for its gap, by changeDue
	// deferred are rungs armed (minted, set up, used) whose change waits until a pass needs them,
	// oldest first. Until pass 1 is refused nothing tells a periodic refresh from a window of the
	// token's own, and only a delay after the change needs the change early: a lifetime from the
	// first use ends at the fill plus the lifetime whenever the change came before it, a periodic
	// refresh ends every rung changed before it with the same refresh. A rung no pass needs is
	// never changed: it is not a revocation, and its token is left to its own expiry (what its
	// setup created is removed with the rest).
	deferred []*stalePass
}

func newStaleSchedule(w staleWorld, cfg staleConfig) *staleSchedule {
	return &staleSchedule{w: w, cfg: cfg}
}

// ladder is the staggers at which tokens are armed alongside the first pass.
func (s *staleSchedule) ladder() []time.Duration {
	if s.cfg.perSubject {
		return nil
	}
	var out []time.Duration
	reach := time.Duration(ladderReach * float64(s.cfg.maxWindow))
	for st := ladderBase; st <= reach && len(out) < 16; st *= 2 {
		out = append(out, st)
	}
	return out
}

// rungBelow is the largest rung of ladder at most ladderShare*t, or 0.
func rungBelow(ladder []time.Duration, t time.Duration) time.Duration {
	var r time.Duration
	for _, st := range ladder {
		if float64(st) <= ladderShare*float64(t) {
			r = st
		}
	}
	return r
}

// firstSchedule is the first pass's: the coarse geometric schedule, each step no wider than the
// rung that would refine it, and, when the token is a JWT whose exp falls within the max window,
// expPoints replays around exp (the window may end there: offline verification), where our clock
// reads exp given the target's clock (skew, when its Date headers said), else within expSkew.
func firstSchedule(p *stalePass, ladder []time.Duration, maxWindow time.Duration, skew span, skewKnown bool) schedule {
	var expAt []time.Duration
	if !p.exp.IsZero() {
		if !skewKnown {
			skew = span{-expSkew, expSkew}
		}
		margin := 50 * time.Millisecond
		lo, hi := p.exp.Add(-skew.hi-margin).Sub(p.ack), p.exp.Add(-skew.lo+margin).Sub(p.ack)
		if hi > 0 && lo < maxWindow {
			lo, hi = max(lo, 0), min(hi, maxWindow)
			for i := range expPoints {
				expAt = append(expAt, lo+(hi-lo)*time.Duration(i)/time.Duration(expPoints-1))
			}
		}
	}
	return func(i int, prev time.Duration) time.Duration {
		if i == 0 {
			return 0
		}
		step := max(firstStep, time.Duration(float64(prev)*(growth-1)))
		// Before the first rung is small enough to serve, no step is wider than it either: a
		// periodic refresh's first tick is then known within it, and the rung changed right
		// after it observes a window of nearly the whole period (see refreshFloor).
		r := rungBelow(ladder, prev)
		if r == 0 && len(ladder) > 0 {
			r = ladder[0]
		}
		if r > 0 {
			step = min(step, max(r-r/ladderSlack, firstStep))
		}
		next := prev + step
		for _, e := range expAt {
			if e > prev {
				next = min(next, e)
				break
			}
		}
		return next
	}
}

// run measures: the first pass with the ladder armed alongside it, then passes aimed from what the
// earlier ones show until the figure is good enough (see measured), maxPasses passes, or an error.
// s.passes holds what was seen however it ends.
func (s *staleSchedule) run(ctx context.Context) error {
	s.started = s.w.now()
	s.ladderAt = s.ladder()
	p1 := &stalePass{}
	p1.why = "the first pass: replays on a coarse schedule, to find the window"
	if len(s.ladderAt) > 0 {
		p1.why += fmt.Sprintf("; tokens armed alongside it, %s to %s after its acknowledgement, so that later passes overlap it", fmtDur(s.ladderAt[0]), fmtDur(s.ladderAt[len(s.ladderAt)-1]))
		if len(s.ladderAt) > onSchedule {
			p1.why += fmt.Sprintf(" (the change of each after the first %d deferred until a pass needed it)", onSchedule)
		}
	}
	if err := s.armNow(ctx, p1, passPlan{}, true); err != nil {
		return err
	}
	s.p1 = p1
	s.begin(p1)
	skew, known := s.w.skew()
	if !p1.exp.IsZero() && p1.exp.Sub(p1.ack) < s.cfg.maxWindow {
		where := fmt.Sprintf("within %s of it", fmtDur(expSkew))
		if known {
			where = fmt.Sprintf("where the target's Date headers put it (its clock %s to %s from ours)", fmtDur(skew.lo), fmtDur(skew.hi))
		}
		p1.why += fmt.Sprintf("; %d replays aimed at the token's exp, %s, in case the API verifies it offline", expPoints, where)
	}
	if err := s.replayPass(ctx, p1, firstSchedule(p1, s.ladder(), s.cfg.maxWindow, skew, known)); err != nil {
		return err
	}
	s.ladderAt = nil // the ladder is armed only while the first pass replays
	if !p1.acceptedAfterAck() && p1.closed() {
		s.atOnce = true
		return s.changePending(ctx, time.Time{}, true)
	}
	for {
		s.inf = infer(s.passes)
		if measured(s.passes, s.inf, s.cfg.precision) || s.full() >= maxPasses {
			return s.changePending(ctx, time.Time{}, true)
		}
		p, sched, err := s.next(ctx)
		if err != nil {
			return err
		}
		s.w.progress("pass %d: %s", p.n, p.why)
		if err := s.replayPass(ctx, p, sched); err != nil {
			return err
		}
	}
}

// due does what falls before at: the rungs of the ladder still to arm (while pass 1 replays) and
// the changes of rungs whose gap has passed, in time order.
func (s *staleSchedule) due(ctx context.Context, at time.Time) error {
	for {
		var next time.Time
		fill := len(s.ladderAt) > 0
		if fill {
			next = s.p1.ack.Add(s.ladderAt[0])
		}
		if len(s.pending) > 0 && (!fill || s.pending[0].changeDue.Before(next)) {
			next, fill = s.pending[0].changeDue, false
		}
		if next.IsZero() || next.After(at) {
			return nil
		}
		if err := s.w.sleepUntil(ctx, next); err != nil {
			return err
		}
		if !fill {
			if err := s.changePending(ctx, next, false); err != nil {
				return err
			}
			continue
		}
		st := s.ladderAt[0]
		s.ladderAt = s.ladderAt[1:]
		sp := &stalePass{armedDuring: 1}
		plan := passPlan{}
		if s.rungs%2 == 1 && s.rungs < onSchedule {
			// Every other rung waits a little between its first use and its change, so that two
			// rungs in a row predict different ends for a lifetime and for a delay. Pass 1's
			// replays go on meanwhile.
			plan.gap = st / 8
		}
		s.rungs++
		if err := s.arm(ctx, sp, plan, false); err != nil {
			return err
		}
		if s.rungs > onSchedule {
			sp.changeDeferred = true
			s.deferred = append(s.deferred, sp)
			continue
		}
		sp.changeDue = s.w.now().Add(plan.gap)
		s.pending = append(s.pending, sp)
		slices.SortFunc(s.pending, func(a, b *stalePass) int { return a.changeDue.Compare(b.changeDue) })
	}
}

// changePending sends the change of each rung armed and waiting for it, due by until (all of them
// when all is set), each at its time: a rung's token must not stay valid when the measurement ends.
func (s *staleSchedule) changePending(ctx context.Context, until time.Time, all bool) error {
	for len(s.pending) > 0 && (all || !s.pending[0].changeDue.After(until)) {
		sp := s.pending[0]
		s.pending = s.pending[1:]
		if err := s.w.sleepUntil(ctx, sp.changeDue); err != nil {
			return err
		}
		if err := s.w.change(ctx, sp); err != nil {
			return err
		}
		sp.stagger = sp.ack.Sub(s.p1.ack)
		s.spares = append(s.spares, sp)
	}
	return nil
}

// flushPending sends the change of every rung still waiting for it, at once (the measurement ended
// early); failures are left to the tokens' own expiry.
func (s *staleSchedule) flushPending(ctx context.Context) {
	for _, sp := range s.pending {
		_ = s.w.change(ctx, sp)
	}
	s.pending = nil
}

// armNow arms p and sends its change once the plan's gap (or its aimed moment) has come.
func (s *staleSchedule) armNow(ctx context.Context, p *stalePass, plan passPlan, first bool) error {
	if err := s.arm(ctx, p, plan, first); err != nil {
		return err
	}
	at := s.w.now().Add(plan.gap)
	if plan.changeAt.After(at) {
		at = plan.changeAt
	}
	if err := s.w.sleepUntil(ctx, at); err != nil {
		return err
	}
	if plan.gap == 0 && !plan.changeAt.IsZero() {
		p.gap = s.w.now().Sub(p.acceptedBefore) // the wait for the aimed moment, for the report
	}
	return s.w.change(ctx, p)
}

// next picks the next pass to replay. Tokens armed ahead are taken oldest first: one whose end, as
// the passes so far predict it, lies partly behind and partly ahead is asked once, now (a cheap
// halving of the bracket: its answer says on which side of its age the end lies); the oldest whose
// predicted end lies ahead is the pass, its replays aimed there. With none, a new token is armed now
// as planPass says (a window later).
func (s *staleSchedule) next(ctx context.Context) (*stalePass, schedule, error) {
	for {
		if err := s.due(ctx, s.w.now()); err != nil {
			return nil, nil, err
		}
		now := s.w.now()
		var straddling, oldest *stalePass
		var oldestSpans, oldestGuards []span
		best := 2.0
		for _, c := range s.candidates() {
			prior := s.passes
			if c.n == 0 {
				prior = slices.Clip(prior) // a spare is not among the passes yet
			}
			at, from := c, now.Sub(c.ack)+lead
			if c.ack.IsZero() {
				// A rung whose change was deferred: where its end would lie were it changed now.
				h := *c
				h.changeSent, h.ack = now, now.Add(s.p1.ack.Sub(s.p1.changeSent))
				at, from = &h, lead
			}
			spans, guards := predictSpans(prior, s.inf, at, s.wakeLag)
			behind := behindShare(spans, from)
			if c.n > 0 {
				behind = 0 // asked and still honoured: its end lies ahead of its last replay
			}
			switch {
			case behind <= 0.1 && oldest == nil:
				oldest, oldestSpans, oldestGuards = c, spans, guards
			case behind > 0.1 && behind < 1 && abs(behind-0.5) < best:
				straddling, best = c, abs(behind-0.5)
			}
		}
		if straddling != nil {
			if straddling.n == 0 {
				if err := s.changeDeferred(ctx, straddling); err != nil {
					return nil, nil, err
				}
				s.take(straddling)
				s.begin(straddling)
				straddling.why = s.armedWhy(straddling) + "; asked once when the passes put its end about its age, to halve the bracket"
			}
			if _, err := s.w.replay(ctx, straddling, s.w.now()); err != nil {
				return nil, nil, err
			}
			s.w.closed(straddling)
			s.inf = infer(s.passes)
			continue
		}
		if oldest == nil {
			break
		}
		c := oldest
		if c.n == 0 {
			if c.ack.IsZero() {
				if err := s.changeDeferred(ctx, c); err != nil {
					return nil, nil, err
				}
				oldestSpans, oldestGuards = predictSpans(slices.Clip(s.passes), s.inf, c, s.wakeLag)
			}
			s.take(c)
			s.begin(c)
			c.why = s.armedWhy(c) + "; the passes before it put its end ahead, so its replays were aimed there without waiting a window"
		} else {
			c.why = s.armedWhy(c) + ", and still honoured when asked; its replays went on where the passes put its end"
		}
		if c.gap > 0 {
			c.why += fmt.Sprintf("; %s between its first use and its change, so that a lifetime and a delay predict different ends", fmtDur(c.gap))
		}
		c.aimed = true
		return c, aimedFrom(oldestSpans, oldestGuards, c, s.cfg, refreshFloor(s.passes, s.inf, c)), nil
	}
	now := s.w.now()
	plan := planPass(s.passes, s.inf, now, s.cfg.perSubject)
	if len(s.inf.consistent) == 0 && plan.waitBefore == 0 && plan.gap == 0 {
		// No fixed cause fits (a periodic refresh): a token's first use does not matter, only when
		// its change is sent, so a rung armed alongside pass 1 and not changed yet serves as this
		// pass's token, unless its known expiry could end its replays before the window does (a
		// refusal then would be its age, not the refresh): a fresh token is minted instead.
		if i := s.reusable(plan); i >= 0 {
			return s.reuseDeferred(ctx, plan, i)
		}
	}
	p := &stalePass{waitBefore: plan.waitBefore, gap: plan.gap}
	switch {
	case s.cfg.perSubject:
		p.why = "begun after the previous pass, as every pass of a downgrade: " + plan.why
	case s.armed > 1:
		p.why = "begun after the previous pass: no token armed ahead was young enough for its end to lie ahead; " + plan.why
	default:
		p.why = "begun after the previous pass: " + plan.why
	}
	if err := s.armNow(ctx, p, plan, false); err != nil {
		return nil, nil, err
	}
	spans, guards := predictSpans(s.passes, s.inf, p, s.wakeLag)
	s.begin(p)
	p.aimed = true
	return p, aimedFrom(spans, guards, p, s.cfg, refreshFloor(s.passes, s.inf, p)), nil
}

// reuseDeferred begins the pass plan describes with s.deferred[i], a rung whose change was deferred: its
// change is sent when the plan says (at once when it names no moment), and its replays are aimed as
// a pass begun after the previous one.
func (s *staleSchedule) reuseDeferred(ctx context.Context, plan passPlan, i int) (*stalePass, schedule, error) {
	p := s.deferred[i]
	if err := s.w.sleepUntil(ctx, plan.changeAt); err != nil {
		return nil, nil, err
	}
	if !plan.changeAt.IsZero() {
		p.gap = s.w.now().Sub(p.acceptedBefore) // the wait for the aimed moment, for the report
	}
	if err := s.changeDeferred(ctx, p); err != nil {
		return nil, nil, err
	}
	// Its change, not its arming, began this pass: it did not overlap pass 1.
	p.why = s.armedWhy(p) + "; begun after the previous pass, as no fixed cause fit and only the change's moment matters then: " + plan.why
	p.armedDuring = 0
	spans, guards := predictSpans(s.passes, s.inf, p, s.wakeLag)
	s.begin(p)
	p.aimed = true
	return p, aimedFrom(spans, guards, p, s.cfg, refreshFloor(s.passes, s.inf, p)), nil
}

// reusable returns the index of the oldest rung whose change was deferred and whose token's known
// expiry (none for an opaque token without expires_in) lies beyond the plan's change plus the max
// window, or -1.
func (s *staleSchedule) reusable(plan passPlan) int {
	until := s.cfg.maxWindow
	if !plan.changeAt.IsZero() {
		until += plan.changeAt.Sub(s.w.now())
	}
	for i, p := range s.deferred {
		if !p.tok.Expired(until) {
			return i
		}
	}
	return -1
}

// changeDeferred sends the change of a rung whose change was deferred, now.
func (s *staleSchedule) changeDeferred(ctx context.Context, p *stalePass) error {
	if !p.ack.IsZero() {
		return nil
	}
	s.deferred = slices.DeleteFunc(s.deferred, func(q *stalePass) bool { return q == p })
	if err := s.w.change(ctx, p); err != nil {
		return err
	}
	p.stagger = p.ack.Sub(s.p1.ack)
	return nil
}

// armedWhy says when a rung armed alongside pass 1 was armed and, when its change was deferred,
// when that came.
func (s *staleSchedule) armedWhy(p *stalePass) string {
	if !p.changeDeferred {
		return fmt.Sprintf("armed %s after pass 1's acknowledgement, while it replayed", fmtDur(p.stagger))
	}
	return fmt.Sprintf("armed (first use) %s after pass 1's acknowledgement, while it replayed; its change deferred until a pass needed it, acknowledged %s after pass 1's", fmtDur(p.acceptedBefore.Sub(s.p1.ack)), fmtDur(p.stagger))
}

// candidates are the tokens that may still be replayed: passes asked once and still honoured,
// tokens armed ahead and changed, and, while a fixed cause fits, tokens armed ahead whose change was
// deferred (a periodic refresh would end them a period later, wherever the passes put it), oldest
// first.
func (s *staleSchedule) candidates() []*stalePass {
	var out []*stalePass
	for _, p := range s.passes {
		if p.armedDuring > 0 && !p.closed() && len(p.replays) > 0 {
			out = append(out, p)
		}
	}
	out = append(out, s.spares...)
	if len(s.inf.consistent) > 0 {
		out = append(out, s.deferred...)
	}
	// A rung whose change was deferred is as old as its first use, whenever its change came.
	armed := func(p *stalePass) time.Time {
		if p.changeDeferred {
			return p.acceptedBefore
		}
		return p.ack
	}
	slices.SortFunc(out, func(a, b *stalePass) int { return armed(a).Compare(armed(b)) })
	return out
}

// full counts the passes whose replays were scheduled (not tokens asked once).
func (s *staleSchedule) full() int {
	n := 0
	for _, p := range s.passes {
		if p.n == 1 || p.aimed {
			n++
		}
	}
	return n
}

// take removes p from the spares.
func (s *staleSchedule) take(p *stalePass) {
	s.spares = slices.DeleteFunc(s.spares, func(q *stalePass) bool { return q == p })
}

func abs(x float64) float64 { return max(x, -x) }

// lead is how far ahead a predicted end must lie for a token to be worth aiming at.
const lead = 2 * time.Millisecond

// behindShare is the share of the predicted ends (offsets after a token's acknowledgement) that lie
// before from: 0 when all lie ahead, 1 when all are behind. An open span counts as ahead from its
// start on.
func behindShare(spans []span, from time.Duration) float64 {
	if len(spans) == 0 {
		return 1
	}
	var total, behind time.Duration
	for _, sp := range spans {
		if !sp.closed() {
			if sp.lo < from {
				return 0.5 // part of it is behind, and how much cannot be said
			}
			continue
		}
		total += sp.width() + 1
		if sp.lo < from {
			behind += min(sp.hi, from) - sp.lo + 1
		}
	}
	if total == 0 {
		return 0
	}
	return float64(behind) / float64(total)
}

func (s *staleSchedule) arm(ctx context.Context, p *stalePass, plan passPlan, first bool) error {
	s.armed++
	p.fillCertain = true
	return s.w.arm(ctx, p, plan, first)
}

// begin numbers p as the next pass to replay.
func (s *staleSchedule) begin(p *stalePass) {
	p.n = len(s.passes) + 1
	s.passes = append(s.passes, p)
}

// replayPass sends p's replays on sched until one is refused, the max window, or an error; before
// each, what falls due before it is done (see due).
func (s *staleSchedule) replayPass(ctx context.Context, p *stalePass, sched schedule) error {
	next := offsets(sched, s.cfg.maxWindow)
	defer s.w.closed(p)
	for i := 0; ; i++ {
		offset, ok := next()
		if !ok {
			p.stoppedBy = finding.StoppedMaxWindow
			return nil
		}
		at := p.ack.Add(offset)
		if err := s.due(ctx, at); err != nil {
			return err
		}
		future := at.After(s.w.now())
		if err := s.w.sleepUntil(ctx, at); err != nil {
			return err
		}
		rp, err := s.w.replay(ctx, p, at)
		if err != nil {
			return err
		}
		if i == 0 && future {
			// The first request after a long wait leaves late even so (the machine wakes slowly);
			// later passes widen their margin by the worst lag seen.
			s.wakeLag = min(max(s.wakeLag, rp.sent.Sub(at)), 50*time.Millisecond)
		}
		if rp.outcome == probe.Rejected {
			return nil
		}
	}
}

// offsets yields sched's offsets, none past maxWindow, the last at maxWindow: "never within
// max_window" must be measured, not wherever the schedule's last step before it fell.
func offsets(sched schedule, maxWindow time.Duration) func() (time.Duration, bool) {
	i, prev := 0, time.Duration(0)
	return func() (time.Duration, bool) {
		offset := sched(i, prev)
		if offset > maxWindow {
			if prev >= maxWindow || i == 0 {
				return 0, false
			}
			offset = maxWindow
		}
		i, prev = i+1, offset
		return offset, true
	}
}

// wall is how long the measurement has taken so far.
func (s *staleSchedule) wall() time.Duration { return s.w.now().Sub(s.started) }

func fmtDur(d time.Duration) string { return fmtMS(ms(d)) }

// StalenessRequests estimates the most requests one staleness measurement of a probe sends, when
// arming a token for it costs perPass requests (the token, its setup steps, the first use, the
// change, and a restore per subject): the first pass's replays up to maxWindow with every rung of
// the ladder armed beside it (a window that never closes), or the later passes' aimed replays, and
// the controls.
func StalenessRequests(maxWindow time.Duration, perSubject bool, perPass int) int {
	s := newStaleSchedule(nil, staleConfig{maxWindow: maxWindow, perSubject: perSubject})
	ladder := s.ladder()
	first := 0
	next := offsets(firstSchedule(&stalePass{}, ladder, maxWindow, span{}, false), maxWindow)
	for {
		if _, ok := next(); !ok {
			break
		}
		first++
	}
	later := (maxPasses - 1) * (refinePoints + perPass)
	return perPass + first + len(ladder)*perPass + later + 2
}
