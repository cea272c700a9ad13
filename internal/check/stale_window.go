package check

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
)

// What a staleness measurement reports: the window with its cause and figures, the summary sentence,
// the severity's input (the worst-case exposure) and remediation that fits the cause. Every figure
// comes from the passes' data; a width is one pass's.

// parameters name what a bracket measures in each frame.
var parameters = map[string]string{
	finding.FrameFillSent:     "lifetime",
	finding.FrameFillReceived: "lifetime",
	finding.FrameFirstUse:     "lifetime",
	finding.FrameChangeSent:   "delay",
	finding.FrameChangeAcked:  "delay",
	finding.FrameChange:       "delay",
	finding.FrameTokenExp:     "leeway",
}

// window turns the passes and what they show into the reported window and its evidence: the
// timeline of the pass whose bracket is reported, relative to its acknowledgement, with every
// control and a note for each other pass.
func (m *staleMeasurement) window(s *staleSchedule, passes []*stalePass, inf inference) (*finding.Window, []finding.Event) {
	bp := passes[inf.bracketAt]
	w := &finding.Window{
		Change:      m.kind,
		Cause:       inf.cause,
		Candidates:  inf.candidates,
		Frame:       inf.frame,
		Parameter:   "window",
		Bracket:     inf.bracket.bracket(),
		BracketPass: bp.n,
		MaxWaitMS:   ms(m.env.Target.MaxWindow),
	}
	if inf.fixed != nil {
		w.Parameter = parameters[inf.frame]
	}
	bw := bp.window()
	w.LastAcceptedMS = finding.Round(ms(bw.lo))
	if bw.closed() {
		w.FirstRejectedMS = finding.Round(ms(bw.hi))
	} else {
		w.Never = true
	}
	w.FillToChangeMS = finding.Round(ms(bp.ack.Sub(bp.fillSent)))
	for _, p := range passes {
		w.Passes = append(w.Passes, m.passSummary(p, inf))
		if !p.closed() && p.stoppedBy != "" {
			last := p.replays[len(p.replays)-1].sent.Sub(p.ack)
			w.Reach = &finding.Reach{Pass: p.n, LastReplayMS: finding.Round(ms(last)), StoppedBy: p.stoppedBy, Detail: reachDetail(p, m.env.Target.MaxWindow)}
		}
	}
	switch inf.cause {
	case finding.CauseExpiry:
		exp := bp.exp.UTC()
		w.TokenExp = &exp
		issued := bp.iat
		if issued.IsZero() {
			issued = bp.minted
		}
		w.TokenLifetimeMS = finding.Round(ms(bp.exp.Sub(issued)))
	case finding.CausePeriodic:
		f := inf.period
		w.Periodic = &finding.Periodic{Shortest: *f.shortest.bracket(), Longest: *f.longest.bracket(), PeriodNote: f.note}
		if f.ok {
			w.Periodic.Period = f.period.bracket()
		}
	}
	w.WallMS = finding.Round(ms(s.wall()))
	w.SpareTokens = len(s.spares)
	w.UnchangedTokens = len(s.deferred)
	w.Schedule, w.ScheduleReason = scheduleOf(s, passes)
	w.WorstCaseMS, w.WorstCase = m.worstCase(w, passes)
	w.WorstCaseMS = finding.Round(w.WorstCaseMS)
	w.CauseReason = m.causeReason(w, inf, len(passes))

	events := bp.tl.relativeTo(bp.ack)
	for _, p := range passes {
		if p == bp {
			continue
		}
		for _, e := range p.tl.relativeTo(bp.ack) {
			if e.Kind == finding.EventControl {
				events = append(events, e)
			}
		}
		events = append(events, finding.Event{AtMS: finding.Round(ms(p.ack.Sub(bp.ack))), Kind: finding.EventNote, Detail: m.passNote(p, inf)})
	}
	slices.SortStableFunc(events, func(a, b finding.Event) int {
		switch {
		case a.AtMS < b.AtMS:
			return -1
		case a.AtMS > b.AtMS:
			return 1
		}
		return 0
	})
	return w, events
}

// scheduleOf says how the passes were laid out, and why.
func scheduleOf(s *staleSchedule, passes []*stalePass) (string, string) {
	overlapped := 0
	for _, p := range passes {
		if p.armedDuring > 0 {
			overlapped++
		}
	}
	switch {
	case s.cfg.perSubject:
		return finding.ScheduleSequential, "a downgrade's window belongs to the subject (its permissions are cached per subject, not per token): each pass waits for the restore to be honoured and refilled before it can begin, so passes run one after another"
	case len(passes) == 1:
		return finding.ScheduleSequential, "one pass was enough"
	case overlapped > 0 && overlapped == len(passes)-1:
		return finding.ScheduleOverlapped, fmt.Sprintf("the window belongs to each token, so %s after pass 1 used %s armed while pass 1 still replayed, and were measured within about one window of it", count(overlapped, "pass", "passes"), count(overlapped, "token", "tokens"))
	case overlapped > 0:
		return finding.ScheduleOverlapped, fmt.Sprintf("%s after pass 1 used %s armed while pass 1 still replayed; %s had to begin after the one before (see each pass's why)", count(overlapped, "pass", "passes"), count(overlapped, "token", "tokens"), count(len(passes)-1-overlapped, "pass", "passes"))
	}
	return finding.ScheduleSequential, "no token armed alongside pass 1 was young enough to refine it (its window was shorter than the first rung of tokens, or its end fell where no token's end lay ahead), so each pass began after the one before"
}

// count says n things, singular or plural.
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func reachDetail(p *stalePass, maxWindow time.Duration) string {
	switch p.stoppedBy {
	case finding.StoppedMaxWindow:
		return fmt.Sprintf("the last replay went out at limits.max_window (%s)", maxWindow)
	case finding.StoppedBudget:
		return "the request budget (limits.request_budget) was spent"
	case finding.StoppedDeadline:
		return "the scan was interrupted or ran out of time"
	case finding.StoppedRate:
		return "the API rate-limited the replays (429): " + p.stopDetail
	}
	return "a request failed: " + p.stopDetail
}

// passSummary is pass p relative to its own acknowledgement, with its interval in the window's frame.
func (m *staleMeasurement) passSummary(p *stalePass, inf inference) finding.Pass {
	rel := func(t time.Time) float64 { return finding.Round(ms(t.Sub(p.ack))) }
	w := p.window()
	s := finding.Pass{
		Replays:        len(p.replays),
		FillToChangeMS: finding.Round(ms(p.ack.Sub(p.fillSent))),
		Never:          !w.closed(),
		LastAcceptedMS: finding.Round(ms(w.lo)),
		AcknowledgedAt: p.ack.UTC(),
		TokenMintedMS:  rel(p.minted),
		FillSentMS:     rel(p.fillSent),
		FillReceivedMS: rel(p.fillReceived),
		FillCertain:    p.fillCertain,
		ChangeSentMS:   rel(p.changeSent),
		WaitBeforeMS:   finding.Round(ms(p.waitBefore)),
		GapMS:          finding.Round(ms(p.gap)),
		FirstReplayMS:  rel(p.replays[0].sent),
		LastReplayMS:   rel(p.replays[len(p.replays)-1].sent),
		Why:            p.why,
		ArmedAheadMS:   finding.Round(ms(p.stagger)),
	}
	if w.closed() {
		s.FirstRejectedMS = finding.Round(ms(w.hi))
	}
	if !p.exp.IsZero() {
		e := rel(p.exp)
		s.TokenExpMS = &e
	}
	if inf.fixed != nil {
		if in, ok := inf.fixed.frame.reported(p); ok {
			s.Bracket = in.bracket()
		}
	} else {
		s.Bracket = w.bracket()
	}
	return s
}

// passNote says, on the reported pass's timeline, what another pass saw.
func (m *staleMeasurement) passNote(p *stalePass, inf inference) string {
	w := p.window()
	var b strings.Builder
	fmt.Fprintf(&b, "pass %d, acknowledged here: ", p.n)
	if w.closed() {
		fmt.Fprintf(&b, "honoured until %s after its acknowledgement", finding.FormatBracket(ms(w.lo), ms(w.hi)))
	} else {
		fmt.Fprintf(&b, "still honoured by its last replay, %s after its acknowledgement", fmtMS(ms(w.lo)))
	}
	if inf.fixed != nil {
		if in, ok := inf.fixed.frame.reported(p); ok && in.closed() {
			fmt.Fprintf(&b, "; %s %s %s", parameters[inf.frame], finding.FormatBracket(ms(in.lo), ms(in.hi)), finding.DescribeFrame(inf.frame, m.kind))
		}
	}
	if p.waitBefore > 0 {
		fmt.Fprintf(&b, "; begun %s later on purpose", fmtMS(ms(p.waitBefore)))
	}
	if p.gap > 0 {
		fmt.Fprintf(&b, "; %s between first use and %s on purpose", fmtMS(ms(p.gap)), m.kind)
	}
	return b.String()
}

// worstCase is the longest the old state can be honoured under the named cause, and why.
func (m *staleMeasurement) worstCase(w *finding.Window, passes []*stalePass) (float64, string) {
	change := "a " + m.kind
	switch w.Cause {
	case finding.CauseLifetime:
		if m.kind == "revocation" {
			return w.Bracket.Hi(), "a token revoked right after its first use is honoured for the whole lifetime"
		}
		return w.Bracket.Hi(), "a privilege removed right after the API cached the subject's permissions is honoured for the whole lifetime"
	case finding.CauseDelay:
		return w.Bracket.Hi(), "every " + m.kind + " is honoured for the delay after its acknowledgement"
	case finding.CausePeriodic:
		if p := w.Periodic.Period; p != nil {
			return p.Hi(), change + " made just after a refresh waits a whole period for the next one"
		}
		return w.Periodic.Longest.Hi(), "the longest window observed; the period could not be estimated, so the worst case may be longer"
	case finding.CauseExpiry:
		what := "a token revoked right after it was issued"
		if m.kind == "downgrade" {
			what = "a privilege removed right after a token was issued"
		}
		return w.TokenLifetimeMS + max(0, w.Bracket.Hi()), what + " is honoured until the token's exp: its whole lifetime"
	case finding.CauseNever:
		return w.Reach.LastReplayMS, "still honoured when the replays stopped: the exposure is at least this, and may be unbounded"
	}
	longest := 0.0
	for _, p := range passes {
		if win := p.window(); win.closed() {
			longest = max(longest, ms(win.hi))
		} else if len(p.replays) > 0 {
			longest = max(longest, ms(win.lo))
		}
	}
	return longest, "the longest window a pass observed; the cause is undetermined, so the worst case may be longer"
}

// causeReason says what in the passes shows the cause.
func (m *staleMeasurement) causeReason(w *finding.Window, inf inference, passes int) string {
	switch w.Cause {
	case finding.CauseLifetime:
		return fmt.Sprintf("across %d passes the end kept a fixed time from the token's first use and moved when the %s was made later: a cache entry with a lifetime from its fill (an introspection or permission cache TTL)", passes, m.kind)
	case finding.CauseDelay:
		return fmt.Sprintf("across %d passes the end kept a fixed time from the %s's acknowledgement, however long after the first use it came: the %s reaches the API late (asynchronous propagation)", passes, m.kind, m.kind)
	case finding.CauseExpiry:
		return fmt.Sprintf("across %d passes the end kept a fixed offset from each token's own exp, not from its use or the %s: the API verifies the token offline and honours it until it expires", passes, m.kind)
	case finding.CausePeriodic:
		return fmt.Sprintf("across %d passes the end kept no fixed time from the first use, the %s or exp; it fell on a grid of refreshes: the API learns of the %s at the next run of a periodic sync", passes, m.kind, m.kind)
	case finding.CauseNever:
		return fmt.Sprintf("no replay was refused: %s", w.Reach.Detail)
	}
	var why string
	switch {
	case len(inf.candidates) > 1 && slices.Contains(inf.candidates, finding.CausePeriodic):
		why = "no pass began at another phase, so a periodic refresh is not ruled out"
	case len(inf.candidates) > 1:
		why = "no pass separated their predictions"
	default:
		why = "no fixed cause fits the passes, and too few of them closed to fit a period"
	}
	return fmt.Sprintf("after %d passes %s remained possible (%s); the figures are what one pass's replays show", passes, strings.Join(inf.candidates, ", "), why)
}

// staleSummary states what was proven, with figures only the evidence supports.
func staleSummary(w *finding.Window, endpoint string) string {
	subject := "A revoked token was"
	if w.Change == "downgrade" {
		subject = "A privilege removed by a downgrade was"
	}
	acked := "after the " + w.Change + " was acknowledged"
	observed := fmt.Sprintf("in pass %d of %d it was honoured until %s %s", w.BracketPass, len(w.Passes), finding.FormatBracket(w.LastAcceptedMS, w.FirstRejectedMS), acked)
	switch w.Cause {
	case finding.CauseLifetime:
		return fmt.Sprintf("%s still honoured by %s for a fixed lifetime from the request that filled the API's cache: %s %s (%s); worst case %s.",
			subject, endpoint, finding.FormatBracket(w.Bracket.LoMS, w.Bracket.Hi()), frameShort[w.Frame], observed, fmtMS(w.WorstCaseMS))
	case finding.CauseDelay:
		return fmt.Sprintf("%s still honoured by %s for a fixed delay after the %s: %s %s (%s); worst case %s.",
			subject, endpoint, w.Change, finding.FormatBracket(w.Bracket.LoMS, w.Bracket.Hi()), frameShort[w.Frame], observed, fmtMS(w.WorstCaseMS))
	case finding.CauseExpiry:
		return fmt.Sprintf("%s still honoured by %s until the token's own exp (%s), which the API checks offline: the end lies %s after exp (%s); worst case the token's lifetime, %s.",
			subject, endpoint, w.TokenExp.Format(time.RFC3339), finding.FormatBracket(w.Bracket.LoMS, w.Bracket.Hi()), observed, fmtMS(w.WorstCaseMS))
	case finding.CausePeriodic:
		p := w.Periodic
		period := "the period could not be estimated"
		if p.Period != nil {
			period = "estimated period " + finding.FormatBracket(p.Period.LoMS, p.Period.Hi())
		}
		return fmt.Sprintf("%s still honoured by %s until a periodic refresh: over %d passes the window ranged from %s to %s %s; %s; worst case %s.",
			subject, endpoint, len(w.Passes), finding.FormatBracket(p.Shortest.LoMS, p.Shortest.Hi()), finding.FormatBracket(p.Longest.LoMS, p.Longest.Hi()), acked, period, fmtMS(w.WorstCaseMS))
	case finding.CauseNever:
		r := w.Reach
		within := ""
		if r.StoppedBy == finding.StoppedMaxWindow {
			within = fmt.Sprintf(" (never refused within %s)", fmtMS(r.LastReplayMS))
		}
		return fmt.Sprintf("%s still honoured by %s by the last replay, sent %s %s%s; the replays stopped there because %s.",
			subject, endpoint, fmtMS(r.LastReplayMS), acked, within, r.Detail)
	}
	if w.Never {
		return fmt.Sprintf("%s still honoured by %s %s %s, by the last replay of pass %d; the passes could not tell its cause (%s) apart.",
			subject, endpoint, fmtMS(w.LastAcceptedMS), acked, w.BracketPass, strings.Join(w.Candidates, ", "))
	}
	return fmt.Sprintf("%s still honoured by %s %s: %s; the passes could not tell its cause (%s) apart, so no lifetime or delay is claimed.",
		subject, endpoint, acked, observed, strings.Join(w.Candidates, ", "))
}

// stoppedNote says, after a summary, that the measurement stopped before it was done and how far the
// replays reached (a window that never closed says so itself).
func stoppedNote(w *finding.Window) string {
	r := w.Reach
	if r == nil || r.StoppedBy == finding.StoppedMaxWindow || w.Cause == finding.CauseNever {
		return ""
	}
	return fmt.Sprintf(" The measurement stopped early: pass %d's last replay went out %s after its acknowledgement, still accepted, and the replays stopped because %s.",
		r.Pass, fmtMS(r.LastReplayMS), r.Detail)
}

// frameShort names a frame after a figure.
var frameShort = map[string]string{
	finding.FrameFillSent:     "from when that request was sent",
	finding.FrameFillReceived: "from when that request was answered",
	finding.FrameFirstUse:     "from that request",
	finding.FrameChangeSent:   "from when it was sent",
	finding.FrameChangeAcked:  "from its acknowledgement",
	finding.FrameChange:       "from it",
	finding.FrameTokenExp:     "after exp",
}

// remediationFor leads the check's remediation with what fits the cause.
func remediationFor(cause string, candidates []string, kind, generic string) string {
	if cause == finding.CauseUndetermined && len(candidates) > 0 {
		// The passes could not tell the causes apart: each one's fix, so that whichever it is, the
		// remediation names it.
		var leads []string
		for _, c := range candidates {
			if l := remediationFor(c, nil, kind, ""); l != "" {
				leads = append(leads, "If "+causeWords[c]+": "+strings.TrimSpace(l))
			}
		}
		if len(leads) > 0 {
			return "The replays could not tell the window's cause apart between " + strings.Join(candidates, " and ") + ".\n" + strings.Join(leads, "\n") + "\n" + generic
		}
		return generic
	}
	lead := map[string]string{
		"revocation " + finding.CauseLifetime: "The API caches the token's introspection (or the claims it decoded) for a fixed time from the first use, and a revocation does not evict the entry. Invalidate the cache when a token is revoked (push the revocation to every cache, or check a revoked flag before serving a cached answer), or shorten the TTL to the exposure you accept.",
		"revocation " + finding.CauseDelay:    "Revocations reach the API a fixed time after the identity provider acknowledged them (a queue, a replica, an event bus). Push revocation events to the API synchronously, acknowledge a revocation only once it has propagated, or read revocation state from the primary for sensitive routes.",
		"revocation " + finding.CausePeriodic: "The API refreshes its revocation list periodically, so a revocation waits up to a whole period. Push revocations as they happen (subscribe to revocation events) or shorten the sync period to the exposure you accept.",
		"revocation " + finding.CauseExpiry:   "The API verifies the token offline and never checks revocation: a revoked token works until its exp. Check a denylist by jti that revocation updates (or introspect for sensitive routes), and keep access tokens short-lived.",
		"revocation " + finding.CauseNever:    "The API did not refuse the revoked token within the replays: most likely it validates the token locally with no revocation check. Check a denylist by jti or introspect for sensitive routes, and keep access tokens short-lived.",
		"downgrade " + finding.CauseLifetime:  "The API caches the subject's permissions for a fixed time from when it read them, and a role change does not evict the entry. Invalidate the cache when the identity provider changes a subject's roles, or shorten the TTL to the exposure you accept.",
		"downgrade " + finding.CauseDelay:     "Role changes reach the API a fixed time after the identity provider acknowledged them. Propagate them synchronously, or read the subject's current roles from the authorization source for privileged actions.",
		"downgrade " + finding.CausePeriodic:  "The API refreshes roles periodically, so a removed privilege survives up to a whole period. Push role changes as they happen or shorten the sync period.",
		"downgrade " + finding.CauseExpiry:    "The API takes scopes or roles from the token's claims until it expires. Re-check privileged actions against the authorization source, and keep access tokens short-lived.",
		"downgrade " + finding.CauseNever:     "The API did not refuse the removed privilege within the replays: it may take it from long-lived claims or never re-read it. Re-check privileged actions against the authorization source.",
	}[kind+" "+cause]
	if lead == "" {
		return generic
	}
	if generic == "" {
		return lead
	}
	return lead + "\n" + generic
}

// causeWords names a cause in a sentence.
var causeWords = map[string]string{
	finding.CauseLifetime: "a cache lifetime counted from the first use",
	finding.CauseDelay:    "a delay after the change",
	finding.CausePeriodic: "a periodic refresh",
	finding.CauseExpiry:   "the token's own expiry",
	finding.CauseNever:    "no re-check at all",
}
