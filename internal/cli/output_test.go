package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/report"
)

// --quiet silences progress, never an alert: an identity left changed must reach the user.
func TestQuietStillAlerts(t *testing.T) {
	var errOut bytes.Buffer
	p := newProgress(&stdio{err: &errOut}, true)
	p.printer("")("measuring")
	p.alert("")(`RESTORE FAILED: identity "alice" was left downgraded`)
	if got := errOut.String(); strings.Contains(got, "measuring") || !strings.Contains(got, "warning: RESTORE FAILED") {
		t.Errorf("stderr with -q: %q; want the alert only", got)
	}
}

// The exit status table of docs/ci.md: proven findings at or above --fail-on win; then anything not
// tested or not decided is 2; only a complete, decided scan below the threshold is 0.
func TestExitCodes(t *testing.T) {
	mk := func(status string, sev ...finding.Severity) *report.Report {
		r := &report.Report{Checks: []report.CheckResult{{ID: "a/b", Status: status}}}
		for _, s := range sev {
			r.Findings = append(r.Findings, finding.Finding{Severity: s})
		}
		r.Finish()
		return r
	}
	for _, tc := range []struct {
		name   string
		failOn string
		r      *report.Report
		want   int
	}{
		{"complete, nothing", "low", mk(report.StatusPassed), ExitOK},
		{"complete, finding", "low", mk(report.StatusFailed, finding.Medium), ExitFindings},
		{"complete, finding below", "high", mk(report.StatusFailed, finding.Medium), ExitOK},
		{"incomplete, nothing", "low", mk(report.StatusError), ExitUsage},
		{"incomplete, finding wins", "low", mk(report.StatusError, finding.High), ExitFindings},
		{"incomplete, finding below", "critical", mk(report.StatusError, finding.High), ExitUsage},
		{"incomplete, none", "none", mk(report.StatusSkipped), ExitUsage},
		{"inconclusive", "low", mk(report.StatusInconclusive), ExitUsage},
		{"findings, none", "none", mk(report.StatusFailed, finding.Critical), ExitOK},
	} {
		o := outputFlags{failOn: tc.failOn}
		if got := o.exitCode(tc.r); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
}

// In a CI log each progress line says something new: a line that repeats the one before but for
// its attempt or pass counter is left out.
func TestProgressSaysSomethingNew(t *testing.T) {
	var errOut bytes.Buffer
	p := newProgress(&stdio{err: &errOut}, false)
	print := p.printer("")
	for _, msg := range []string{
		"toctou/inflight-revocation: attempt 1: revocation sent 1.823 ms from the action's release",
		"toctou/inflight-revocation: attempt 2: revocation sent 1.823 ms from the action's release",
		"toctou/inflight-revocation: attempt 3: revocation sent 2.100 ms from the action's release",
		"toctou/revoked-token-accepted: pass 2: GET /x still honoured 2.9 s after the revocation (1 replays)",
		"toctou/revoked-token-accepted: pass 2: GET /x still honoured 2.9 s after the revocation (2 replays)",
	} {
		print(msg)
	}
	got := errOut.String()
	if n := strings.Count(got, "\n"); n != 3 || strings.Contains(got, "attempt 2") || !strings.Contains(got, "attempt 3") {
		t.Errorf("progress log:\n%s\nwant 3 lines: attempts 1 and 3 and one pass line", got)
	}
}
