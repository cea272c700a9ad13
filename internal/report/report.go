// Package report holds the outcome of a scan and writes it in the formats people and CI read. One
// writer per format, each in its own file; every writer renders the same Report.
package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
)

// Schema names the JSON report format and its version; it changes only when a field changes meaning
// or disappears (docs/report-json.md).
const Schema = "tocsin.report/v1"

// Report is the outcome of one scan.
type Report struct {
	Schema     string        `json:"schema"`
	Tool       Tool          `json:"tool"`
	Target     Target        `json:"target"`
	StartedAt  time.Time     `json:"started_at"`
	FinishedAt time.Time     `json:"finished_at"`
	DurationMS float64       `json:"duration_ms"`
	Requests   int           `json:"requests"`
	Checks     []CheckResult `json:"checks"`
	Summary    Summary       `json:"summary"`
	// Score (0-100) and Grade (A-F) rate the scan by the rule in docs/score.md; Finish fills them.
	Score    int               `json:"score"`
	Grade    string            `json:"grade"`
	Findings []finding.Finding `json:"findings"`
}

// Tool identifies the scanner.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Target says what was scanned.
type Target struct {
	// Name labels the target, e.g. the config file or "lab (vulnerable)".
	Name    string   `json:"name"`
	Origins []string `json:"origins"`
}

// Check statuses.
const (
	StatusPassed  = "passed"  // ran, found nothing
	StatusFailed  = "failed"  // ran, found something
	StatusSkipped = "skipped" // could not run on this target; Reason says why
	StatusError   = "error"   // stopped by an error; Reason says what
)

// CheckResult is one check's run.
type CheckResult struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Endpoints are the method and path template of each probe the check ran with, when the scan
	// records them; JUnit makes one testcase per check and endpoint.
	Endpoints  []string `json:"endpoints,omitempty"`
	Findings   int      `json:"findings"`
	Requests   int      `json:"requests"`
	DurationMS float64  `json:"duration_ms"`
}

// Summary counts findings by severity.
type Summary struct {
	Total    int `json:"total"`
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	Info     int `json:"info"`
}

// Finish sorts the findings (most severe first, then by check and endpoint) and fills the summary,
// the score and the grade.
func (r *Report) Finish() {
	slices.SortStableFunc(r.Findings, func(a, b finding.Finding) int {
		if a.Severity != b.Severity {
			return int(b.Severity) - int(a.Severity)
		}
		if c := strings.Compare(a.Check, b.Check); c != 0 {
			return c
		}
		return strings.Compare(a.Endpoint, b.Endpoint)
	})
	r.Summary = Summary{Total: len(r.Findings)}
	for _, f := range r.Findings {
		switch f.Severity {
		case finding.Critical:
			r.Summary.Critical++
		case finding.High:
			r.Summary.High++
		case finding.Medium:
			r.Summary.Medium++
		case finding.Low:
			r.Summary.Low++
		default:
			r.Summary.Info++
		}
	}
	r.Score, r.Grade = score(r.Summary)
}

// AtOrAbove counts findings of severity s or worse.
func (r *Report) AtOrAbove(s finding.Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity >= s {
			n++
		}
	}
	return n
}

// Formats lists the output formats Write accepts.
var Formats = []string{"text", "json", "sarif", "junit", "html"}

// Options tune the writers that care.
type Options struct {
	Color bool // ANSI colour in text output
}

// Write renders reports in the named format. Several reports (the demo's two labs) become: text, one
// after another; JSON, an array (one report is an object); SARIF, one run per report; JUnit, one
// testsuite per report; HTML, one section per report on the same page.
func Write(w io.Writer, format string, opts Options, reports ...*Report) error {
	switch format {
	case "text":
		for i, r := range reports {
			if i > 0 {
				if _, err := io.WriteString(w, "\n"); err != nil {
					return err
				}
			}
			if err := WriteText(w, r, opts); err != nil {
				return err
			}
		}
		return nil
	case "json":
		if len(reports) == 1 {
			return WriteJSON(w, reports[0])
		}
		return WriteJSON(w, reports)
	case "sarif":
		return WriteSARIF(w, reports)
	case "junit":
		return WriteJUnit(w, reports)
	case "html":
		return WriteHTML(w, reports)
	}
	return fmt.Errorf("unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}
