package check

import (
	"testing"

	"github.com/tocsin/tocsin/internal/finding"
)

// The table in docs/severity.md, row by row, at the edges.
func TestStalenessSeverity(t *testing.T) {
	maxWindow := &finding.Reach{LastReplayMS: 60000, StoppedBy: finding.StoppedMaxWindow}
	for _, tc := range []struct {
		w           finding.Window
		destructive bool
		want        finding.Severity
	}{
		{finding.Window{Cause: finding.CauseNever, Never: true, Reach: maxWindow}, false, finding.High},
		{finding.Window{Cause: finding.CauseNever, Never: true, Reach: maxWindow}, true, finding.Critical},
		// Replays stopped by the budget claim only as far as they reached.
		{finding.Window{Cause: finding.CauseNever, Never: true, WorstCaseMS: 44800, Reach: &finding.Reach{LastReplayMS: 44800, StoppedBy: finding.StoppedBudget}}, false, finding.Medium},
		{finding.Window{Cause: finding.CauseNever, Never: true, WorstCaseMS: 800, Reach: &finding.Reach{LastReplayMS: 800, StoppedBy: finding.StoppedDeadline}}, true, finding.Medium},
		{finding.Window{Cause: finding.CauseLifetime, WorstCaseMS: 1000}, false, finding.Medium},
		{finding.Window{Cause: finding.CauseExpiry, WorstCaseMS: 45000}, true, finding.High},
		{finding.Window{Cause: finding.CauseDelay, WorstCaseMS: 999.9}, false, finding.Low},
		{finding.Window{Cause: finding.CauseLifetime, WorstCaseMS: 3}, true, finding.Medium},
		// A periodic refresh seen at a short phase is rated by its period, not by the short window.
		{finding.Window{Cause: finding.CausePeriodic, FirstRejectedMS: 120, WorstCaseMS: 3000}, false, finding.Medium},
	} {
		got, why := stalenessSeverity(&tc.w, tc.destructive)
		if got != tc.want || why == "" {
			t.Errorf("window %+v destructive=%v: %s (%q), want %s", tc.w, tc.destructive, got, why, tc.want)
		}
	}
}
