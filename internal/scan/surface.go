package scan

import (
	"fmt"
	"maps"
	"slices"

	"github.com/tocsin/tocsin/internal/report"
	"github.com/tocsin/tocsin/internal/target"
)

// unselected says why a check configured without probes runs on no operation, or "".
func unselected(t *target.Target, checkID string) string {
	if t.Surface == nil || t.Surface.Unselected[checkID] == "" {
		return ""
	}
	return "no operation fits: " + t.Surface.Unselected[checkID]
}

// surfaceReport lists every operation of the target's surface with what the scan did with it.
func surfaceReport(t *target.Target) *report.Surface {
	s := t.Surface
	if s == nil {
		return nil
	}
	red := t.Redactor.String
	out := &report.Surface{Sources: slices.Clone(s.Sources), Notes: slices.Clone(s.Notes), Operations: []report.Operation{}}
	for _, op := range s.Ops {
		ro := report.Operation{ID: red(op.ID), Endpoint: red(op.Endpoint()), Probe: op.Probe, How: red(op.How)}
		for _, u := range op.Uses {
			if _, ran := t.Checks[u.Check]; ran {
				ro.Checks = append(ro.Checks, report.OperationCheck{Check: u.Check, Why: red(u.Why)})
			}
		}
		switch {
		case len(ro.Checks) > 0:
			ro.Status = report.OperationTested
		case op.Public():
			ro.Status = report.OperationPublic
		default:
			ro.Status = report.OperationNotTested
			ro.Reason = red(notTestedReason(op))
		}
		out.Operations = append(out.Operations, ro)
	}
	for _, id := range slices.Sorted(maps.Keys(s.Unselected)) {
		out.Unselected = append(out.Unselected, report.Unselected{Check: id, Reason: red(s.Unselected[id])})
	}
	return out
}

// notTestedReason says why an operation with security was not tested.
func notTestedReason(op *target.Op) string {
	switch {
	case op.Reason != "":
		return op.Reason
	case op.Method == "DELETE":
		return fmt.Sprintf("no check picked its probe %s (toctou/inflight-revocation needs a setup that creates the resource and a GET on the same path)", op.Probe)
	case !op.Read():
		return fmt.Sprintf("no check picked its probe %s (race/limit-overrun takes only operations marked single_use)", op.Probe)
	}
	return fmt.Sprintf("no check picked its probe %s (no identity fits it, or the checks that would were not run)", op.Probe)
}
