// Package finding defines what a check reports: one Finding type with its severity, the measured
// staleness window, an evidence timeline and remediation. Every report format renders this type.
package finding

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Severity orders findings. The zero value is Info.
type Severity int

const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < Info || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity accepts the lower-case names info, low, medium, high and critical.
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(name, n) {
			return Severity(i), nil
		}
	}
	return Info, fmt.Errorf("unknown severity %q (want one of %s)", name, strings.Join(severityNames[:], ", "))
}

func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Finding is one proven flaw.
type Finding struct {
	// ID is stable across runs for the same flaw: a hash of check, endpoint and identity.
	ID       string   `json:"id"`
	Check    string   `json:"check"`
	Title    string   `json:"title"`
	Severity Severity `json:"severity"`
	CWE      string   `json:"cwe,omitempty"`
	// Endpoint is the probe's method and path template, e.g. "GET /items/{{item_id}}".
	Endpoint string `json:"endpoint"`
	Probe    string `json:"probe,omitempty"`
	Identity string `json:"identity,omitempty"`
	// Location is where the user can act on the finding: the probe's entry in the config file, as a
	// path relative to the repository root. Absent when the scan did not know the file.
	Location *Location `json:"location,omitempty"`
	// Summary states what was proven, with its figures, in one or two sentences.
	Summary string `json:"summary"`
	// SeverityReason says which clause of the severity rule applied.
	SeverityReason string  `json:"severity_reason,omitempty"`
	Window         *Window `json:"window,omitempty"`
	// Inflight holds the figures of an in-flight revocation proof.
	Inflight *Inflight `json:"inflight,omitempty"`
	// Forged lists what an auth/missing or jwt/* check sent in place of the identity's token, and
	// how the API answered each.
	Forged []Forged `json:"forged,omitempty"`
	// Authz holds the proof of an authorization finding between identities (authz/*).
	Authz *Authz `json:"authz,omitempty"`
	// Requests is how many HTTP requests the check spent proving this finding.
	Requests    int      `json:"requests"`
	Evidence    []Event  `json:"evidence,omitempty"`
	Remediation string   `json:"remediation"`
	References  []string `json:"references,omitempty"`
}

// SortEvidence puts the evidence in time order; events at the same moment keep their order.
func (f *Finding) SortEvidence() {
	slices.SortStableFunc(f.Evidence, func(a, b Event) int { return cmp.Compare(a.AtMS, b.AtMS) })
}

// Location is the key of a probe in a file: 1-based line and columns, EndColumn just past the key.
type Location struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Column    int    `json:"column"`
	EndColumn int    `json:"end_column"`
}

// StableID derives a finding ID that stays the same across runs for the same check, endpoint and
// identity, so that CI systems can track a flaw over time.
func StableID(check, endpoint, identity string) string {
	h := sha256.Sum256([]byte(check + "\x00" + endpoint + "\x00" + identity))
	return "TOC-" + strings.ToUpper(hex.EncodeToString(h[:5]))
}

// Window is a measured staleness window: how long after a revocation or downgrade was acknowledged the
// API still honoured the old state, what moves the end of that time (the cause), and what it can be at
// worst. Offsets are milliseconds; LastAcceptedMS and FirstRejectedMS count from the acknowledgement
// in the pass whose bracket is reported (BracketPass), Bracket from the cause's own reference (Frame).
type Window struct {
	// What changed: "revocation" or "downgrade".
	Change string `json:"change"`
	// Cause is one of the Cause* values: what the passes showed the end of the window moves with.
	Cause string `json:"cause,omitempty"`
	// CauseReason says, in a sentence, what in the passes shows the cause (or why it stays undetermined).
	CauseReason string `json:"cause_reason,omitempty"`
	// Candidates lists the causes the passes could not tell apart, when Cause is undetermined.
	Candidates []string `json:"candidates,omitempty"`
	// Frame is the reference point Bracket counts from (one of the Frame* values), and Parameter what
	// Bracket measures in it: "lifetime" (from the first use), "delay" (after the change), "leeway"
	// (after the token's exp) or "window" (after the acknowledgement).
	Frame     string `json:"frame,omitempty"`
	Parameter string `json:"parameter,omitempty"`
	// Bracket holds the parameter: the narrowest interval one pass's own replays support, in Frame.
	// Under the named cause it contains the true value for every pass.
	Bracket *Bracket `json:"bracket,omitempty"`
	// BracketPass is the pass (1-based) whose replays give Bracket and the evidence timeline.
	BracketPass int `json:"bracket_pass,omitempty"`
	// WorstCaseMS is the longest the old state can be honoured after a change under the named cause
	// (the severity follows it); WorstCase says why in one line.
	WorstCaseMS float64 `json:"worst_case_ms,omitempty"`
	WorstCase   string  `json:"worst_case,omitempty"`
	// TokenExp is the token's exp in the bracket pass, when the window is bound by it (token-expiry),
	// and TokenLifetimeMS the lifetime the token was issued with (exp - iat).
	TokenExp        *time.Time `json:"token_exp,omitempty"`
	TokenLifetimeMS float64    `json:"token_lifetime_ms,omitempty"`
	// Periodic holds what a periodic refresh showed: the shortest and longest windows observed and the
	// estimated period.
	Periodic *Periodic `json:"periodic,omitempty"`
	// Reach says how far the replays got when a pass ended without a refusal: the window never
	// closed within them, or the measurement stopped early (budget, time).
	Reach *Reach `json:"reach,omitempty"`

	// LastAcceptedMS and FirstRejectedMS bracket the end of the window in the bracket pass: a replay
	// sent LastAcceptedMS after its acknowledgement was still accepted, one answered FirstRejectedMS
	// after it was refused.
	LastAcceptedMS  float64 `json:"last_accepted_ms"`
	FirstRejectedMS float64 `json:"first_rejected_ms,omitempty"`
	// Never is true when the old state was still honoured by the last replay (see Reach).
	Never     bool    `json:"never_rejected,omitempty"`
	MaxWaitMS float64 `json:"max_wait_ms"`
	// FillToChangeMS is the time from the first use of the bracket pass's token (the request that
	// filled the API's caches) to the acknowledgement.
	FillToChangeMS float64 `json:"fill_to_change_ms"`
	// Passes holds each measurement pass, coarse first.
	Passes []Pass `json:"passes,omitempty"`
	// WallMS is how long the measurement took, from the first token to the last replay.
	WallMS float64 `json:"wall_ms,omitempty"`
	// Schedule is how the passes were laid out: ScheduleOverlapped (tokens armed while an earlier
	// pass replayed, their windows overlapping) or ScheduleSequential; ScheduleReason says why.
	Schedule       string `json:"schedule,omitempty"`
	ScheduleReason string `json:"schedule_reason,omitempty"`
	// SpareTokens counts tokens armed ahead (minted, used and changed) that no pass needed.
	SpareTokens int `json:"spare_tokens,omitempty"`
	// UnchangedTokens counts tokens armed ahead (minted and used) whose change was deferred until a
	// pass needed it and that no pass needed: not revoked for the measurement (not among its
	// revocations), and revoked after it, with the tokens of the run.
	UnchangedTokens int `json:"unchanged_tokens,omitempty"`
}

// Schedules of a staleness measurement's passes.
const (
	ScheduleOverlapped = "overlapped"
	ScheduleSequential = "sequential"
)

// Window causes: what moves the end of a staleness window. The values are stable.
const (
	CauseLifetime     = "lifetime-from-first-use" // a cache entry that lives a fixed time from the first use
	CauseDelay        = "delay-after-change"      // the change reaches the API a fixed time after it was acknowledged
	CausePeriodic     = "periodic"                // the change reaches the API at the next refresh of a periodic sync
	CauseExpiry       = "token-expiry"            // the token is honoured until its own exp (offline verification)
	CauseNever        = "never"                   // still honoured when the replays stopped
	CauseUndetermined = "undetermined"            // the passes ran out before one cause remained
)

// Frames: the reference points a window's figures count from.
const (
	FrameFillSent     = "fill-sent"           // when the token's first use was sent
	FrameFillReceived = "fill-received"       // when the first use was answered
	FrameFirstUse     = "first-use"           // somewhere in the first use's round trip
	FrameChangeSent   = "change-sent"         // when the revocation or downgrade was sent
	FrameChangeAcked  = "change-acknowledged" // when it was acknowledged
	FrameChange       = "change"              // somewhere between the two
	FrameTokenExp     = "token-exp"           // the token's exp claim
)

// Bracket is an interval of milliseconds; HiMS is absent when nothing bounds it above.
type Bracket struct {
	LoMS float64  `json:"lo_ms"`
	HiMS *float64 `json:"hi_ms,omitempty"`
}

// Closed reports whether the bracket has an upper bound.
func (b *Bracket) Closed() bool { return b != nil && b.HiMS != nil }

// Hi returns the upper bound, or 0 when there is none.
func (b *Bracket) Hi() float64 {
	if !b.Closed() {
		return 0
	}
	return *b.HiMS
}

// Width is Hi - Lo, or 0 when the bracket is open.
func (b *Bracket) Width() float64 {
	if !b.Closed() {
		return 0
	}
	return *b.HiMS - b.LoMS
}

// Periodic is what passes against a periodic refresh showed.
type Periodic struct {
	// Shortest and Longest are the shortest and longest windows a pass observed, after its own
	// acknowledgement.
	Shortest Bracket `json:"shortest"`
	Longest  Bracket `json:"longest"`
	// Period is the estimated refresh period, absent when the ends did not fit one; PeriodNote says
	// how it was estimated or why it could not be.
	Period     *Bracket `json:"period,omitempty"`
	PeriodNote string   `json:"period_note,omitempty"`
}

// Reach is how far the replays of a pass that saw no refusal got, and what stopped them.
type Reach struct {
	Pass int `json:"pass"`
	// LastReplayMS is when the last replay was sent, after that pass's acknowledgement.
	LastReplayMS float64 `json:"last_replay_ms"`
	// StoppedBy is one of the Stopped* values.
	StoppedBy string `json:"stopped_by"`
	Detail    string `json:"detail,omitempty"`
}

// Why replays stopped without a refusal.
const (
	StoppedMaxWindow = "max-window" // the last replay went out at limits.max_window
	StoppedBudget    = "budget"     // the request budget was spent
	StoppedDeadline  = "deadline"   // the scan was interrupted or ran out of time
	StoppedError     = "error"      // a request failed
	StoppedRate      = "rate"       // the API answered 429 Too Many Requests, replay after replay
)

// WidthMS is the bracket pass's width after the acknowledgement, or 0 when the window never closed.
func (w *Window) WidthMS() float64 {
	if w.Never {
		return 0
	}
	return w.FirstRejectedMS - w.LastAcceptedMS
}

// Pass is one measurement pass with a fresh token. Offsets are milliseconds after the pass's own
// acknowledgement (negative before it).
type Pass struct {
	LastAcceptedMS  float64 `json:"last_accepted_ms"`
	FirstRejectedMS float64 `json:"first_rejected_ms,omitempty"`
	Never           bool    `json:"never_rejected,omitempty"`
	Replays         int     `json:"replays"`
	FillToChangeMS  float64 `json:"fill_to_change_ms"`
	// AcknowledgedAt is the wall-clock time of the acknowledgement, to find the pass in server logs.
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	TokenMintedMS  float64   `json:"token_minted_ms"`
	// TokenExpMS is the token's exp, when the token is a JWT that has one.
	TokenExpMS *float64 `json:"token_exp_ms,omitempty"`
	// FillSentMS and FillReceivedMS are the round trip of the token's first use, which filled what the
	// API caches. FillCertain is false when the cache may have been filled before it (a subject's
	// permissions, on the first pass of a downgrade): then the lifetime has no upper bound in this pass.
	FillSentMS     float64 `json:"fill_sent_ms"`
	FillReceivedMS float64 `json:"fill_received_ms"`
	FillCertain    bool    `json:"fill_certain"`
	ChangeSentMS   float64 `json:"change_sent_ms"`
	// WaitBeforeMS is a pause before the pass began and GapMS one between the first use and the
	// change: both set on purpose, so that the causes predict different ends.
	WaitBeforeMS  float64 `json:"wait_before_ms,omitempty"`
	GapMS         float64 `json:"gap_ms,omitempty"`
	FirstReplayMS float64 `json:"first_replay_ms"`
	LastReplayMS  float64 `json:"last_replay_ms"`
	// Bracket is this pass's own interval for the window's parameter, in the window's frame.
	Bracket *Bracket `json:"bracket,omitempty"`
	// Why says why the pass was needed and how it was begun.
	Why string `json:"why,omitempty"`
	// ArmedAheadMS, for a token armed while pass 1 was still replaying, is how long after pass 1's
	// acknowledgement its own change was acknowledged: its window overlapped pass 1's.
	ArmedAheadMS float64 `json:"armed_ahead_ms,omitempty"`
}

// Inflight is the proof that an action committed after the revocation of the token that authorized it
// was acknowledged. Offsets are milliseconds after the action was sent, in the proving attempt.
type Inflight struct {
	// ActionLatencyMS is the action's median round trip when nothing races it.
	ActionLatencyMS float64 `json:"action_latency_ms"`
	// AckMS is when the revocation was acknowledged; VerifyMS when the read that still found the
	// resource was sent; AnsweredMS when the action answered with success. AckMS < VerifyMS proves
	// the action had not committed when the revocation was acknowledged.
	AckMS      float64 `json:"ack_ms"`
	VerifyMS   float64 `json:"verify_ms"`
	AnsweredMS float64 `json:"answered_ms"`
	// RevokeOffsetsHitMS are the offsets (revocation sent this long after the action's release;
	// negative: before it) that proved the flaw; RevokeOffsetsTriedMS all those tried.
	RevokeOffsetsHitMS   []float64 `json:"revoke_offsets_hit_ms"`
	RevokeOffsetsTriedMS []float64 `json:"revoke_offsets_tried_ms"`
	Attempts             int       `json:"attempts"`
	// RefusedAfterRevocation is true when a control attempt, revoking before sending the action,
	// was refused: the API does check revocation, only not at the moment of the action.
	RefusedAfterRevocation bool `json:"refused_after_revocation"`
}

// Forged is a credential a check sent in place of the identity's real token: none at all, a
// malformed one, or a token it forged. The token itself is a secret of the run and never in a report
// (evidence shows it as a [forged:...] label); Made says how it was built, so it can be built again.
type Forged struct {
	// Variant names it, e.g. "no credentials", `alg "None"`, "payload changed: sub of bob".
	Variant string `json:"variant"`
	// Made says how it was built from the identity's token.
	Made string `json:"made"`
	// Subject is the sub claim it carried, when it is a JWT.
	Subject string `json:"subject,omitempty"`
	// OtherSubject is true when Subject belongs to another identity: accepted, it impersonates.
	OtherSubject bool   `json:"other_subject,omitempty"`
	Status       int    `json:"status"`
	Outcome      string `json:"outcome"` // accepted, rejected, inconclusive
}

// Authz is the proof of an authorization finding: what the identity under test (Finding.Identity)
// did that only Owner may do, and what showed that it took.
type Authz struct {
	// Owner is the identity entitled to it: the owner of the object (authz/bola) or the privileged
	// identity (authz/bfla); empty for a property the identity set on itself (authz/mass-assignment).
	Owner string `json:"owner,omitempty"`
	// Operation is what was done: read, update, delete, create or call.
	Operation string `json:"operation"`
	// Fields, for a read, are the fields of the owner's own view that the identity's answer
	// reproduced (JSON paths); for a mass assignment, the properties that took, as name=value read
	// back.
	Fields []string `json:"fields,omitempty"`
	// Effect, for a write, is what reading back showed: "gone", or "changed: " and the fields.
	Effect string `json:"effect,omitempty"`
}

// Line says in one line what an authorization finding proved.
func (a *Authz) Line(identity string) string {
	var b strings.Builder
	switch {
	case a.Owner != "":
		fmt.Fprintf(&b, "%s could %s what only %s may", identity, a.Operation, a.Owner)
	default:
		fmt.Fprintf(&b, "%s set properties it may not (%s)", identity, a.Operation)
	}
	if a.Effect != "" {
		fmt.Fprintf(&b, "; read back: %s", a.Effect)
	}
	if len(a.Fields) > 0 {
		what := "its answer reproduced"
		if a.Owner == "" {
			what = "taken"
		}
		fmt.Fprintf(&b, "; %s: %s", what, strings.Join(a.Fields, ", "))
	}
	return b.String()
}

// Event is one entry of an evidence timeline.
type Event struct {
	// AtMS is the offset from the start of the experiment this timeline belongs to.
	AtMS float64 `json:"at_ms"`
	// Kind is one of the Event* constants.
	Kind   string    `json:"kind"`
	Detail string    `json:"detail,omitempty"`
	HTTP   *Exchange `json:"http,omitempty"`
}

// Event kinds.
const (
	EventToken       = "token-issued"
	EventFill        = "cache-fill"
	EventChangeSent  = "change-sent"
	EventChangeAcked = "change-acknowledged"
	EventReplay      = "replay"
	EventRestore     = "restore"
	EventSetup       = "setup"
	EventAction      = "action-sent"
	EventAnswered    = "action-answered"
	EventVerify      = "verify"
	EventNote        = "note"
	EventControl     = "control" // a request that rules out another explanation (no token, the change undone)
	EventForged      = "forged"  // a request with a credential a check forged in place of the identity's token
	EventAccess      = "access"  // the identity under test asks for what only another identity may have
)

// Exchange is one HTTP request and its response, with secrets already redacted.
type Exchange struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	// Token identifies the bearer token used by a short hash, never the token itself.
	Token      string  `json:"token,omitempty"`
	Status     int     `json:"status"`
	Outcome    string  `json:"outcome,omitempty"` // accepted, rejected, inconclusive
	SentMS     float64 `json:"sent_ms"`
	ReceivedMS float64 `json:"received_ms"`
	// BodyExcerpt is the start of the response body, redacted.
	BodyExcerpt string `json:"body_excerpt,omitempty"`
}

// MarshalJSON keeps floats short in reports: microsecond resolution is all a millisecond figure needs.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	e.AtMS = Round(e.AtMS)
	return json.Marshal(plain(e))
}

// Round rounds a millisecond figure to microseconds.
func Round(ms float64) float64 {
	if ms < 0 {
		return -Round(-ms)
	}
	return float64(int64(ms*1000+0.5)) / 1000
}
