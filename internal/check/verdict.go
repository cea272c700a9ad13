package check

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// Verdict is how one experiment (one check on one probe) ended. Found and Passed are claims about
// the API; NotApplicable says the flaw cannot be there, from what the check observed (the token is
// not a JWT, so no JWT signature can be defeated); Inconclusive says it was tested but the evidence
// cannot decide; Errored and Skipped mean it was not tested, which makes the whole scan incomplete.
type Verdict string

const (
	Found  Verdict = "finding" // a flaw was proven, with evidence
	Passed Verdict = "passed"  // the flaw was tested for and is absent
	// NotApplicable: what the check tests for does not exist here (observed, never assumed).
	NotApplicable Verdict = "not_applicable"
	Inconclusive  Verdict = "inconclusive" // tested, but a control failed or the evidence cannot decide
	Errored       Verdict = "error"        // could not test: an error stopped it
	Skipped       Verdict = "skipped"      // could not test: the config lacks what the check needs
)

// Reached reports whether the verdict is one a complete scan may hold.
func (v Verdict) Reached() bool {
	return v == Found || v == Passed || v == Inconclusive || v == NotApplicable
}

// Experiment is one check's verdict on one probe.
type Experiment struct {
	Probe    string
	Endpoint string
	Verdict  Verdict
	// Reason says why an experiment was inconclusive, errored or skipped, and what to change.
	Reason string
}

// RestoreFailure is an identity a scan changed and could not put back.
type RestoreFailure struct {
	Identity string
	Check    string
	// State says what the identity was left in, e.g. "downgraded (the downgrade hook's change is in effect)".
	State string
	// Manual is the restore hook written out to be run by hand, secrets shown as labels.
	Manual string
	Error  string
}

// Leftover is what a check created on the target and could not remove.
type Leftover struct {
	Check, Probe string
	Count        int
	What         string // e.g. "2 resource(s) created by the setup of POST /items"
	Reason       string // why they were not removed, and what to do
}

// Ledger collects, for one scan, what no single finding carries: each experiment's verdict, the
// identities that could not be restored and what was left on the target. Checks write to it
// through Env; the scan reads it. It is safe for concurrent use.
type Ledger struct {
	mu          sync.Mutex
	experiments map[string][]Experiment // by check ID
	restores    []RestoreFailure
	leftovers   []Leftover
	forgers     map[string]Forger // by identity: a way to forge its tokens that a check proved
}

// Leftovers returns what checks could not remove from the target.
func (l *Ledger) Leftovers() []Leftover {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Leftover(nil), l.leftovers...)
}

func (l *Ledger) record(checkID string, e Experiment) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.experiments == nil {
		l.experiments = map[string][]Experiment{}
	}
	l.experiments[checkID] = append(l.experiments[checkID], e)
}

func (l *Ledger) restoreFailed(f RestoreFailure) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.restores = append(l.restores, f)
}

// Experiments returns what checkID recorded, in order.
func (l *Ledger) Experiments(checkID string) []Experiment {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Experiment(nil), l.experiments[checkID]...)
}

// RestoreFailures returns every identity left changed.
func (l *Ledger) RestoreFailures() []RestoreFailure {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]RestoreFailure(nil), l.restores...)
}

// InconclusiveError ends an experiment as inconclusive: the test ran, but a control failed or the
// evidence cannot decide. Reason says why and what to change.
type InconclusiveError struct{ Reason string }

func (e *InconclusiveError) Error() string { return "inconclusive: " + e.Reason }

func inconclusive(format string, args ...any) error {
	return &InconclusiveError{Reason: fmt.Sprintf(format, args...)}
}

// nothingToClaim ends an experiment as passed, with the reason it had no claim to make: what the
// identity under test reached is meant for it (the config marks the object shared, the identity
// lists it). It is a pass, not a skip: the flaw cannot be there.
type nothingToClaim struct{ Reason string }

func (e *nothingToClaim) Error() string { return "passed: " + e.Reason }

func passedBecause(format string, args ...any) error {
	return &nothingToClaim{Reason: fmt.Sprintf(format, args...)}
}

// NotApplicableError ends an experiment as not applicable: the check observed that the flaw it
// tests for cannot exist on this probe and identity (the token is not a JWT). Reason says what
// was observed. Unlike a skip, the scan stays complete: nothing that could be tested was left.
type NotApplicableError struct{ Reason string }

func (e *NotApplicableError) Error() string { return "not applicable: " + e.Reason }

func notApplicable(format string, args ...any) error {
	return &NotApplicableError{Reason: fmt.Sprintf(format, args...)}
}

// classify turns how an experiment ended into its verdict and reason. A finding that comes with an
// error was proven before the error stopped the experiment: the verdict is the error (the experiment
// did not finish, so the scan is incomplete), and the finding is reported all the same.
func classify(f *finding.Finding, err error) (Verdict, string) {
	var inc *InconclusiveError
	var sk *SkipError
	var none *nothingToClaim
	var na *NotApplicableError
	switch {
	case err != nil && f != nil:
		return Errored, err.Error() + " (a finding proven before the error is reported)"
	case err == nil && f != nil:
		return Found, ""
	case err == nil:
		return Passed, ""
	case errors.As(err, &none):
		return Passed, none.Reason
	case errors.As(err, &inc):
		return Inconclusive, inc.Reason
	case errors.As(err, &na):
		return NotApplicable, na.Reason
	case errors.As(err, &sk):
		return Skipped, sk.Reason
	}
	return Errored, err.Error()
}

// fatal reports whether an experiment's error will also stop every later one, so that the check
// stops instead of repeating it: the scan was interrupted, or the request budget is spent.
func fatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, client.ErrBudget)
}

// forEachProbe runs one experiment per probe the plan names, as the identity under test for that
// probe (the probe's own `as:`, else the check's identity), and records each verdict in the ledger.
// run returns a finding, an error, or both: a finding proven before an error stopped the experiment
// stands (it is reported; the experiment's verdict is the error, so the check's status is error and
// the scan incomplete, and exit codes let findings win). An experiment that errs does not stop the
// next one, unless nothing could run after it (fatal); the first such error is returned so that the
// scan reports the check as stopped.
func forEachProbe(ctx context.Context, env *Env, checkID string, run func(ctx context.Context, p *probe.Probe, id *identity.Identity) (*finding.Finding, error)) ([]finding.Finding, error) {
	return forEachProbeFindings(ctx, env, checkID, func(ctx context.Context, p *probe.Probe, id *identity.Identity) ([]finding.Finding, error) {
		f, err := run(ctx, p, id)
		if f == nil {
			return nil, err
		}
		return []finding.Finding{*f}, err
	})
}

// forEachProbeFindings is forEachProbe for checks that may prove several findings in one experiment
// (auth/missing: one per credential the API should have refused).
func forEachProbeFindings(ctx context.Context, env *Env, checkID string, run func(ctx context.Context, p *probe.Probe, id *identity.Identity) ([]finding.Finding, error)) ([]finding.Finding, error) {
	t := env.Target
	var out []finding.Finding
	for i, name := range env.Plan.Probes {
		p, ok := t.Probes[name]
		if !ok {
			return out, fmt.Errorf("probe %q is not defined", name)
		}
		idName := env.Plan.IdentityFor(name)
		if _, chosen := env.Plan.PerProbe[name]; p.As != "" && !chosen {
			idName = p.As
		}
		id, ok := t.Identities[idName]
		if !ok {
			return out, fmt.Errorf("identity %q is not defined", idName)
		}
		before := t.Client.Sent()
		fs, err := run(ctx, p, id)
		if err != nil {
			err = t.Redactor.Error(err)
		}
		var first *finding.Finding
		if len(fs) > 0 {
			first = &fs[0]
		}
		verdict, reason := classify(first, err)
		env.record(checkID, Experiment{Probe: p.Name, Endpoint: p.Endpoint(), Verdict: verdict, Reason: t.Redactor.String(reason)})
		for _, f := range fs {
			if f.Requests == 0 {
				f.Requests = t.Client.Sent() - before
			}
			out = append(out, f)
		}
		if err != nil && fatal(ctx, err) {
			for _, rest := range env.Plan.Probes[i+1:] {
				endpoint := ""
				if q, ok := t.Probes[rest]; ok {
					endpoint = q.Endpoint()
				}
				env.record(checkID, Experiment{Probe: rest, Endpoint: endpoint, Verdict: Errored, Reason: "not run: " + t.Redactor.String(err.Error())})
			}
			return out, err
		}
	}
	return out, nil
}
