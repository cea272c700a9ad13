package report

import (
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
)

// A check that does not apply (the identity's token is not a JWT) is a verdict: the scan stays
// complete and graded, CI's test view shows it skipped (neither passed nor failed), code scanning
// gets a note, and the text says why.
func TestNotApplicableKeepsTheScanComplete(t *testing.T) {
	why := `the token of identity "alice" is not a JWT: there is no JWT signature to defeat`
	r := &Report{
		Tool:      Tool{Name: "tocsin", Version: "test"},
		Target:    Target{Name: "api", Origins: []string{"http://127.0.0.1:8080"}},
		StartedAt: time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC),
		Checks: []CheckResult{
			{ID: "jwt/none-algorithm", Title: "JWT alg none accepted", Status: StatusNotApplicable, Reason: "whoami: " + why,
				Endpoints:   []string{"GET /whoami"},
				Experiments: []Experiment{{Probe: "whoami", Endpoint: "GET /whoami", Verdict: "not_applicable", Reason: why}}},
			{ID: "auth/missing", Title: "Missing authentication", Status: StatusPassed, Endpoints: []string{"GET /whoami"},
				Experiments: []Experiment{{Probe: "whoami", Endpoint: "GET /whoami", Verdict: "passed"}}},
		},
		Findings: []finding.Finding{},
	}
	r.Finish()
	if !r.Complete() || !r.Graded() || len(r.NotReached()) != 0 {
		t.Fatalf("status %s, graded %v, not reached %v; want complete and graded", r.Status, r.Graded(), r.NotReached())
	}
	var doc junitSuites
	if err := xml.Unmarshal(render(t, "junit", []*Report{r}), &doc); err != nil {
		t.Fatal(err)
	}
	for _, tc := range doc.Suites[0].Cases {
		na := tc.Classname == "jwt/none-algorithm"
		if (tc.Skipped != nil) != na || tc.Error != nil || tc.Failure != nil {
			t.Errorf("junit %s %s: skipped %v, error %v, failure %v", tc.Classname, tc.Name, tc.Skipped, tc.Error, tc.Failure)
		}
		if na && (tc.Skipped == nil || !strings.Contains(tc.Skipped.Message, "not a JWT")) {
			t.Errorf("junit skipped message %+v", tc.Skipped)
		}
	}
	var sarif struct {
		Runs []struct {
			Invocations []struct {
				ToolExecutionNotifications []struct {
					Level   string                `json:"level"`
					Message struct{ Text string } `json:"message"`
				} `json:"toolExecutionNotifications"`
				ExecutionSuccessful bool `json:"executionSuccessful"`
			} `json:"invocations"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(render(t, "sarif", []*Report{r}), &sarif); err != nil {
		t.Fatal(err)
	}
	notes := 0
	for _, n := range sarif.Runs[0].Invocations[0].ToolExecutionNotifications {
		if n.Level == "note" && strings.Contains(n.Message.Text, "jwt/none-algorithm not_applicable") {
			notes++
		}
		if n.Level == "error" {
			t.Errorf("sarif error notification %q", n.Message.Text)
		}
	}
	if notes != 1 {
		t.Errorf("%d sarif notes for the check that does not apply, want 1", notes)
	}
	text := string(render(t, "text", []*Report{r}))
	if !strings.Contains(text, "not_applicable  jwt/none-algorithm") || !strings.Contains(text, "not a JWT") || strings.Contains(text, "Not tested") {
		t.Errorf("text report:\n%s", text)
	}
}
