package check

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// The staleness model: what one pass proves, in which frame passes may be combined, and which cause
// they point to. Everything here is a pure function of the passes' data (absolute times), so that it
// can be tested without a server; stale_plan.go decides where the next pass's replays go, and
// stale.go makes the requests.
//
// A pass proves that the window's end T_end lies in (last accepted replay's send, first refused
// replay's receipt]: the API decides between a request's send and its answer. With no replay accepted
// after the acknowledgement, the lower bound is the send of the last request accepted before the
// change.
//
// A frame is a reference point R in each pass: the first use's send or receipt (or anywhere between),
// the change's send or acknowledgement (or between), the token's exp. In frame R a pass bounds the
// parameter T_end - R. Under the right cause that parameter is the same in every pass (a cache
// lifetime, a propagation delay, an expiry leeway), so a frame is consistent when the passes'
// intervals share a point. Passes are combined only in a frame where they agree; a reported width
// always comes from one pass's replays.

const (
	// frameTolerance is how far apart passes' intervals may be and still share a point: a point
	// frame stands for a moment inside a round trip (the server stamps its cache while it handles
	// the request), which loopback puts within a few hundred microseconds of the send or receipt,
	// and clock reads add microseconds. Frames spanning a whole round trip need none; they get it too.
	frameTolerance = 500 * time.Microsecond
	// periodTolerance is how far a periodic refresh's ticks may stray from a grid (its loop's own
	// scheduling) when the period is fitted.
	periodTolerance = 2 * time.Millisecond
	// maxLeeway bounds the offset from a token's exp that still reads as "until exp": validators
	// allow clock skew of up to a few minutes (5 min is the largest common default).
	maxLeeway = 5 * time.Minute
	// forever is the upper end of an interval nothing bounds.
	forever = time.Duration(math.MaxInt64)
)

// replayObs is one replay after the acknowledgement.
type replayObs struct {
	sent, received time.Time
	outcome        probe.Outcome
	status         int
}

// stalePass is what one pass saw, in absolute times.
type stalePass struct {
	n       int
	started time.Time // after any planned wait
	minted  time.Time // the token came back from its source
	// exp and iat are the token's claims when it is a JWT (read without verifying); zero otherwise.
	exp, iat time.Time
	// The token's first use, which filled what the API caches. fillCertain is false when the cache
	// may have been filled earlier (per-subject permissions on a downgrade's first pass).
	fillSent, fillReceived time.Time
	fillCertain            bool
	acceptedBefore         time.Time // send of the last request accepted before the change
	changeSent, ack        time.Time
	waitBefore, gap        time.Duration
	replays                []replayObs
	// stoppedBy says why the replays ended without a refusal (a finding.Stopped* value).
	stoppedBy, stopDetail string
	// why says why the pass was needed and how it was begun, for the report.
	why string
	// stagger is how long after pass 1's acknowledgement a token armed alongside pass 1 was
	// acknowledged (armedDuring is then 1); zero for a pass begun after the previous one.
	stagger     time.Duration
	armedDuring int
	aimed       bool      // the pass's replays were scheduled (not a token asked once)
	changeDue   time.Time // a rung armed alongside pass 1: when its change is due
	// changeDeferred marks a rung armed alongside pass 1 whose change waited until a pass needed
	// it (see staleSchedule.deferred); its ack is then that later change's.
	changeDeferred bool
	inconclusive   int            // answers in a row that were neither accepted nor refused
	lastProgress   time.Time      // when a progress line last said the pass is still honoured
	tok            identity.Token // the pass's token: the change is made to it, evidence labels it

	tl   timeline   // the pass's events, in absolute time
	vars probe.Vars // the pass's variables, for controls
}

// end bounds the window's end: (lo, hi], hi meaningful only when closed (a replay was refused).
func (p *stalePass) end() (lo, hi time.Time, closed bool) {
	lo = p.acceptedBefore
	for _, r := range p.replays {
		switch r.outcome {
		case probe.Accepted:
			if r.sent.After(lo) {
				lo = r.sent
			}
		case probe.Rejected:
			if !closed || r.received.Before(hi) {
				hi = r.received
			}
			closed = true
		}
	}
	return lo, hi, closed
}

// acceptedAfterAck reports whether a replay was accepted after the acknowledgement: the finding.
func (p *stalePass) acceptedAfterAck() bool {
	for _, r := range p.replays {
		if r.outcome == probe.Accepted {
			return true
		}
	}
	return false
}

func (p *stalePass) closed() bool { _, _, c := p.end(); return c }

// window is the pass's window after its acknowledgement (the change-acknowledged frame).
func (p *stalePass) window() span {
	lo, hi, closed := p.end()
	s := span{lo.Sub(p.ack), forever}
	if closed {
		s.hi = hi.Sub(p.ack)
	}
	return s
}

// span is an interval of durations; hi == forever means unbounded above.
type span struct{ lo, hi time.Duration }

func (s span) closed() bool { return s.hi != forever }

func (s span) width() time.Duration {
	if !s.closed() {
		return forever
	}
	return s.hi - s.lo
}

func (s span) bracket() *finding.Bracket {
	b := &finding.Bracket{LoMS: finding.Round(ms(s.lo))}
	if s.closed() {
		hi := finding.Round(ms(s.hi))
		b.HiMS = &hi
	}
	return b
}

// frameDef is one reference point, or a pair of them the passes cannot tell apart.
type frameDef struct {
	name string // a finding.Frame* value
	// ref gives the reference's earliest and latest moment in a pass (equal for a point frame), or
	// ok false when the pass has none (a token with no exp).
	ref func(p *stalePass) (lo, hi time.Time, ok bool)
	// side, for a point frame, is where the server's own moment lies: +1 after the reference (a
	// send), -1 before it (a receipt). The reported interval is widened by frameTolerance that way.
	side int
	// fromFill frames count from the first use: open above in a pass whose fill is not certain.
	fromFill bool
}

func pointRef(at func(p *stalePass) time.Time) func(p *stalePass) (time.Time, time.Time, bool) {
	return func(p *stalePass) (time.Time, time.Time, bool) { t := at(p); return t, t, !t.IsZero() }
}

var (
	frameFillSent = frameDef{finding.FrameFillSent, pointRef(func(p *stalePass) time.Time { return p.fillSent }), +1, true}
	frameFillRecv = frameDef{finding.FrameFillReceived, pointRef(func(p *stalePass) time.Time { return p.fillReceived }), -1, true}
	frameFirstUse = frameDef{finding.FrameFirstUse, func(p *stalePass) (time.Time, time.Time, bool) {
		return p.fillSent, p.fillReceived, true
	}, 0, true}
	frameChangeSent = frameDef{finding.FrameChangeSent, pointRef(func(p *stalePass) time.Time { return p.changeSent }), +1, false}
	frameAck        = frameDef{finding.FrameChangeAcked, pointRef(func(p *stalePass) time.Time { return p.ack }), -1, false}
	frameChange     = frameDef{finding.FrameChange, func(p *stalePass) (time.Time, time.Time, bool) {
		return p.changeSent, p.ack, true
	}, 0, false}
	frameExp = frameDef{finding.FrameTokenExp, pointRef(func(p *stalePass) time.Time { return p.exp }), 0, false}
)

// interval is what pass p proves about the parameter in frame f.
func (f frameDef) interval(p *stalePass) (span, bool) {
	rlo, rhi, ok := f.ref(p)
	if !ok {
		return span{}, false
	}
	lo, hi, closed := p.end()
	s := span{lo.Sub(rhi), forever}
	if closed && !(f.fromFill && !p.fillCertain) {
		s.hi = hi.Sub(rlo)
	}
	return s, true
}

// reported is p's interval widened, for a point frame, by the tolerance on the server's side.
func (f frameDef) reported(p *stalePass) (span, bool) {
	s, ok := f.interval(p)
	switch {
	case !ok:
	case f.side > 0:
		s.lo -= frameTolerance
	case f.side < 0 && s.closed():
		s.hi += frameTolerance
	}
	return s, ok
}

// meet intersects the passes' intervals in f. consistent is false when they share no point (within
// the tolerance); ok is false when a pass has no such reference. When inconsistent, the span runs
// between the two bounds that disagree.
func (f frameDef) meet(passes []*stalePass) (s span, consistent, ok bool) {
	s = span{-forever, forever}
	for _, p := range passes {
		in, ok := f.interval(p)
		if !ok {
			return span{}, false, false
		}
		s.lo, s.hi = max(s.lo, in.lo), min(s.hi, in.hi)
	}
	if s.lo <= s.hi {
		return s, true, true
	}
	consistent = s.lo-s.hi <= frameTolerance
	s.lo, s.hi = s.hi, s.lo
	return s, consistent, true
}

// familyDef is a cause with its frames: point frames that may single out the server's moment, and
// the merged frame that holds whenever either does.
type familyDef struct {
	cause  string
	points []frameDef
	merged frameDef
}

var families = []familyDef{
	{finding.CauseLifetime, []frameDef{frameFillSent, frameFillRecv}, frameFirstUse},
	{finding.CauseDelay, []frameDef{frameChangeSent, frameAck}, frameChange},
	{finding.CauseExpiry, nil, frameExp},
}

// familyState is a cause as the passes so far see it.
type familyState struct {
	def        *familyDef
	consistent bool
	// frame is the one the cause would be reported in: the only consistent point frame when the
	// passes singled one out, else the merged frame. predict lists the frames the next pass's
	// replays should aim at.
	frame   frameDef
	predict []frameDef
	meet    span // in frame
}

func assess(def *familyDef, passes []*stalePass) (familyState, bool) {
	st := familyState{def: def, frame: def.merged}
	m, consistent, ok := def.merged.meet(passes)
	if !ok {
		return st, false
	}
	if def.cause == finding.CauseExpiry && (m.hi < -maxLeeway || m.lo > maxLeeway) {
		return st, false // the end is nowhere near exp: not a hypothesis worth a replay
	}
	st.consistent, st.meet = consistent, m
	var points []frameDef
	for _, f := range def.points {
		if _, c, _ := f.meet(passes); c {
			points = append(points, f)
		}
	}
	st.predict = []frameDef{def.merged}
	if len(points) > 0 {
		st.predict = points
	}
	if len(points) == 1 {
		st.frame = points[0]
		st.meet, _, _ = points[0].meet(passes)
	}
	return st, true
}

// inference is what the passes so far show.
type inference struct {
	cause      string        // a finding.Cause* value
	consistent []familyState // the fixed causes still consistent
	fixed      *familyState  // the named fixed cause
	candidates []string      // when undetermined
	phaseMoved bool          // a pass was started at another phase on purpose (see planPass)
	closed     int           // passes that saw a refusal
	period     periodFit     // what a periodic refresh would mean
	bracketAt  int           // index of the pass whose interval is reported
	bracket    span          // that interval, in the cause's frame
	frame      string        // the frame of bracket
	narrowest  time.Duration // bracket's width (forever when open)
}

// infer names the cause the passes point to. A fixed cause (lifetime, delay, expiry) is named only
// when it alone is consistent and a pass was started at another phase (else a periodic refresh,
// polled at the same phase each time, could pass for it); no fixed frame consistent after three
// closed passes is a periodic refresh; a first pass that never closed is "never".
func infer(passes []*stalePass) inference {
	inf := inference{bracketAt: -1}
	if len(passes) == 0 {
		inf.cause = finding.CauseUndetermined
		return inf
	}
	for _, p := range passes {
		if p.closed() {
			inf.closed++
		}
	}
	for i := range families {
		if st, ok := assess(&families[i], passes); ok && st.consistent {
			inf.consistent = append(inf.consistent, st)
		}
	}
	if len(inf.consistent) == 1 {
		inf.phaseMoved = phaseMoved(inf.consistent[0].def.merged, passes)
	}
	inf.period = fitPeriod(passes)
	switch {
	case !passes[0].closed():
		inf.cause = finding.CauseNever
	case len(inf.consistent) == 1 && (inf.phaseMoved || inf.period.ruledOut):
		inf.cause, inf.fixed = inf.consistent[0].def.cause, &inf.consistent[0]
	case len(inf.consistent) == 1:
		inf.cause = finding.CauseUndetermined
		inf.candidates = []string{inf.consistent[0].def.cause, finding.CausePeriodic}
	case len(inf.consistent) == 0 && inf.closed >= 3:
		inf.cause = finding.CausePeriodic
	case len(inf.consistent) == 0:
		inf.cause = finding.CauseUndetermined
		inf.candidates = []string{finding.CausePeriodic}
	default:
		inf.cause = finding.CauseUndetermined
		for _, st := range inf.consistent {
			inf.candidates = append(inf.candidates, st.def.cause)
		}
	}
	inf.narrowest = forever
	if inf.fixed != nil {
		inf.frame = inf.fixed.frame.name
		for i, p := range passes {
			if s, ok := inf.fixed.frame.reported(p); ok && s.closed() && s.width() < inf.narrowest {
				inf.bracketAt, inf.bracket, inf.narrowest = i, s, s.width()
			}
		}
	}
	if inf.bracketAt < 0 { // periodic, never, undetermined: the observed window of one pass
		inf.frame = finding.FrameChangeAcked
		for i, p := range passes {
			if w := p.window(); w.closed() && w.width() < inf.narrowest {
				inf.bracketAt, inf.bracket, inf.narrowest = i, w, w.width()
			}
		}
	}
	if inf.bracketAt < 0 { // nothing closed: the first pass, open
		inf.bracketAt, inf.bracket = 0, passes[0].window()
	}
	return inf
}

// phaseMoved reports whether the passes rule out a periodic refresh passing for a fixed cause in frame
// f. Polled back to back, pass i makes its reference R_i a near-constant time after pass i-1's end,
// and a refresh's end comes one period after the previous one: end_i - R_i is then the same in every
// pass, just as under a fixed cause. That needs R_i - end_{i-1} to be one value K for every pass;
// each pass after a closed one bounds it by [R_i - hi_{i-1}, R_i - lo_{i-1}] (its phase). When these
// share no point, some pass began at another phase, and a refresh would have moved its end.
func phaseMoved(f frameDef, passes []*stalePass) bool {
	m, n := phaseMeet(f, passes)
	return n >= 2 && m.lo > m.hi+frameTolerance
}

// phaseMeet intersects the passes' phases (see phaseMoved) in f's reference; n counts them.
func phaseMeet(f frameDef, passes []*stalePass) (m span, n int) {
	m = span{-forever, forever}
	for i := 1; i < len(passes); i++ {
		lo, hi, closed := passes[i-1].end()
		rlo, rhi, ok := f.ref(passes[i])
		if !closed || !ok {
			continue
		}
		m.lo, m.hi = max(m.lo, rlo.Sub(hi)), min(m.hi, rhi.Sub(lo))
		n++
	}
	return m, n
}

// periodFit is what the passes say of a periodic refresh: its ticks are the windows' ends, every two
// of them an integer number of periods apart, and no window is longer than a period.
type periodFit struct {
	shortest, longest span // windows after the acknowledgement, by their upper and lower ends
	period            span
	ok                bool
	// ruledOut is true when no period at all fits the ends: no periodic refresh made them (passes
	// whose windows overlapped ended further apart than any period could put them).
	ruledOut bool
	note     string
	ticks    []tick
}

// shortSeen says a window was observed that ended within a tenth of the period of its
// acknowledgement, and longSeen one honoured over nine tenths of it: for every period the bracket
// allows, not only its middle, so that "within 10%" holds whichever the true period is.
func (f periodFit) shortSeen() bool { return f.shortest.hi <= f.period.lo/10 }
func (f periodFit) longSeen() bool  { return f.longest.lo >= f.period.hi*9/10 }

// bounded says a period was fitted with an upper bound: ends of two different refreshes were seen.
// Until then any period from the longest window up fits, and no refresh can be predicted.
func (f periodFit) bounded() bool { return f.ok && f.period.closed() }

// tick is where one pass's end lies, in absolute time.
type tick struct{ lo, hi time.Time }

// fitPeriod estimates the refresh period: the largest P at least as long as every observed window
// such that every two ends are a whole number of periods apart, within their brackets.
func fitPeriod(passes []*stalePass) periodFit {
	var fit periodFit
	var minPeriod time.Duration
	first := true
	for _, p := range passes {
		w := p.window()
		minPeriod = max(minPeriod, w.lo)
		if !w.closed() {
			continue
		}
		if first || w.hi < fit.shortest.hi {
			fit.shortest = w
		}
		if first || w.lo > fit.longest.lo {
			fit.longest = w
		}
		first = false
		lo, hi, _ := p.end()
		if p.changeSent.After(lo) {
			lo = p.changeSent // the refresh that carried the change came after it was made
		}
		fit.ticks = append(fit.ticks, tick{lo, hi})
	}
	if len(fit.ticks) < 2 {
		fit.note = "fewer than two windows closed, so no period can be fitted"
		return fit
	}
	cands := []span{{max(minPeriod, time.Millisecond), forever}}
	cut := false
	for i := range fit.ticks {
		for j := i + 1; j < len(fit.ticks); j++ {
			dlo := fit.ticks[j].lo.Sub(fit.ticks[i].hi) - periodTolerance
			dhi := fit.ticks[j].hi.Sub(fit.ticks[i].lo) + periodTolerance
			if dlo <= 0 && dhi >= 0 {
				continue // the same refresh may have ended both (passes that overlapped)
			}
			if dhi < 0 {
				dlo, dhi = -dhi, -dlo
			}
			var truncated bool
			cands, truncated = multiplesOf(cands, dlo, dhi)
			cut = cut || truncated
		}
	}
	if len(cands) == 0 {
		fit.note = "the ends do not fit a common period within their brackets"
		fit.ruledOut = !cut
		return fit
	}
	best := cands[0]
	for _, c := range cands[1:] {
		if c.hi > best.hi {
			best = c
		}
	}
	fit.period, fit.ok = best, true
	fit.note = "the largest period, no shorter than the longest window, of which every two ends are whole multiples apart"
	return fit
}

// maxMultiples bounds how many multiples of a difference are tried; past it the period is left
// unestimated rather than guessed.
const maxMultiples = 1000

// multiplesOf keeps the parts of cands (period candidates) for which some whole k >= 1 puts k*P in
// [dlo, dhi]. truncated is true when maxMultiples cut the multiples tried.
func multiplesOf(cands []span, dlo, dhi time.Duration) (out []span, truncated bool) {
	for _, c := range cands {
		kmin := int64(1)
		if c.hi != forever && dlo > 0 {
			kmin = max(1, int64(math.Ceil(float64(dlo)/float64(c.hi))))
		}
		kmax := int64(dhi / c.lo)
		if kmax-kmin > maxMultiples {
			kmax, truncated = kmin+maxMultiples, true
		}
		for k := kmin; k <= kmax; k++ {
			lo := max(c.lo, time.Duration(math.Ceil(float64(dlo)/float64(k))))
			hi := min(c.hi, dhi/time.Duration(k))
			if lo <= hi {
				out = append(out, span{lo, hi})
			}
		}
	}
	slices.SortFunc(out, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	return out, truncated
}

// nextTicks predicts where the refresh that carries a change made in [from, to] lies: the first tick
// after from, and the one after it if the first may come before to.
func (f periodFit) nextTicks(from, to time.Time) []tick {
	if !f.bounded() || len(f.ticks) == 0 {
		return nil
	}
	// Predict from the known tick whose prediction is narrowest: a near one, unless a far one is
	// much narrower (each period between them adds the period's uncertainty).
	var ref tick
	best := forever
	for _, t := range f.ticks {
		k := from.Sub(t.hi) / f.period.lo
		if w := t.hi.Sub(t.lo) + time.Duration(max(k, 0)+1)*f.period.width(); w < best {
			ref, best = t, w
		}
	}
	at := func(k int64) tick {
		return tick{ref.lo.Add(time.Duration(k) * f.period.lo), ref.hi.Add(time.Duration(k) * f.period.hi)}
	}
	k := int64(math.Floor(float64(from.Sub(ref.hi)) / float64(f.period.hi)))
	for at(k).hi.Before(from) {
		k++
	}
	out := []tick{at(k)}
	if at(k).lo.Before(to) {
		out = append(out, at(k+1))
	}
	return out
}
