// Package scan runs the configured checks against a target, one after another, and collects their
// findings into a report. A check that fails or cannot run is recorded with the reason; the scan goes
// on with the next one.
package scan

import (
	"context"
	"fmt"
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
}

// Run runs every check the target configures, in config order.
func Run(ctx context.Context, t *target.Target, opts Options) (*report.Report, error) {
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
	for _, id := range ids {
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
		if opts.Progress != nil {
			opts.Progress(meta.ID + ": running")
		}
		start, before := time.Now(), t.Client.Sent()
		findings, err := c.Run(ctx, &check.Env{Target: t, Plan: t.Checks[id], Progress: opts.Progress})
		res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
		res.Requests = t.Client.Sent() - before
		res.Findings = len(findings)
		r.Findings = append(r.Findings, findings...)
		switch reason, skipped := check.IsSkip(err); {
		case skipped:
			res.Status, res.Reason = report.StatusSkipped, reason
		case err != nil:
			res.Status, res.Reason = report.StatusError, t.Redactor.String(err.Error())
		case len(findings) > 0:
			res.Status = report.StatusFailed
		default:
			res.Status = report.StatusPassed
		}
		r.Checks = append(r.Checks, res)
		if ctx.Err() != nil {
			break
		}
	}
	r.FinishedAt = time.Now()
	r.DurationMS = float64(r.FinishedAt.Sub(r.StartedAt).Microseconds()) / 1000
	r.Requests = t.Client.Sent() - startRequests
	if r.Findings == nil {
		r.Findings = []finding.Finding{}
	}
	r.Finish()
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("scan interrupted: %w", err)
	}
	return r, nil
}
