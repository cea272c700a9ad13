package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
)

// The JUnit XML that CI systems (Jenkins, GitLab, GitHub test reporters) read: testsuites holds one
// testsuite per report; a testcase is one check on one endpoint. It follows junit-10.xsd, the schema
// of Jenkins' xUnit plugin, which most readers follow: testsuites has no "skipped" count (each
// testsuite has its own).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure"`
	Error     *junitProblem `xml:"error"`
	Skipped   *junitProblem `xml:"skipped"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes reports as JUnit XML: one testsuite per report and, in it, one testcase per
// configured check and endpoint. A check that found nothing passes; a finding is a failure carrying
// its summary, window and remediation; a skipped check is <skipped>, one stopped by an error <error>.
func WriteJUnit(w io.Writer, reports []*Report) error {
	all := junitSuites{Name: "tocsin"}
	var total float64
	for _, r := range reports {
		s := junitSuiteOf(r)
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Errors += s.Errors
		total += r.DurationMS
		all.Suites = append(all.Suites, s)
	}
	all.Time = secondsAttr(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func junitSuiteOf(r *Report) junitSuite {
	s := junitSuite{
		Name:      "tocsin: " + r.Target.Name,
		Time:      secondsAttr(r.DurationMS),
		Timestamp: r.StartedAt.UTC().Format(time.RFC3339),
		Properties: []junitProperty{
			{"target", r.Target.Name},
			{"origins", strings.Join(r.Target.Origins, " ")},
			{"requests", fmt.Sprint(r.Requests)},
			{"status", r.Status},
			{"headline", r.Headline()},
		},
	}
	if r.Graded() {
		s.Properties = append(s.Properties, junitProperty{"score", fmt.Sprint(*r.Score)}, junitProperty{"grade", r.Grade})
	}
	// An identity left changed is an error of its own, listed first.
	for _, rf := range r.RestoreFailures {
		s.Cases = append(s.Cases, junitCase{Name: "restore identity " + rf.Identity, Classname: rf.Check, Time: secondsAttr(0),
			Error: &junitProblem{Message: fmt.Sprintf("identity %q was left %s: %s", rf.Identity, rf.State, rf.Error), Type: "restore-failed", Body: "Restore it by hand:\n" + rf.Manual}})
	}
	for _, l := range r.LeftOnTarget {
		s.Cases = append(s.Cases, junitCase{Name: "clean up " + l.Probe, Classname: l.Check, Time: secondsAttr(0),
			Error: &junitProblem{Message: "left on the target: " + l.What, Type: "left-on-target", Body: l.Reason}})
	}
	for _, c := range r.Checks {
		s.Cases = append(s.Cases, junitCases(c, r.Findings)...)
	}
	if r.Interrupted {
		s.Cases = append(s.Cases, junitCase{Name: "scan", Classname: "tocsin", Time: secondsAttr(0), Error: &junitProblem{Message: "the scan was interrupted", Type: "interrupted"}})
	}
	// A finding whose check is not in Checks (a hand-edited or partial report) still fails the suite.
	listed := map[string]bool{}
	for _, c := range r.Checks {
		listed[c.ID] = true
	}
	for _, f := range r.Findings {
		if !listed[f.Check] {
			s.Cases = append(s.Cases, junitCase{Name: f.Endpoint, Classname: f.Check, Time: secondsAttr(0), Failure: junitFailure([]finding.Finding{f})})
		}
	}
	for _, tc := range s.Cases {
		s.Tests++
		switch {
		case tc.Failure != nil:
			s.Failures++
		case tc.Error != nil:
			s.Errors++
		case tc.Skipped != nil:
			s.Skipped++
		}
	}
	return s
}

// junitCases makes a check's testcases: one per endpoint it probed (from the check result, and from
// its findings), or one for the whole check when the report names no endpoint for it.
func junitCases(c CheckResult, findings []finding.Finding) []junitCase {
	endpoints := append([]string(nil), c.Endpoints...)
	byEndpoint := map[string][]finding.Finding{}
	for _, f := range findings {
		if f.Check != c.ID {
			continue
		}
		if _, ok := byEndpoint[f.Endpoint]; !ok && !slices.Contains(endpoints, f.Endpoint) {
			endpoints = append(endpoints, f.Endpoint)
		}
		byEndpoint[f.Endpoint] = append(byEndpoint[f.Endpoint], f)
	}
	names := endpoints
	if len(names) == 0 {
		names = []string{c.ID}
	}
	// The check's time is spread over its testcases: the report does not time endpoints one by one.
	each := secondsAttr(c.DurationMS / float64(len(names)))
	var cases []junitCase
	for _, name := range names {
		tc := junitCase{Name: name, Classname: c.ID, Time: each}
		switch fs := byEndpoint[name]; {
		case len(fs) > 0:
			tc.Failure = junitFailure(fs)
		default:
			// Not tested (or not decided) is never a pass in a CI test view: an error, typed by why.
			// Not applicable (the flaw cannot exist there) is JUnit's skipped, which a CI view
			// shows as neither passed nor failed.
			switch status, reason := endpointStatus(c, name); status {
			case StatusPassed, StatusFailed:
			case StatusNotApplicable:
				tc.Skipped = &junitProblem{Message: reason, Type: status}
			default:
				tc.Error = &junitProblem{Message: reason, Type: status}
			}
		}
		cases = append(cases, tc)
	}
	return cases
}

// endpointStatus is the verdict the check reached on the probe at endpoint, as a check status, and
// its reason; the check's own when it recorded none for that probe.
func endpointStatus(c CheckResult, endpoint string) (string, string) {
	for _, x := range c.Experiments {
		if x.Endpoint != endpoint {
			continue
		}
		switch x.Verdict {
		case "finding":
			return StatusFailed, x.Reason
		case "passed":
			return StatusPassed, ""
		default: // inconclusive, not_applicable, error and skipped are spelled as the check statuses are
			return x.Verdict, x.Reason
		}
	}
	return c.Status, c.Reason
}

func junitFailure(fs []finding.Finding) *junitProblem {
	var b strings.Builder
	worst := fs[0].Severity
	for i, f := range fs {
		worst = max(worst, f.Severity)
		if i > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, "%s [%s] %s (identity %s)\n%s\n", f.ID, strings.ToUpper(f.Severity.String()), f.Title, f.Identity, f.Summary)
		if w := f.Window; w != nil {
			for _, ft := range windowFacts(w, f.Requests) {
				fmt.Fprintf(&b, "%s: %s\n", ft.Label, ft.Text)
			}
		}
		for _, fg := range f.Forged {
			fmt.Fprintf(&b, "Sent instead: %s: %s (%d)\n", fg.Variant, fg.Outcome, fg.Status)
		}
		if a := f.Authz; a != nil {
			fmt.Fprintf(&b, "Proof: %s\n", a.Line(f.Identity))
		}
		if f.SeverityReason != "" {
			fmt.Fprintf(&b, "Severity: %s\n", f.SeverityReason)
		}
		fmt.Fprintf(&b, "Remediation:\n%s\n", f.Remediation)
	}
	msg := fs[0].Summary
	if len(fs) > 1 {
		msg = fmt.Sprintf("%d findings; first: %s", len(fs), msg)
	}
	return &junitProblem{Message: msg, Type: worst.String(), Body: b.String()}
}

func secondsAttr(ms float64) string { return fmt.Sprintf("%.3f", ms/1000) }
