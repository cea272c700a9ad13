package check

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
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
		{name: "ttl", end: lifetime(5*time.Second, 0.1), truth: 5000, cause: finding.CauseLifetime, fillRTT: fast, refuseRTT: fast},
		{name: "ttl-jitter", end: lifetime(5*time.Second, 0.98), truth: 5000, cause: finding.CauseLifetime,
			fillRTT: uniform(5*time.Millisecond, 60*time.Millisecond), refuseRTT: uniform(5*time.Millisecond, 60*time.Millisecond)},
		{name: "short-ttl", end: lifetime(400*time.Millisecond, 0.5), truth: 400, cause: finding.CauseLifetime, fillRTT: fast, refuseRTT: fast},
		{name: "delay", end: func(p *stalePass) time.Time {
			return p.changeSent.Add(p.ack.Sub(p.changeSent)/2 + time.Second)
		}, truth: 1000, cause: finding.CauseDelay, fillRTT: fast, refuseRTT: fast},
		{name: "expiry", end: func(p *stalePass) time.Time { return p.exp.Add(2 * time.Second) }, truth: 2000, cause: finding.CauseExpiry, fillRTT: fast, refuseRTT: fast},
		{name: "periodic", end: periodic(3 * time.Second), truth: 3000, cause: finding.CausePeriodic, fillRTT: fast, refuseRTT: fast},
	}
}

// simulate measures api as measure does, on a simulated clock.
func simulate(api simAPI, seed uint64, maxWindow time.Duration) ([]*stalePass, inference) {
	r := rand.New(rand.NewPCG(seed, 42))
	now := epoch.Add(time.Duration(r.Int64N(int64(10 * time.Second))))
	var passes []*stalePass
	var inf inference
	var wakeLag time.Duration
	for n := 1; n <= maxPasses; n++ {
		plan := planPass(passes, inf, now, false)
		p := &stalePass{n: n, waitBefore: plan.waitBefore, gap: plan.gap, fillCertain: true}
		p.started = now.Add(plan.waitBefore)
		p.minted = p.started.Add(time.Millisecond + time.Duration(r.Int64N(int64(time.Millisecond))))
		// The lab's tokens live 15 minutes from the whole second; the expiry API's 3 seconds.
		lifetime := 15 * time.Minute
		if api.cause == finding.CauseExpiry {
			lifetime = 3 * time.Second
		}
		p.iat = p.minted.Truncate(time.Second)
		p.exp = p.iat.Add(lifetime)
		p.fillSent = p.minted.Add(300 * time.Microsecond)
		p.fillReceived = p.fillSent.Add(api.fillRTT(r))
		p.acceptedBefore = p.fillReceived.Add(100 * time.Microsecond)
		p.changeSent = p.acceptedBefore.Add(300*time.Microsecond + plan.gap)
		if plan.changeAt.After(p.changeSent) {
			p.changeSent = plan.changeAt
		}
		p.ack = p.changeSent.Add(800*time.Microsecond + time.Duration(r.Int64N(int64(400*time.Microsecond))))
		end := api.end(p)
		next := replayOffsets(passes, inf, p, maxWindow, wakeLag)
		at := p.ack
		for i := 0; ; i++ {
			offset, ok := next()
			if !ok {
				p.stoppedBy = finding.StoppedMaxWindow
				break
			}
			sent := p.ack.Add(offset)
			if sent.Before(at) {
				sent = at
			}
			if i == 0 { // a late wake-up, as on a real machine
				sent = sent.Add(time.Duration(r.Int64N(int64(2 * time.Millisecond))))
				wakeLag = max(wakeLag, sent.Sub(p.ack)-offset)
			}
			// The API decides early in the round trip; a refusal may take longer to answer.
			decided := sent.Add(100 * time.Microsecond)
			obs := replayObs{sent: sent, outcome: probe.Accepted, status: 200}
			obs.received = sent.Add(uniform(200*time.Microsecond, 400*time.Microsecond)(r))
			if !decided.Before(end) {
				obs.outcome, obs.status = probe.Rejected, 401
				obs.received = sent.Add(api.refuseRTT(r))
			}
			p.replays = append(p.replays, obs)
			at = obs.received.Add(50 * time.Microsecond)
			if obs.outcome == probe.Rejected {
				break
			}
		}
		now = at.Add(time.Millisecond)
		passes = append(passes, p)
		if n == 1 && !p.acceptedAfterAck() && p.closed() {
			break
		}
		inf = infer(passes)
		if measured(passes, inf) {
			break
		}
	}
	return passes, inf
}

func TestSimulatedCauses(t *testing.T) {
	for _, api := range simAPIs() {
		t.Run(api.name, func(t *testing.T) {
			var widths []float64
			replays, npasses := 0, 0
			for seed := range uint64(40) {
				passes, inf := simulate(api, seed, 60*time.Second)
				npasses += len(passes)
				for _, p := range passes {
					replays += len(p.replays)
				}
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
					if ms(f.shortest.hi) > 0.1*api.truth || ms(f.longest.lo) < 0.9*api.truth {
						t.Logf("seed %d: windows from %v to %v; want the shortest under a tenth of the period and the longest over nine tenths\n%s", seed, f.shortest, f.longest, describe(passes))
					}
					continue
				}
				lo, hi := ms(inf.bracket.lo), ms(inf.bracket.hi)
				if lo > api.truth || hi < api.truth {
					t.Errorf("seed %d: %s bracket [%.3f, %.3f] ms in frame %s does not contain %.0f ms\n%s", seed, api.cause, lo, hi, inf.frame, api.truth, describe(passes))
				}
				widths = append(widths, hi-lo)
			}
			t.Logf("%s: widths %v, %.1f replays and %.1f passes a measurement", api.name, fmtWidths(widths), float64(replays)/40, float64(npasses)/40)
		})
	}
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
	passes, inf := simulate(api, 1, 10*time.Second)
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
