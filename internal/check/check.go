// Package check holds tocsin's detections. A check is a small type with static metadata and one
// method that proves a flaw from outside the API; All lists every check in one place.
package check

import (
	"context"
	"errors"
	"fmt"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/probe"
	"github.com/tocsin/tocsin/internal/redact"
	"github.com/tocsin/tocsin/internal/target"
)

// Meta is a check's static description.
type Meta struct {
	ID    string // stable, e.g. "toctou/revoked-token-accepted"
	Title string
	CWE   string
	// Description says what flaw the check proves and how, for --help and reports.
	Description string
	Remediation string
	References  []string
}

// Env is what one run of a check works with.
type Env struct {
	Target *target.Target
	Plan   target.Plan
	// Progress, when set, receives short status lines during long waits; --quiet silences it.
	Progress func(msg string)
	// Alert, when set, receives what the user must see even with --quiet: an identity left changed.
	Alert func(msg string)
	// Ledger, when set, receives each experiment's verdict and every failed restore; the scan
	// reads it to decide whether the scan is complete. Checks also leave there what a later check
	// can build on (a proven way to forge an identity's tokens). Nil discards.
	Ledger *Ledger
	// JWTWordlist, when set, is a file of candidate secrets that jwt/weak-hmac-secret tries after
	// its built-in list (--jwt-wordlist).
	JWTWordlist string
}

func (e *Env) progress(format string, args ...any) {
	if e.Progress != nil {
		e.Progress(fmt.Sprintf(format, args...))
	}
}

func (e *Env) alert(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if e.Alert != nil {
		e.Alert(msg)
	} else if e.Progress != nil {
		e.Progress(msg)
	}
}

// leftBehind records what a check could not remove from the target, and alerts it.
func (e *Env) leftBehind(l Leftover) {
	if e.Ledger != nil {
		e.Ledger.mu.Lock()
		e.Ledger.leftovers = append(e.Ledger.leftovers, l)
		e.Ledger.mu.Unlock()
	}
	e.alert("left on the target by %s: %s: %s", l.Check, l.What, l.Reason)
}

func (e *Env) record(checkID string, x Experiment) {
	if e.Ledger != nil {
		e.Ledger.record(checkID, x)
	}
}

// Check is one detection.
type Check interface {
	Meta() Meta
	Run(ctx context.Context, env *Env) ([]finding.Finding, error)
}

// All returns every check, in the order a scan runs them.
func All() []Check {
	return []Check{
		RevokedTokenAccepted{},
		ScopeDowngradeIgnored{},
		LimitOverrun{},
		InflightRevocation{},
		AuthMissing{},
		NoneAlgorithm{},
		SignatureNotVerified{},
		WeakHMACSecret{},
		AlgorithmConfusion{},
		EmbeddedKey{},
		ExpiredAccepted{}, // after the checks that can prove forging, which it builds on
		BOLA{},
		BFLA{},
		MassAssignment{},
	}
}

// IDs returns every check's ID, in the order of All.
func IDs() []string {
	var ids []string
	for _, c := range All() {
		ids = append(ids, c.Meta().ID)
	}
	return ids
}

// ByID returns the check with the given ID, or nil.
func ByID(id string) Check {
	for _, c := range All() {
		if c.Meta().ID == id {
			return c
		}
	}
	return nil
}

// SkipError says why a check could not run on this target; the scan reports it as skipped, not failed.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

func skip(format string, args ...any) error {
	return &SkipError{Reason: fmt.Sprintf(format, args...)}
}

// IsSkip reports whether err means the check was skipped, and why.
func IsSkip(err error) (string, bool) {
	var s *SkipError
	if errors.As(err, &s) {
		return s.Reason, true
	}
	return "", false
}

// tokenLabel is how evidence names the token a request carried: its label, or (none).
func tokenLabel(red interface{ Label(string) string }, token string) string {
	if token == "" {
		return "(none)"
	}
	return red.Label(token)
}

// exchangeOf is redacted evidence of one request and its response, shared by every check: the URL
// passes through the redactor, the body is redacted before it is cut to an excerpt (so a cut can
// never leave part of a secret), and token is already a label.
func exchangeOf(red *redact.Redactor, method, url, token string, status int, o probe.Outcome, body []byte, truncated bool) *finding.Exchange {
	return &finding.Exchange{
		Method:      method,
		URL:         red.String(url),
		Token:       token,
		Status:      status,
		Outcome:     o.String(),
		BodyExcerpt: red.Excerpt(body, bodyExcerptBytes, truncated),
	}
}

// bodyExcerptBytes is how much of a response body evidence keeps.
const bodyExcerptBytes = 200

// resultExchange is exchangeOf for a probe's result, labelled with the token it carried.
func resultExchange(red *redact.Redactor, r *probe.Result) *finding.Exchange {
	return exchangeOf(red, r.Method, r.URL, tokenLabel(red, r.Token), r.Response.Status, r.Outcome, r.Response.Body, r.Response.Truncated)
}
