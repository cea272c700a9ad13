package check

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// The model and the planner, driven by simulated APIs on a simulated clock: every cause, with the
// round-trip jitter real targets have, many times over. The lab tests (check_test.go) prove the
// same against real servers; these are fast enough to try every seed.

// simAPI is a simulated API: when it stops honouring the old state in pass p.
type simAPI struct {
	name string
	// end returns the moment the window ends in p (p's times are set up to its change), and the
	// parameter the cause's bracket must contain.
	end       func(p *stalePass) time.Time
	truth     float64 // ms: the lifetime, delay or leeway; for periodic, the period
	cause     string
	fillRTT   func(r *rand.Rand) time.Duration
	refuseRTT func(r *rand.Rand) time.Duration // the round trip of a refused replay
	// stamp is where in the fill's round trip the API starts a lifetime: 0 at the send, 1 at the
	// answer.
	stamp float64
	// tokenLifetime is how long the API's tokens live (15 minutes when zero).
	tokenLifetime time.Duration
	// window is about how long one window lasts, for the wall time's ratio to it.
	window time.Duration
}

func uniform(lo, hi time.Duration) func(r *rand.Rand) time.Duration {
	return func(r *rand.Rand) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo)+1)) }
}

var epoch = time.Date(2026, 3, 14, 9, 26, 53, 123456789, time.UTC)

func simAPIs() []simAPI {
	fast := uniform(200*time.Microsecond, 400*time.Microsecond)
	lifetime := func(T time.Duration, stamp float64) func(p *stalePass) time.Time {
		return func(p *stalePass) time.Time {
			rtt := p.fillReceived.Sub(p.fillSent)
			return p.fillSent.Add(time.Duration(stamp*float64(rtt)) + T)
		}
	}
	periodic := func(P time.Duration) func(p *stalePass) time.Time {
		return func(p *stalePass) time.Time {
			revoked := p.changeSent.Add(p.ack.Sub(p.changeSent) / 2)
			k := revoked.Sub(epoch)/P + 1
			return epoch.Add(k * P)
		}
	}
	return []simAPI{
		{name: "ttl", end: lifetime(5*time.Second, 0.1), truth: 5000, cause: finding.CauseLifetime, fillRTT: fast, refuseRTT: fast, window: 5 * time.Second},
		{name: "ttl-30s", end: lifetime(30*time.Second, 0.1), truth: 30000, cause: finding.CauseLifetime, fillRTT: fast, refuseRTT: fast, window: 30 * time.Second},
		{name: "ttl-jitter", end: lifetime(5*time.Second, 0.98), truth: 5000, cause: finding.CauseLifetime,
			fillRTT: uniform(5*time.Millisecond, 60*time.Millisecond), refuseRTT: uniform(5*time.Millisecond, 60*time.Millisecond), window: 5 * time.Second},
		{name: "short-ttl", end: lifetime(400*time.Millisecond, 0.5), truth: 400, cause: finding.CauseLifetime, fillRTT: fast, refuseRTT: fast, window: 400 * time.Millisecond},
		{name: "delay", end: func(p *stalePass) time.Time {
			return p.changeSent.Add(p.ack.Sub(p.changeSent)/2 + time.Second)
		}, truth: 1000, cause: finding.CauseDelay, fillRTT: fast, refuseRTT: fast, window: time.Second},
		{name: "expiry", end: func(p *stalePass) time.Time { return p.exp.Add(2 * time.Second) }, truth: 2000, cause: finding.CauseExpiry, fillRTT: fast, refuseRTT: fast,
			tokenLifetime: 3 * time.Second, window: 5 * time.Second},
		{name: "expiry-60s", end: func(p *stalePass) time.Time { return p.exp }, truth: 0, cause: finding.CauseExpiry, fillRTT: fast, refuseRTT: fast,
			tokenLifetime: 60 * time.Second, window: 60 * time.Second},
		{name: "periodic", end: periodic(3 * time.Second), truth: 3000, cause: finding.CausePeriodic, fillRTT: fast, refuseRTT: fast, window: 1500 * time.Millisecond},
	}
}

// simWorld is a staleWorld on a simulated clock: api decides when each pass's window ends.
type simWorld struct {
	api   simAPI
	r     *rand.Rand
	clock time.Time
	ends  map[*stalePass]time.Time
	sent  int // requests: a token, a first use and a change per pass armed, and every replay
	// changes counts the changes sent (revocations): one per pass and per rung changed on schedule
	// and never replayed; a rung whose deferred change no pass needed sends none.
	changes int
}

func (w *simWorld) now() time.Time { return w.clock }

func (w *simWorld) sleepUntil(_ context.Context, at time.Time) error {
	if at.After(w.clock) {
		w.clock = at
	}
	return nil
}

func (w *simWorld) arm(_ context.Context, p *stalePass, plan passPlan, _ bool) error {
	r := w.r
	p.started = w.clock.Add(plan.waitBefore)
	p.minted = p.started.Add(time.Millisecond + time.Duration(r.Int64N(int64(time.Millisecond))))
	// The lab's tokens live 15 minutes from the whole second; an expiry API's its own lifetime.
	lifetime := 15 * time.Minute
	if w.api.tokenLifetime > 0 {
		lifetime = w.api.tokenLifetime
	}
	p.iat = p.minted.Truncate(time.Second)
	p.exp = p.iat.Add(lifetime)
	p.fillSent = p.minted.Add(300 * time.Microsecond)
	p.fillReceived = p.fillSent.Add(w.api.fillRTT(r))
	p.acceptedBefore = p.fillReceived.Add(100 * time.Microsecond)
	p.gap = plan.gap
	w.clock = p.acceptedBefore.Add(300 * time.Microsecond)
	w.sent += 2
	return nil
}

func (w *simWorld) change(_ context.Context, p *stalePass) error {
	p.changeSent = w.clock
	p.ack = p.changeSent.Add(800*time.Microsecond + time.Duration(w.r.Int64N(int64(400*time.Microsecond))))
	w.clock = p.ack
	w.ends[p] = w.api.end(p)
	w.sent++
	w.changes++
	return nil
}

func (w *simWorld) replay(_ context.Context, p *stalePass, at time.Time) (replayObs, error) {
	sent := at
	if sent.Before(w.clock) {
		sent = w.clock
	}
	if len(p.replays) == 0 { // a late wake-up, as on a real machine
		sent = sent.Add(time.Duration(w.r.Int64N(int64(2 * time.Millisecond))))
	}
	// The API decides early in the round trip; a refusal may take longer to answer.
	decided := sent.Add(100 * time.Microsecond)
	obs := replayObs{sent: sent, outcome: probe.Accepted, status: 200}
	obs.received = sent.Add(uniform(200*time.Microsecond, 400*time.Microsecond)(w.r))
	if !decided.Before(w.ends[p]) {
		obs.outcome, obs.status = probe.Rejected, 401
		obs.received = sent.Add(w.api.refuseRTT(w.r))
	}
	p.replays = append(p.replays, obs)
	w.clock = obs.received.Add(50 * time.Microsecond)
	w.sent++
	return obs, nil
}

func (w *simWorld) closed(*stalePass)       {}
func (w *simWorld) skew() (span, bool)      { return span{}, false }
func (w *simWorld) progress(string, ...any) {}

// simRun is what a simulated measurement did.
type simRun struct {
	passes   []*stalePass
	inf      inference
	sched    *staleSchedule
	requests int
	// revocations is how many changes were sent: every token changed, whether or not a pass used it.
	revocations int
	wall        time.Duration
}

// simulate measures api as measure does, on a simulated clock.
func simulate(api simAPI, seed uint64, maxWindow time.Duration) simRun {
	r := rand.New(rand.NewPCG(seed, 42))
	w := &simWorld{api: api, r: r, clock: epoch.Add(time.Duration(r.Int64N(int64(10 * time.Second)))), ends: map[*stalePass]time.Time{}}
	s := newStaleSchedule(w, staleConfig{maxWindow: maxWindow, precision: 5 * time.Millisecond})
	if err := s.run(context.Background()); err != nil {
		panic(err)
	}
	return simRun{passes: s.passes, inf: s.inf, sched: s, requests: w.sent, revocations: w.changes, wall: s.wall()}
}

func TestSimulatedCauses(t *testing.T) {
	for _, api := range simAPIs() {
		t.Run(api.name, func(t *testing.T) {
			var widths, walls []float64
			requests, npasses, revocations, over5 := 0, 0, 0, 0
			for seed := range uint64(40) {
				run := simulate(api, seed, 90*time.Second)
				passes, inf := run.passes, run.inf
				npasses += len(passes)
				requests += run.requests
				revocations += run.revocations
				if run.revocations > 5 {
					over5++
				}
				walls = append(walls, float64(run.wall)/float64(api.window))
				if inf.cause != api.cause {
					t.Errorf("seed %d: cause %s (candidates %v), want %s\n%s", seed, inf.cause, inf.candidates, api.cause, describe(passes))
					continue
				}
				if api.cause == finding.CausePeriodic {
					f := inf.period
					got := ms(f.period.lo+f.period.hi) / 2
					if !f.ok || got < 0.9*api.truth || got > 1.1*api.truth {
						t.Errorf("seed %d: period %v (%s), want within 10%% of %.0f ms", seed, f.period, f.note, api.truth)
					}
					// The extremes were observed: a window that ended within a tenth of the period
					// of its acknowledgement (a change just before a refresh), and one still honoured
					// nine tenths of the period after it (a change just after one).
					if ms(f.shortest.hi) > 0.1*api.truth || ms(f.longest.lo) < 0.9*api.truth {
						t.Errorf("seed %d: windows from %v to %v; want the shortest under a tenth of the period and the longest over nine tenths\n%s", seed, f.shortest, f.longest, describe(passes))
					}
					continue
				}
				lo, hi := ms(inf.bracket.lo), ms(inf.bracket.hi)
				if lo > api.truth || hi < api.truth {
					t.Errorf("seed %d: %s bracket [%.3f, %.3f] ms in frame %s does not contain %.0f ms\n%s", seed, api.cause, lo, hi, inf.frame, api.truth, describe(passes))
				}
				widths = append(widths, hi-lo)
			}
			// Issue 11: the period and both extremes after at most five revocations. The
			// refreshes cannot always be predicted well enough by then; one run in ten may take a
			// sixth.
			if api.cause == finding.CausePeriodic && over5 > 4 {
				t.Errorf("%d runs of 40 took more than five revocations", over5)
			}
			t.Logf("%s: median width %.1f ms, median wall %.2f windows (worst %.2f), %.1f requests, %.1f passes and %.1f revocations a measurement; widths %v",
				api.name, median(widths), median(walls), slices.Max(walls), float64(requests)/40, float64(npasses)/40, float64(revocations)/40, fmtWidths(widths))
		})
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

func fmtWidths(ws []float64) string {
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "%.1f ", w)
	}
	return b.String()
}

func describe(passes []*stalePass) string {
	var b strings.Builder
	for _, p := range passes {
		w := p.window()
		fmt.Fprintf(&b, "  pass %d: wait %v gap %v fill %v..%v before ack, window [%v, %v], %d replays\n", p.n, p.waitBefore, p.gap,
			p.ack.Sub(p.fillSent), p.ack.Sub(p.fillReceived), w.lo, w.hi, len(p.replays))
	}
	return b.String()
}

// A window that never closes is "never", after one pass, with the replays' reach.
func TestSimulatedNever(t *testing.T) {
	api := simAPI{end: func(*stalePass) time.Time { return epoch.Add(time.Hour) }, fillRTT: uniform(0, time.Millisecond), refuseRTT: uniform(0, time.Millisecond)}
	run := simulate(api, 1, 10*time.Second)
	passes, inf := run.passes, run.inf
	if inf.cause != finding.CauseNever || len(passes) != 1 || passes[0].stoppedBy != finding.StoppedMaxWindow {
		t.Fatalf("cause %s after %d passes (stopped by %q), want never after one pass stopped by the max window", inf.cause, len(passes), passes[0].stoppedBy)
	}
	if last := passes[0].replays[len(passes[0].replays)-1].sent.Sub(passes[0].ack); last < 10*time.Second {
		t.Errorf("last replay at %v; the claim needs one at the max window", last)
	}
}

// Passes with different fills must not be intersected after the acknowledgement: that gave brackets
// that could not hold the truth. In the first-use frame they agree.
func TestFramesDoNotMixFills(t *testing.T) {
	mk := func(fillBeforeAck, lo, hi time.Duration) *stalePass {
		ack := epoch.Add(time.Minute)
		p := &stalePass{n: 2, fillCertain: true, ack: ack, changeSent: ack.Add(-500 * time.Microsecond)}
		p.fillSent = ack.Add(-fillBeforeAck)
		p.fillReceived = p.fillSent.Add(300 * time.Microsecond)
		p.acceptedBefore = p.fillReceived
		p.replays = []replayObs{{sent: ack.Add(lo), received: ack.Add(lo + time.Millisecond), outcome: probe.Accepted},
			{sent: ack.Add(hi - time.Millisecond), received: ack.Add(hi), outcome: probe.Rejected}}
		return p
	}
	// A 5 s lifetime: fills 0.4 ms and 25.9 ms before the acknowledgement.
	a := mk(400*time.Microsecond, 4998*time.Millisecond, 5001*time.Millisecond)
	b := mk(25900*time.Microsecond, 4972*time.Millisecond, 4976*time.Millisecond)
	if _, consistent, _ := frameAck.meet([]*stalePass{a, b}); consistent {
		t.Error("the acknowledgement frame agrees for windows 25 ms apart")
	}
	m, consistent, _ := frameFirstUse.meet([]*stalePass{a, b})
	if !consistent || m.lo > 5000*time.Millisecond || m.hi < 5000*time.Millisecond {
		t.Errorf("first-use frame: %v consistent %v; want both passes to agree on 5 s", m, consistent)
	}
}

func TestFitPeriod(t *testing.T) {
	const P = 3 * time.Second
	var passes []*stalePass
	for i, at := range []time.Duration{7 * P, 8 * P, 10 * P, 11 * P} {
		ack := epoch.Add(at - time.Duration(i+1)*400*time.Millisecond)
		end := epoch.Add(at)
		passes = append(passes, &stalePass{n: i + 1, ack: ack, changeSent: ack.Add(-time.Millisecond), acceptedBefore: ack.Add(-2 * time.Millisecond),
			replays: []replayObs{{sent: end.Add(-2 * time.Millisecond), received: end.Add(-time.Millisecond), outcome: probe.Accepted},
				{sent: end.Add(time.Millisecond), received: end.Add(2 * time.Millisecond), outcome: probe.Rejected}}})
	}
	f := fitPeriod(passes)
	if !f.ok || f.period.lo > P || f.period.hi < P || f.period.width() > 10*time.Millisecond {
		t.Fatalf("period %v ok %v (%s), want about %v", f.period, f.ok, f.note, P)
	}
	next := f.nextTicks(epoch.Add(11*P+time.Second), epoch.Add(11*P+time.Second))
	if len(next) != 1 || next[0].lo.After(epoch.Add(12*P)) || next[0].hi.Before(epoch.Add(12*P)) {
		t.Errorf("next refresh %v, want around %v", next, epoch.Add(12*P))
	}
}

// The extremes count as seen only for every period the bracket allows: a longest window of 0.92 of
// the bracket's middle is not "over nine tenths" when the period may be 6% longer (the lab once
// reported a run whose longest window was 0.875 of the true period as done).
func TestPeriodExtremesHoldForTheWholeBracket(t *testing.T) {
	f := periodFit{ok: true, period: span{2800 * time.Millisecond, 3200 * time.Millisecond},
		shortest: span{250 * time.Millisecond, 290 * time.Millisecond}, longest: span{2760 * time.Millisecond, 2800 * time.Millisecond}}
	if f.longSeen() {
		t.Errorf("longest %v counted as over nine tenths of a period up to %v", f.longest, f.period.hi)
	}
	if f.shortSeen() {
		t.Errorf("shortest %v counted as under a tenth of a period from %v", f.shortest, f.period.lo)
	}
	f.longest.lo, f.shortest.hi = 2900*time.Millisecond, 270*time.Millisecond
	if !f.longSeen() || !f.shortSeen() {
		t.Errorf("longest %v and shortest %v not counted against %v", f.longest, f.shortest, f.period)
	}
	if (periodFit{ok: true, period: span{2800 * time.Millisecond, forever}}).bounded() {
		t.Error("a period with no upper bound counted as bounded")
	}
}

// Before a period is bounded, a pass changed after a refresh was seen cannot end before that
// refresh plus the longest window seen (the period is at least that long): its replays start
// there. With a fixed cause still consistent, or nothing seen before the change, there is no floor.
func TestRefreshFloor(t *testing.T) {
	at := func(d time.Duration) time.Time { return epoch.Add(d) }
	ms := time.Millisecond
	// Pass 1: acknowledged at 0, still honoured at 1000 ms, refused at 1150 ms.
	p1 := &stalePass{n: 1, changeSent: at(-ms), ack: at(0), acceptedBefore: at(-2 * ms),
		replays: []replayObs{{sent: at(1000 * ms), received: at(1001 * ms), outcome: probe.Accepted},
			{sent: at(1150 * ms), received: at(1151 * ms), outcome: probe.Rejected}}}
	cur := &stalePass{n: 2, changeSent: at(1200 * ms), ack: at(1201 * ms)}
	inf := inference{period: fitPeriod([]*stalePass{p1})}
	got := refreshFloor([]*stalePass{p1}, inf, cur)
	// The refresh came after 1000 ms; the next one at least 1000 ms later: 2000 - 1201 ms after cur's ack.
	if want := 799*ms - frameTolerance; got != want {
		t.Errorf("floor %v, want %v", got, want)
	}
	early := &stalePass{n: 2, changeSent: at(1100 * ms), ack: at(1101 * ms)} // changed before pass 1's end was seen
	if got := refreshFloor([]*stalePass{p1}, inf, early); got != 0 {
		t.Errorf("floor %v for a change sent before the refresh was bracketed, want none", got)
	}
	inf.consistent = []familyState{{}}
	if got := refreshFloor([]*stalePass{p1}, inf, cur); got != 0 {
		t.Errorf("floor %v with a fixed cause still consistent, want none", got)
	}
	sched := unaimedSchedule(700 * ms)
	if a, b := sched(0, 0), sched(1, 0); a != 0 || b != 700*ms {
		t.Errorf("floored schedule starts %v, %v; want 0 then the floor", a, b)
	}
	if step := sched(2, 3000*ms) - 3000*ms; step != 90*ms {
		t.Errorf("floored step at 3 s = %v, want 3%% (90 ms)", step)
	}
}

// The summary says how far the replays reached and why they stopped, and brackets never print as
// the same figure twice (the issue saw "between 29.6 s and 29.6 s" and "never revoked within 60 s"
// for replays that stopped at 44.8 s).
func TestSummaryStatesOnlyWhatWasMeasured(t *testing.T) {
	if s := finding.FormatBracket(29612.3, 29614.1); strings.Count(s, "29.6") > 1 || !strings.Contains(s, "29612.3") {
		t.Errorf("FormatBracket = %q", s)
	}
	w := &finding.Window{Change: "downgrade", Cause: finding.CauseNever, Never: true, LastAcceptedMS: 44800, MaxWaitMS: 60000,
		Reach: &finding.Reach{Pass: 1, LastReplayMS: 44800, StoppedBy: finding.StoppedBudget, Detail: "the request budget (limits.request_budget) was spent"}, WorstCaseMS: 44800}
	s := staleSummary(w, "GET /admin")
	if strings.Contains(s, "60") || !strings.Contains(s, "44.8 s") || !strings.Contains(s, "budget") || strings.Contains(s, "never refused") {
		t.Errorf("summary %q: want the reach (44.8 s) and the budget, and no claim about 60 s", s)
	}
	if sev, why := stalenessSeverity(w, false); sev != finding.Medium || !strings.Contains(why, "at least") {
		t.Errorf("severity %s (%s): replays stopped by the budget claim only as far as they reached", sev, why)
	}
}

// Windows that belong to the token are measured in about one window (issue 19): over lifetimes drawn
// from two ranges, the bracket holds the truth every time, its median width is within the precision,
// and the median wall time stays under 1.3 windows. The figures on the lab are BenchmarkWindow's.
func TestSimulatedOverlappedPasses(t *testing.T) {
	fast := uniform(200*time.Microsecond, 400*time.Microsecond)
	for _, band := range [][2]float64{{3, 8}, {20, 40}} {
		var widths, walls, requests []float64
		for seed := range uint64(100) {
			r := rand.New(rand.NewPCG(seed, 7))
			W := time.Duration(band[0] * math.Pow(band[1]/band[0], r.Float64()) * float64(time.Second))
			api := simAPI{end: func(p *stalePass) time.Time { return p.fillSent.Add(W) }, truth: ms(W), cause: finding.CauseLifetime, fillRTT: fast, refuseRTT: fast}
			run := simulate(api, seed, 90*time.Second)
			requests = append(requests, float64(run.requests))
			walls = append(walls, float64(run.wall)/float64(W))
			if run.inf.cause != api.cause {
				t.Errorf("W %v: cause %s (%v)\n%s", W, run.inf.cause, run.inf.candidates, describe(run.passes))
				continue
			}
			if lo, hi := ms(run.inf.bracket.lo), ms(run.inf.bracket.hi); lo > api.truth || hi < api.truth {
				t.Errorf("W %v: bracket [%.3f, %.3f] ms does not hold it\n%s", W, lo, hi, describe(run.passes))
			}
			widths = append(widths, ms(run.inf.narrowest))
			overlapped := 0
			for _, p := range run.passes {
				if p.armedDuring > 0 {
					overlapped++
				}
			}
			if overlapped == 0 {
				t.Errorf("W %v: no pass used a token armed alongside pass 1\n%s", W, describe(run.passes))
			}
		}
		t.Logf("windows %v-%v s: median width %.1f ms, wall %.2f windows (median; worst %.2f), %.0f requests (median; worst %.0f)",
			band[0], band[1], median(widths), median(walls), slices.Max(walls), median(requests), slices.Max(requests))
		if median(widths) > 5 || median(walls) > 1.3 {
			t.Errorf("windows %v-%v s: median width %.1f ms, wall %.2f windows; want at most 5 ms and 1.3", band[0], band[1], median(widths), median(walls))
		}
	}
}

// The target's clock, from Date headers of one-second resolution: each answer narrows it, and an
// answer that disagrees with all before it (the clock was set) starts again.
func TestClockSkewFromDateHeaders(t *testing.T) {
	var c clockSkew
	local := time.Date(2026, 12, 1, 10, 0, 0, 300e6, time.UTC) // the server runs 2.5 s ahead
	serverDate := func(at time.Time) string { return at.Add(2500 * time.Millisecond).UTC().Format(http.TimeFormat) }
	for _, at := range []time.Time{local, local.Add(450 * time.Millisecond), local.Add(900 * time.Millisecond), local.Add(1250 * time.Millisecond)} {
		c.observe(serverDate(at), at, at.Add(time.Millisecond))
	}
	if !c.ok || c.s.lo > 2500*time.Millisecond || c.s.hi < 2500*time.Millisecond || c.s.width() > 500*time.Millisecond {
		t.Fatalf("skew %v ok %v, want about 2.5 s within half a second", c.s, c.ok)
	}
	c.observe(local.Add(2*time.Second).Add(-time.Hour).UTC().Format(http.TimeFormat), local.Add(2*time.Second), local.Add(2*time.Second+time.Millisecond))
	if c.s.hi > -59*time.Minute {
		t.Errorf("after the clock was set back an hour, skew %v", c.s)
	}
	c.observe("not a date", local, local)
	if !c.ok {
		t.Error("a malformed Date lost what was known")
	}
}

// failingWorld cuts a measurement short after some replays, as an interrupt or a spent budget does.
type failingWorld struct {
	*simWorld
	replaysLeft int
	changes     int
}

func (w *failingWorld) replay(ctx context.Context, p *stalePass, at time.Time) (replayObs, error) {
	if w.replaysLeft--; w.replaysLeft < 0 {
		return replayObs{}, context.Canceled
	}
	return w.simWorld.replay(ctx, p, at)
}

func (w *failingWorld) change(ctx context.Context, p *stalePass) error {
	w.changes++
	return w.simWorld.change(ctx, p)
}

// However a measurement ends, every token whose change was due gets it: a rung waiting out its gap
// when the measurement stops has its change sent at once. Rungs whose change was deferred until a pass
// needed them, and that none did, are not changed.
func TestEveryArmedTokenIsChanged(t *testing.T) {
	fast := uniform(200*time.Microsecond, 400*time.Microsecond)
	api := simAPI{end: func(p *stalePass) time.Time { return p.fillSent.Add(20 * time.Second) }, fillRTT: fast, refuseRTT: fast}
	flushed := 0
	for cut := range 70 {
		r := rand.New(rand.NewPCG(uint64(cut), 1))
		w := &failingWorld{simWorld: &simWorld{api: api, r: r, clock: epoch, ends: map[*stalePass]time.Time{}}, replaysLeft: cut}
		s := newStaleSchedule(w, staleConfig{maxWindow: time.Minute, precision: 5 * time.Millisecond})
		err := s.run(context.Background())
		if err == nil {
			t.Fatalf("cut after %d replays: no error", cut)
		}
		flushed += len(s.pending)
		s.flushPending(context.Background())
		for _, p := range s.deferred {
			if !p.ack.IsZero() {
				t.Errorf("cut after %d replays: a rung still deferred was changed", cut)
			}
		}
		if w.changes != s.armed-len(s.deferred) {
			t.Errorf("cut after %d replays: %d tokens armed, %d deferred, %d changed", cut, s.armed, len(s.deferred), w.changes)
		}
	}
	if flushed == 0 {
		t.Error("no cut came while a rung waited for its change: the test proves nothing")
	}
}

// A rung armed long ago is reused for a periodic pass only while its token's known expiry lies
// beyond the pass's window: refused for its age, it would put the refresh in the wrong place.
func TestReusableRungNotAboutToExpire(t *testing.T) {
	soon := &stalePass{tok: identity.Token{Value: "a", Expiry: time.Now().Add(2 * time.Second)}}
	opaque := &stalePass{tok: identity.Token{Value: "b"}}
	later := &stalePass{tok: identity.Token{Value: "c", Expiry: time.Now().Add(time.Hour)}}
	s := &staleSchedule{cfg: staleConfig{maxWindow: 10 * time.Second}}
	for _, tc := range []struct {
		deferred []*stalePass
		want     int
	}{
		{[]*stalePass{soon, opaque}, 1},
		{[]*stalePass{soon, later}, 1},
		{[]*stalePass{soon}, -1},
		{[]*stalePass{later, soon}, 0},
	} {
		s.deferred = tc.deferred
		if got := s.reusable(passPlan{}); got != tc.want {
			t.Errorf("reusable = %d, want %d", got, tc.want)
		}
	}
}
