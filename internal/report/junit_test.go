package report

import (
	"encoding/xml"
	"strings"
	"testing"
)

// The counts on each testsuite must agree with its testcases: CI systems show the counts and link the
// cases, and a mismatch reads as a broken report.
func TestJUnitCountsAndCases(t *testing.T) {
	reports := goldenReports()
	var doc junitSuites
	if err := xml.Unmarshal(render(t, "junit", reports), &doc); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	if len(doc.Suites) != len(reports) {
		t.Fatalf("%d testsuites for %d reports", len(doc.Suites), len(reports))
	}
	var total junitSuites
	for i, s := range doc.Suites {
		var tests, failures, errors, skipped int
		for _, tc := range s.Cases {
			tests++
			n := 0
			if tc.Failure != nil {
				failures++
				n++
			}
			if tc.Error != nil {
				errors++
				n++
			}
			if tc.Skipped != nil {
				skipped++
				n++
			}
			if n > 1 {
				t.Errorf("testcase %s/%s has %d outcomes", tc.Classname, tc.Name, n)
			}
		}
		if s.Tests != tests || s.Failures != failures || s.Errors != errors || s.Skipped != skipped {
			t.Errorf("suite %q says %d/%d/%d/%d (tests/failures/errors/skipped), its cases are %d/%d/%d/%d",
				s.Name, s.Tests, s.Failures, s.Errors, s.Skipped, tests, failures, errors, skipped)
		}
		total.Tests += s.Tests
		total.Failures += s.Failures
		total.Errors += s.Errors
		// Every finding is a failure that carries its summary, window and remediation.
		for _, f := range reports[i].Findings {
			found := false
			for _, tc := range s.Cases {
				if tc.Failure != nil && tc.Classname == f.Check && tc.Name == f.Endpoint {
					found = strings.Contains(tc.Failure.Body, f.Summary) && strings.Contains(tc.Failure.Body, f.Remediation) && strings.Contains(tc.Failure.Body, f.ID)
					if f.Window != nil && !strings.Contains(tc.Failure.Body, "Window:") {
						found = false
					}
				}
			}
			if !found {
				t.Errorf("finding %s (%s %s) has no failure carrying its summary, window and remediation", f.ID, f.Check, f.Endpoint)
			}
		}
	}
	if doc.Tests != total.Tests || doc.Failures != total.Failures || doc.Errors != total.Errors {
		t.Errorf("testsuites totals %+v do not add up to %+v", doc, total)
	}
	// The golden vulnerable report has one check of each status, a failed restore and an extra
	// endpoint that passed, and an authz check with a finding and a probe that passed (a shared
	// object). Not tested is never a pass or a skip in CI's eyes: the skipped, errored and
	// inconclusive checks and the restore are errors.
	want := map[string]int{"failure": 8, "error": 4, "skipped": 0, "passed": 2}
	got := map[string]int{}
	for _, tc := range doc.Suites[0].Cases {
		switch {
		case tc.Failure != nil:
			got["failure"]++
		case tc.Error != nil:
			got["error"]++
		case tc.Skipped != nil:
			got["skipped"]++
		default:
			got["passed"]++
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("vulnerable suite: %d %s testcases, want %d (all: %v)", got[k], k, v, got)
		}
	}
}
