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
const Schema = "tocsin.report/v2"

// ReadableSchemas are the report formats `tocsin report` converts: v1 reports (before scan status,
// verdicts per experiment and window causes) read as v2 reports whose new fields are absent.
var ReadableSchemas = []string{Schema, "tocsin.report/v1"}

// Report is the outcome of one scan.
type Report struct {
	Schema     string    `json:"schema"`
	Tool       Tool      `json:"tool"`
	Target     Target    `json:"target"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	DurationMS float64   `json:"duration_ms"`
	Requests   int       `json:"requests"`
	// Status is StatusComplete when every check reached a verdict (finding, passed or inconclusive),
	// no identity was left changed and the scan was not interrupted; otherwise StatusIncomplete, and
	// the report is never shown as a pass or given a grade. Finish fills it.
	Status string `json:"status"`
	// Interrupted is true when a signal or a deadline stopped the scan.
	Interrupted bool `json:"interrupted,omitempty"`
	// RestoreFailures lists identities the scan changed and could not put back: shown first
	// everywhere, each with the request to run by hand.
	RestoreFailures []RestoreFailure `json:"restore_failures,omitempty"`
	// LeftOnTarget lists what checks created on the target and could not remove: shown first
	// everywhere, so someone removes it by hand.
	LeftOnTarget []Leftover    `json:"left_on_target,omitempty"`
	Checks       []CheckResult `json:"checks"`
	// Surface lists the operations of the config's openapi: or har: and what the scan did with
	// each; absent when the config names neither.
	Surface *Surface `json:"surface,omitempty"`
	Summary Summary  `json:"summary"`
	// Score (0-100) and Grade (A-F) rate the scan by the rule in docs/score.md. Finish fills them
	// only for a complete scan with no inconclusive check: a grade for what was not decided would
	// be a pass for what was not tested.
	Score    *int              `json:"score,omitempty"`
	Grade    string            `json:"grade,omitempty"`
	Findings []finding.Finding `json:"findings"`
}

// Scan statuses.
const (
	StatusComplete   = "complete"
	StatusIncomplete = "incomplete"
)

// Leftover is what a check created on the target and could not remove.
type Leftover struct {
	Check string `json:"check"`
	Probe string `json:"probe"`
	Count int    `json:"count"`
	What  string `json:"what"`
	// Reason says why it was not removed and what to do.
	Reason string `json:"reason"`
}

// RestoreFailure is an identity a check changed and could not restore.
type RestoreFailure struct {
	Identity string `json:"identity"`
	Check    string `json:"check"`
	// State is what the identity was left in.
	State string `json:"state"`
	// Manual is the restore hook as a command to run by hand; secrets appear as labels.
	Manual string `json:"manual"`
	Error  string `json:"error"`
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

// Check statuses. The first four are verdicts; skipped and error make the scan incomplete.
const (
	StatusPassed = "passed" // tested every probe, found nothing
	// StatusNotApplicable: the check observed that its flaw cannot exist on any of its probes
	// (e.g. the identity's token is not a JWT); Reason says what. The scan stays complete.
	StatusNotApplicable = "not_applicable"
	StatusFailed        = "failed"       // found something
	StatusInconclusive  = "inconclusive" // tested, but a control failed or the evidence could not decide; Reason says why
	StatusSkipped       = "skipped"      // could not run on this target; Reason says why
	StatusError         = "error"        // stopped by an error; Reason says what
)

// Reached reports whether a check status is a verdict.
func Reached(status string) bool {
	return status == StatusPassed || status == StatusFailed || status == StatusInconclusive || status == StatusNotApplicable
}

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
	// Experiments holds the verdict on each probe, when the check ran any.
	Experiments []Experiment `json:"experiments,omitempty"`
}

// Experiment is one check's verdict on one probe.
type Experiment struct {
	Probe    string `json:"probe,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	// Verdict is finding, passed, inconclusive, error or skipped.
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
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
	r.Status = StatusComplete
	if len(r.NotReached()) > 0 || r.Interrupted || len(r.RestoreFailures) > 0 {
		r.Status = StatusIncomplete
	}
	r.Score, r.Grade = nil, ""
	if r.Graded() {
		points, grade := score(r.Summary)
		r.Score, r.Grade = &points, grade
	}
}

// Redact passes every text of r that may quote the target or the config through redact: endpoints,
// summaries, reasons, evidence (details, URLs, body excerpts) and what was left behind. The checks
// redact each text as they write it; this last pass, once the scan knows every secret it learned,
// is what guarantees that no secret of the run reaches any writer. Names, figures and the tool's
// own texts are left alone.
func (r *Report) Redact(redact func(string) string) {
	for i := range r.RestoreFailures {
		f := &r.RestoreFailures[i]
		f.State, f.Manual, f.Error = redact(f.State), redact(f.Manual), redact(f.Error)
	}
	for i := range r.LeftOnTarget {
		l := &r.LeftOnTarget[i]
		l.What, l.Reason = redact(l.What), redact(l.Reason)
	}
	for i := range r.Checks {
		c := &r.Checks[i]
		c.Reason = redact(c.Reason)
		for j := range c.Endpoints {
			c.Endpoints[j] = redact(c.Endpoints[j])
		}
		for j := range c.Experiments {
			x := &c.Experiments[j]
			x.Endpoint, x.Reason = redact(x.Endpoint), redact(x.Reason)
		}
	}
	for i := range r.Findings {
		f := &r.Findings[i]
		f.Endpoint, f.Summary, f.SeverityReason = redact(f.Endpoint), redact(f.Summary), redact(f.SeverityReason)
		for j := range f.Evidence {
			e := &f.Evidence[j]
			e.Detail = redact(e.Detail)
			if e.HTTP != nil {
				x := *e.HTTP
				x.URL, x.BodyExcerpt = redact(x.URL), redact(x.BodyExcerpt)
				e.HTTP = &x
			}
		}
	}
}

// Complete reports whether every check reached a verdict and nothing was left changed.
func (r *Report) Complete() bool { return r.Status == StatusComplete }

// Graded reports whether the report earns a score and grade: complete, with no inconclusive check.
func (r *Report) Graded() bool { return r.Complete() && r.Inconclusive() == 0 }

// NotReached returns the checks that did not reach a verdict (skipped or stopped by an error).
func (r *Report) NotReached() []CheckResult {
	var out []CheckResult
	for _, c := range r.Checks {
		if !Reached(c.Status) {
			out = append(out, c)
		}
	}
	return out
}

// Inconclusive counts the checks whose verdict is inconclusive.
func (r *Report) Inconclusive() int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == StatusInconclusive {
			n++
		}
	}
	return n
}

// Headline says in one line whether the scan can be trusted as a whole: complete or not, and why.
func (r *Report) Headline() string {
	if !r.Complete() {
		var why []string
		if n := len(r.NotReached()); n > 0 {
			why = append(why, fmt.Sprintf("%d of %d checks did not run to a verdict", n, len(r.Checks)))
		}
		if n := len(r.RestoreFailures); n > 0 {
			why = append(why, fmt.Sprintf("%d identit%s left changed", n, map[bool]string{true: "y", false: "ies"}[n == 1]))
		}
		if r.Interrupted {
			why = append(why, "interrupted")
		}
		return "incomplete: " + strings.Join(why, "; ") + "; no grade"
	}
	if n := r.Inconclusive(); n > 0 {
		return fmt.Sprintf("complete, but %d of %d checks inconclusive; no grade until they decide", n, len(r.Checks))
	}
	return fmt.Sprintf("complete: %d of %d checks reached a verdict; score %d/100, grade %s", len(r.Checks), len(r.Checks), *r.Score, r.Grade)
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
