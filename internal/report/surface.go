package report

import (
	"fmt"
	"strings"
)

// Surface lists the API's operations, read from the config's openapi: and har:, and what the scan
// did with each: which checks tested it and why, or why it was not tested.
type Surface struct {
	// Sources name each document read, e.g. "openapi: spec.yaml (OpenAPI 3.1.0)".
	Sources    []string    `json:"sources"`
	Notes      []string    `json:"notes,omitempty"`
	Operations []Operation `json:"operations"`
	// Unselected are the checks that fitted no operation, with why.
	Unselected []Unselected `json:"unselected,omitempty"`
}

// Operation statuses in the surface section.
const (
	OperationTested    = "tested"     // a check sent its probe
	OperationPublic    = "public"     // it declares no security: nothing to revoke
	OperationNotTested = "not-tested" // Reason says why
)

// Operation is one operation of the surface.
type Operation struct {
	ID       string `json:"id"`       // the operationId, or METHOD /path
	Endpoint string `json:"endpoint"` // METHOD /path template
	// Status is tested, public or not-tested.
	Status string `json:"status"`
	// Probe names the probe that sends it: made from the operation, or the config's own.
	Probe string `json:"probe,omitempty"`
	// How says where the made probe's values come from: its setup, verify and teardown.
	How    string           `json:"how,omitempty"`
	Checks []OperationCheck `json:"checks,omitempty"`
	Reason string           `json:"reason,omitempty"`
}

// OperationCheck is one check that tested an operation, and why it picked it.
type OperationCheck struct {
	Check string `json:"check"`
	Why   string `json:"why"`
}

// Unselected is a check that fitted no operation.
type Unselected struct {
	Check  string `json:"check"`
	Reason string `json:"reason"`
}

// Count returns how many operations have each status.
func (s *Surface) Count() (tested, public, notTested int) {
	for _, op := range s.Operations {
		switch op.Status {
		case OperationTested:
			tested++
		case OperationPublic:
			public++
		default:
			notTested++
		}
	}
	return tested, public, notTested
}

// Line summarises the surface in one line.
func (s *Surface) Line() string {
	tested, public, notTested := s.Count()
	return fmt.Sprintf("%d operations: %d tested, %d public, %d not tested", len(s.Operations), tested, public, notTested)
}

// writeSurfaceText writes the surface section of the text report.
func writeSurfaceText(p *printer, s *Surface) {
	p.f("\nSurface (%s): %s\n", strings.Join(s.Sources, ", "), s.Line())
	for _, n := range s.Notes {
		p.wrap("  ", "note: "+n)
	}
	for _, op := range s.Operations {
		name := op.Endpoint
		if op.ID != op.Endpoint {
			name += " (" + op.ID + ")"
		}
		switch op.Status {
		case OperationTested:
			p.f("  %-10s  %s\n", "tested", name)
			for _, c := range op.Checks {
				p.wrap("                ", c.Check+": "+c.Why)
			}
		case OperationPublic:
			p.f("  %-10s  %s\n", "public", name)
		default:
			p.f("  %-10s  %s\n", "not tested", name)
			p.wrap("                ", op.Reason)
		}
	}
	for _, u := range s.Unselected {
		p.wrap("  ", fmt.Sprintf("no operation for %s: %s", u.Check, u.Reason))
	}
}
