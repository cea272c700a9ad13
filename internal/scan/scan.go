// Package scan runs the configured checks against a target, one after another, and collects their
// findings into a report. A check that fails or cannot run is recorded with the reason; the scan goes
// on with the next one.
package scan

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/report"
	"github.com/tocsin/tocsin/internal/target"
)

// Options tune a scan.
type Options struct {
	Name     string   // target label in the report
	Version  string   // tocsin's version
	Only     []string // when set, run only these check IDs (each must be configured)
	Progress func(msg string)
	// Alert receives what must be shown even when progress is silenced: an identity left changed.
	Alert func(msg string)
	// Locate, when set, says where a probe is written in the config, so that each finding points
	// at the line the user can change (code scanning shows it there).
	Locate func(probe string) *finding.Location
	// JWTWordlist is a file of candidate secrets for jwt/weak-hmac-secret, after its built-in list.
	JWTWordlist string
}

// Run runs every check the target configures, in config order.
func Run(ctx context.Context, t *target.Target, opts Options) (*report.Report, error) {
	// With openapi: or har:, checks that name no probes pick them among the operations first.
	if err := check.Choose(t); err != nil {
		return nil, err
	}
	ids := t.CheckOrder
	if len(opts.Only) > 0 {
		for _, id := range opts.Only {
			if _, ok := t.Checks[id]; !ok {
				return nil, fmt.Errorf("check %q is not configured in this target's checks section", id)
			}
		}
		ids = opts.Only
	}
	r := &report.Report{
		Schema:    report.Schema,
		Tool:      report.Tool{Name: "tocsin", Version: opts.Version},
		Target:    report.Target{Name: opts.Name, Origins: t.Origins},
		StartedAt: time.Now(),
		Checks:    []report.CheckResult{},
	}
	startRequests := t.Client.Sent()
	ledger := &check.Ledger{}
	for i, id := range ids {
		c := check.ByID(id)
		if c == nil {
			return nil, fmt.Errorf("unknown check %q", id)
		}
		meta := c.Meta()
		res := report.CheckResult{ID: meta.ID, Title: meta.Title}
		for _, name := range t.Checks[id].Probes {
			if p, ok := t.Probes[name]; ok {
				res.Endpoints = append(res.Endpoints, p.Endpoint())
			}
		}
		if ctx.Err() != nil {
			// Interrupted before this check began: it is listed, as not run, so that nothing is
			// taken for a pass.
			res.Status, res.Reason = report.StatusSkipped, "not run: the scan was interrupted"
			r.Checks = append(r.Checks, res)
			continue
		}
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf("%s: running (check %d of %d)", meta.ID, i+1, len(ids)))
		}
		start, before := time.Now(), t.Client.Sent()
		findings, err := c.Run(ctx, &check.Env{Target: t, Plan: t.Checks[id], Progress: opts.Progress, Alert: opts.Alert, Ledger: ledger, JWTWordlist: opts.JWTWordlist})
		res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
		res.Requests = t.Client.Sent() - before
		res.Findings = len(findings)
		for i := range findings {
			findings[i].SortEvidence()
			if f := &findings[i]; f.Location == nil && f.Probe != "" && opts.Locate != nil {
				f.Location = opts.Locate(f.Probe)
			}
		}
		r.Findings = append(r.Findings, findings...)
		for _, x := range ledger.Experiments(id) {
			res.Experiments = append(res.Experiments, report.Experiment{Probe: x.Probe, Endpoint: x.Endpoint, Verdict: string(x.Verdict), Reason: x.Reason})
		}
		res.Status, res.Reason = checkStatus(res.Experiments, len(findings), err, t.Redactor.String)
		if why := unselected(t, id); why != "" && len(res.Experiments) == 0 && err == nil {
			res.Reason = why
		}
		r.Checks = append(r.Checks, res)
	}
	// What minting tokens created (accounts a login registered) goes last, once nothing needs it.
	check.TeardownIdentities(ctx, &check.Env{Target: t, Progress: opts.Progress, Alert: opts.Alert, Ledger: ledger})
	for _, f := range ledger.RestoreFailures() {
		r.RestoreFailures = append(r.RestoreFailures, report.RestoreFailure{Identity: f.Identity, Check: f.Check, State: f.State, Manual: f.Manual, Error: f.Error})
	}
	for _, l := range ledger.Leftovers() {
		r.LeftOnTarget = append(r.LeftOnTarget, report.Leftover{Check: l.Check, Probe: l.Probe, Count: l.Count, What: l.What, Reason: l.Reason})
	}
	r.Surface = surfaceReport(t)
	r.Interrupted = ctx.Err() != nil
	r.FinishedAt = time.Now()
	r.DurationMS = float64(r.FinishedAt.Sub(r.StartedAt).Microseconds()) / 1000
	r.Requests = t.Client.Sent() - startRequests
	if r.Findings == nil {
		r.Findings = []finding.Finding{}
	}
	r.Redact(t.Redactor.String)
	r.Finish()
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("scan interrupted: %w", err)
	}
	return r, nil
}

// checkStatus decides a check's status from its experiments and the error that ended it, if any.
// The worst verdict wins: a probe that errored or was skipped means the check did not fully run,
// whatever it found on the others; then findings; then an inconclusive probe; a check passes when
// every probe passed or was not applicable, and is not applicable when every probe was. The reason gathers each probe's.
func checkStatus(experiments []report.Experiment, findings int, err error, redact func(string) string) (status, reason string) {
	if err != nil {
		if why, skipped := check.IsSkip(err); skipped {
			return report.StatusSkipped, redact(why)
		}
		return report.StatusError, redact(err.Error())
	}
	if len(experiments) == 0 {
		if findings > 0 {
			return report.StatusFailed, ""
		}
		return report.StatusSkipped, "no probe to run (hint: list probes under this check in the config)"
	}
	status = report.StatusNotApplicable // until an experiment tested something
	var reasons []string
	for _, x := range experiments {
		if st := statusOf[x.Verdict]; rank(st) > rank(status) {
			status = st
		}
		if x.Reason != "" {
			reasons = append(reasons, x.Probe+": "+x.Reason)
		}
	}
	return status, strings.Join(reasons, "; ")
}

// statusOf maps an experiment's verdict to the check status it stands for.
var statusOf = map[string]string{
	string(check.Found):         report.StatusFailed,
	string(check.Passed):        report.StatusPassed,
	string(check.NotApplicable): report.StatusNotApplicable,
	string(check.Inconclusive):  report.StatusInconclusive,
	string(check.Skipped):       report.StatusSkipped,
	string(check.Errored):       report.StatusError,
}

// rank orders check statuses from best to worst.
func rank(status string) int {
	return slices.Index([]string{report.StatusNotApplicable, report.StatusPassed, report.StatusInconclusive, report.StatusFailed, report.StatusSkipped, report.StatusError}, status)
}
