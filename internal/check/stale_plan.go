package check

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
)

// Where a later pass's replays go, and how a pass begun after the previous one begins (the first
// pass's schedule and the tokens armed beside it are stale_sched.go's). Each later pass aims its
// replays where every cause still consistent predicts the end in this pass (its own fill, change and
// exp, plus what earlier passes bracket in that frame); a pass begun after the previous one is begun
// so that the causes predict different ends: a wait before the pass moves its phase against a
// periodic refresh, a gap between the first use and the change moves the change frames away from the
// fill frames, a wait that lands the token's mint at another fraction of a second moves exp away from
// both (exp has whole seconds). Against a periodic refresh, passes are begun so that the change lands
// just before or just after a predicted refresh, to observe the shortest and the longest window.

const (
	firstStep    = 25 * time.Millisecond // coarse schedule: smallest step
	growth       = 1.4                   // coarse schedule: each step this much longer than the offset so far
	refinePoints = 24                    // at most this many replays aimed in one pass
	// separatePoints caps a pass begun to separate the causes: its job is to show which prediction
	// holds, and the replays aimed at the ones that do not are spent before the end.
	separatePoints = 16
	maxPasses      = 5
	// minSeparation is the least a wait or gap moves a prediction: well over a loopback round trip
	// and the frame tolerance, so a moved end cannot pass for an unmoved one.
	minSeparation = 20 * time.Millisecond
	// unaimedGrowth is each step of a pass with nothing to aim at, as a share of the time so far.
	unaimedGrowth = 0.05
	// flooredGrowth is each step of such a pass once a floor is known, as a share of the time so far.
	flooredGrowth = 0.03
	// fineReach bounds the fine steps after a pass's aimed points (see aimedSchedule).
	fineReach = 3
)

// passPlan is how a pass begins.
type passPlan struct {
	waitBefore time.Duration // pause before the pass's token is minted
	gap        time.Duration // pause between the first use and the change
	changeAt   time.Time     // when set, the change is sent at this moment (after the first use)
	why        string        // for progress lines and notes
}

// planPass decides how the next pass begins. perSubject is true when the passes cannot be begun at a
// chosen moment (a downgrade waits for its restore to take effect), which rules out aiming at a
// periodic refresh's phase.
func planPass(passes []*stalePass, inf inference, now time.Time, perSubject bool) passPlan {
	if len(passes) == 0 {
		return passPlan{}
	}
	if len(inf.consistent) == 0 {
		if perSubject || inf.closed < 2 {
			return passPlan{why: "no fixed cause fits: repeating at another phase"}
		}
		return planPhase(passes, inf.period, now)
	}
	// The widest bracket the consistent causes have (an open one, from an uncertain fill, says
	// nothing of how far apart predictions must be).
	widest, windowLo := time.Duration(-1), forever
	for _, st := range inf.consistent {
		if st.meet.closed() {
			widest = max(widest, st.meet.width())
		}
	}
	if widest < 0 {
		widest = forever
	}
	for _, p := range passes {
		windowLo = min(windowLo, max(p.window().lo, 0))
	}
	has := func(cause string) bool {
		return slices.ContainsFunc(inf.consistent, func(st familyState) bool { return st.def.cause == cause })
	}
	needPhase := !inf.phaseMoved && !inf.period.ruledOut
	needGap := has(finding.CauseLifetime) && has(finding.CauseDelay)
	// exp has whole seconds: moving the mint by half a second separates it once brackets are narrower.
	needExp := has(finding.CauseExpiry) && len(inf.consistent) > 1 && widest <= time.Second/4
	lastChance := len(passes)+1 >= maxPasses
	gap := max(minSeparation, 3*widest)
	if widest == forever {
		gap = max(minSeparation, windowLo/4)
	}
	var plan passPlan
	var why []string
	// A gap is worth its pass once the brackets are narrow next to the window (a gap longer than half
	// the window would end a lifetime before the change); a wait, once a phase is known to move away
	// from, and not more than a window.
	if needGap && (gap <= windowLo/2 || lastChance) {
		plan.gap = min(gap, max(windowLo/2, minSeparation))
		why = append(why, "a gap between the first use and the change")
	}
	if needPhase {
		if wait, ok := phaseWait(passes, inf.consistent, now); ok && (wait <= max(windowLo, minSeparation) || lastChance) {
			plan.waitBefore = wait
			why = append(why, "begun later to move the phase against a periodic refresh")
		}
	}
	if needExp {
		plan.waitBefore += expPhaseWait(passes, now.Add(plan.waitBefore))
		why = append(why, "the token minted at another fraction of a second than the last one")
	}
	plan.why = "refining"
	if len(why) > 0 {
		plan.why = "separating the causes: " + strings.Join(why, "; ")
	}
	return plan
}

// phaseWait is how long to wait before the next pass so that its phase (see phaseMoved) lies above
// every phase the earlier passes share, in each consistent cause's frame: then a periodic refresh
// would move its end. ok is false while no phase is known yet.
func phaseWait(passes []*stalePass, consistent []familyState, now time.Time) (wait time.Duration, ok bool) {
	last := passes[len(passes)-1]
	_, end, closed := last.end()
	if !closed {
		return 0, false
	}
	for _, st := range consistent {
		f := st.def.merged
		m, n := phaseMeet(f, passes)
		if n == 0 {
			continue
		}
		target := end.Add(m.hi + minSeparation) // the next pass's reference must come after this
		if f.name == finding.FrameTokenExp {
			// exp has whole seconds: the next token's exp is the first whole second past its
			// mint plus its lifetime, so the wait must carry the mint past the right second.
			mintLag, lifetime := last.minted.Sub(last.started), last.exp.Sub(last.iat)
			if last.iat.IsZero() {
				lifetime = last.exp.Sub(last.minted).Round(time.Second)
			}
			exp := target.Truncate(time.Second)
			if exp.Before(target) {
				exp = exp.Add(time.Second)
			}
			wait, ok = max(wait, exp.Sub(now.Add(mintLag+lifetime)), minSeparation), true
			continue
		}
		// How soon after its start a pass reaches the reference, at least.
		setup := forever
		for _, p := range passes {
			if rlo, _, ok := f.ref(p); ok {
				setup = min(setup, rlo.Sub(p.started))
			}
		}
		if setup == forever {
			continue
		}
		wait, ok = max(wait, target.Sub(now.Add(setup)), minSeparation), true
	}
	return wait, ok
}

// expPhaseWait is the wait that puts the next token's mint half a second of phase away from the last
// one's, so that exp (whole seconds) and the first use move apart.
func expPhaseWait(passes []*stalePass, at time.Time) time.Duration {
	last := passes[len(passes)-1]
	mintLag := last.minted.Sub(last.started)
	want := (last.minted.UnixNano() + int64(time.Second/2)) % int64(time.Second)
	have := at.Add(mintLag).UnixNano() % int64(time.Second)
	return time.Duration((want - have + int64(time.Second)) % int64(time.Second))
}

// planPhase sends a pass's change, against a periodic refresh, just before the next predicted
// refresh (to observe the shortest window) or just after it (the longest), whichever the passes have
// not shown yet. The pass waits for that moment between its first use and its change, so that only
// the change's own round trip stands between the aim and the acknowledgement.
func planPhase(passes []*stalePass, fit periodFit, now time.Time) passPlan {
	if !fit.ok {
		return passPlan{why: "periodic? " + fit.note}
	}
	if !fit.bounded() {
		return passPlan{why: "periodic? every end so far may be the same refresh's, so no period is bounded yet"}
	}
	period := (fit.period.lo + fit.period.hi) / 2
	shortSeen, longSeen := fit.shortSeen(), fit.longSeen()
	if shortSeen && longSeen {
		return passPlan{why: "periodic: refining the period"}
	}
	// The longest a pass took from its start to its change, and a change to its acknowledgement.
	// A rung whose change was deferred waited for it on purpose: its start says nothing of a setup.
	var setup, change time.Duration
	for _, p := range passes {
		if !p.changeDeferred {
			setup = max(setup, p.changeSent.Sub(p.started))
		}
		change = max(change, p.ack.Sub(p.changeSent))
	}
	earliest := now.Add(setup)
	t := fit.nextTicks(earliest, earliest)[0]
	// Sent so that it is acknowledged by the refresh's earliest moment, the change is carried by that
	// refresh: the window is at most the refresh's uncertainty. Sent after its latest moment, the
	// change waits for the next one: the window is at least a period less that uncertainty.
	margin := change + 5*time.Millisecond
	if t.hi.Sub(t.lo) > period/5 {
		return passPlan{why: "periodic: the refreshes are not yet predicted well enough to aim at one"}
	}
	if !shortSeen {
		at := t.lo.Add(-margin - change)
		if at.Before(earliest) {
			at = at.Add(fit.period.lo) // too close: aim at the refresh after it
		}
		return passPlan{changeAt: at, why: "periodic: changing just before a predicted refresh"}
	}
	return passPlan{changeAt: t.hi.Add(margin), why: "periodic: changing just after a predicted refresh"}
}

// schedule returns the offset after the acknowledgement at which replay i should be sent, given
// the offset of the previous replay.
type schedule func(i int, prev time.Duration) time.Duration

// unaimedSchedule is a later pass's with nothing to aim at: no fixed cause fits the passes and no
// period is fitted yet, so its end is a periodic refresh's next tick, and the refreshes can be
// predicted (and a change aimed just before or after one) only from ticks bracketed narrowly. Each
// step is unaimedGrowth of the time so far, not the coarse schedule's 40%: a tick 3 s out is
// bracketed within about 150 ms rather than a second. With a floor (see refreshFloor), no refresh
// can end the window before it: after the replay at once, the replays begin there, in steps of
// flooredGrowth, a tick 3 s out within about 90 ms, for fewer replays than from the start.
func unaimedSchedule(floor time.Duration) schedule {
	return func(i int, prev time.Duration) time.Duration {
		switch {
		case i == 0:
			return 0
		case floor > 0 && i == 1:
			return max(floor, firstStep)
		case floor > 0:
			return prev + max(firstStep, time.Duration(float64(prev)*flooredGrowth))
		}
		return prev + max(firstStep, time.Duration(float64(prev)*unaimedGrowth))
	}
}

// refreshFloor is, while a periodic refresh is all that fits the passes and no period is fitted
// yet, the earliest offset after cur's acknowledgement at which a refresh can end cur's window:
// a pass whose end came before cur's change was sent saw a refresh no earlier than the lower end of
// its end, the next comes a period later, and the period is at least as long as every window seen
// (a replay accepted that long after an acknowledgement means no refresh came in between). 0 when
// nothing bounds it.
func refreshFloor(passes []*stalePass, inf inference, cur *stalePass) time.Duration {
	if len(inf.consistent) > 0 || inf.period.bounded() || inf.period.ruledOut || cur.changeSent.IsZero() {
		return 0
	}
	var last time.Time
	var longest time.Duration
	for _, p := range passes {
		lo, hi, closed := p.end()
		if p == cur || !closed {
			continue
		}
		longest = max(longest, p.window().lo)
		if !hi.After(cur.changeSent) && lo.After(last) {
			last = lo
		}
	}
	if last.IsZero() || longest <= 0 {
		return 0
	}
	return max(last.Add(longest).Sub(cur.ack)-frameTolerance, 0)
}

// aimedSchedule sends the replays at points (with none, see unaimedSchedule), then, should the
// window outlast them, goes on in steps that start at step and double, up to unaimedGrowth of the
// time so far while it is within fineReach times the last point, the coarse schedule's beyond: a
// prediction that was a little off still gets a narrow bracket, an end the fixed causes did not
// predict (a periodic refresh's, at most a period after the change) is bracketed as narrowly as an
// unaimed pass would, and a window far longer than predicted costs few replays.
func aimedSchedule(points []time.Duration, step time.Duration) schedule {
	if len(points) == 0 {
		return unaimedSchedule(0)
	}
	step = max(step, time.Millisecond)
	fine := fineReach * points[len(points)-1]
	return func(i int, prev time.Duration) time.Duration {
		if i < len(points) {
			return points[i]
		}
		k := min(i-len(points), 30)
		g := growth - 1
		if prev < fine {
			g = unaimedGrowth
		}
		return prev + max(min(step<<k, time.Duration(float64(prev)*g)), time.Millisecond)
	}
}

// predictSpans is where each cause still consistent predicts pass cur's end, once its change is
// acknowledged (offsets after the acknowledgement, with a margin): cur's own first use, change and
// exp plus what the earlier passes bracket in that frame. guards are ends a pass begun later on
// purpose only has to catch (a periodic refresh polled back to back); with no fixed cause left, the
// next refresh a fitted period predicts.
func predictSpans(passes []*stalePass, inf inference, cur *stalePass, wakeLag time.Duration) (spans, guards []span) {
	// add predicts the end at [lo + in.lo, hi + in.hi] in absolute time.
	add := func(lo, hi time.Time, in span) {
		s := span{lo.Sub(cur.ack) + in.lo, forever}
		margin := frameTolerance + time.Millisecond
		if in.closed() {
			s.hi = hi.Sub(cur.ack) + in.hi
			margin += s.width() / 10
			s.hi += margin
		}
		s.lo -= margin + wakeLag
		spans = append(spans, s)
	}
	for _, st := range inf.consistent {
		for _, f := range st.predict {
			m, _, _ := f.meet(passes)
			if rlo, rhi, ok := f.ref(cur); ok {
				add(rlo, rhi, m)
			}
		}
		// A pass begun later to move the phase: where a refresh polled back to back would end (one
		// period, K + c, after the previous end), so that such an end is bracketed too.
		if cur.waitBefore > 0 {
			f := st.def.merged
			K, n := phaseMeet(f, passes)
			m, _, _ := f.meet(passes)
			lo, hi, closed := passes[len(passes)-1].end()
			if n > 0 && closed && K.lo <= K.hi && m.closed() {
				add(lo, hi, span{K.lo + m.lo, K.hi + m.hi})
				guards, spans = append(guards, spans[len(spans)-1]), spans[:len(spans)-1]
			}
		}
	}
	if len(inf.consistent) == 0 {
		for _, t := range inf.period.nextTicks(cur.changeSent, cur.ack) {
			add(t.lo, t.hi, span{})
		}
	}
	return spans, guards
}

// aimedFrom aims pass cur's replays at the union of spans (see aimPoints), a few at each guard;
// with nothing to predict from, it polls from floor (unaimedSchedule).
func aimedFrom(spans, guards []span, cur *stalePass, cfg staleConfig, floor time.Duration) schedule {
	most := refinePoints
	if cur.gap > 0 || cur.waitBefore > 0 {
		most = separatePoints
	}
	points := aimPoints(spans, cfg.maxWindow, most, max(cfg.precision/2, time.Millisecond/2))
	// A guard is a hypothesis the pass only has to catch, not bracket finely: a few points each.
	for _, g := range guards {
		if g.lo, g.hi = max(g.lo, 0), min(g.hi, cfg.maxWindow); g.lo <= g.hi {
			points = append(points, g.lo, (g.lo+g.hi)/2, g.hi)
		}
	}
	if len(points) == 0 {
		return unaimedSchedule(floor)
	}
	slices.Sort(points)
	points = slices.Compact(points)
	step := firstStep
	if n := len(points); n > 1 {
		step = (points[n-1] - points[0]) / time.Duration(n)
	}
	return aimedSchedule(points, step)
}

// aimPoints spreads replays over spans (offsets after the acknowledgement): merged where they
// overlap, cut to [0, maxWindow], at least three points on each part, about one per spacing,
// most at most unless the parts need more for their three. An open span ends the points: the
// coarse schedule takes over from its start.
func aimPoints(spans []span, maxWindow time.Duration, most int, spacing time.Duration) []time.Duration {
	var parts []span
	openFrom := forever
	for _, s := range spans {
		s.lo = max(s.lo, 0)
		if !s.closed() {
			openFrom = min(openFrom, s.lo)
			continue
		}
		if s.hi = min(s.hi, maxWindow); s.lo <= s.hi {
			parts = append(parts, s)
		}
	}
	slices.SortFunc(parts, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	var merged []span
	for _, s := range parts {
		if n := len(merged); n > 0 && s.lo <= merged[n-1].hi {
			merged[n-1].hi = max(merged[n-1].hi, s.hi)
			continue
		}
		merged = append(merged, s)
	}
	var total time.Duration
	for _, s := range merged {
		total += s.width()
	}
	const perPart = 3
	k := min(most, int(math.Ceil(float64(total)/float64(spacing))))
	k = max(k, perPart*len(merged))
	var points []time.Duration
	for _, s := range merged {
		m := perPart
		if total > 0 {
			m = max(perPart, int(math.Round(float64(k)*float64(s.width())/float64(total))))
		}
		for i := range m {
			points = append(points, s.lo+time.Duration(float64(s.width())*float64(i)/float64(m-1)))
		}
	}
	if openFrom != forever {
		last := time.Duration(0)
		if n := len(points); n > 0 {
			last = points[n-1]
		}
		points = append(points, max(openFrom, last))
	}
	return slices.Compact(points)
}
