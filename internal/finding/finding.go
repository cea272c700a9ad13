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
// API still honoured the old state. All times are milliseconds after the acknowledgement.
type Window struct {
	// What changed: "revocation" or "downgrade".
	Change string `json:"change"`
	// LastAcceptedMS and FirstRejectedMS bracket the end of the window: a replay sent LastAcceptedMS
	// after the acknowledgement was still accepted, one answered FirstRejectedMS after it was refused.
	LastAcceptedMS  float64 `json:"last_accepted_ms"`
	FirstRejectedMS float64 `json:"first_rejected_ms,omitempty"`
	// Never is true when the old state was still honoured when the measurement gave up at MaxWaitMS.
	Never     bool    `json:"never_rejected,omitempty"`
	MaxWaitMS float64 `json:"max_wait_ms"`
	// FillToChangeMS is the time from the request that filled the API's caches to the acknowledgement:
	// adding it to the bracket estimates a cache TTL counted from the fill.
	FillToChangeMS float64 `json:"fill_to_change_ms"`
	// Passes holds each measurement pass's bracket, coarse first.
	Passes []Pass `json:"passes,omitempty"`
}

// WidthMS is the bracket's width, or 0 when the window never closed.
func (w *Window) WidthMS() float64 {
	if w.Never {
		return 0
	}
	return w.FirstRejectedMS - w.LastAcceptedMS
}

// Pass is one measurement pass with a fresh token.
type Pass struct {
	LastAcceptedMS  float64 `json:"last_accepted_ms"`
	FirstRejectedMS float64 `json:"first_rejected_ms,omitempty"`
	Never           bool    `json:"never_rejected,omitempty"`
	Replays         int     `json:"replays"`
	FillToChangeMS  float64 `json:"fill_to_change_ms"`
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
