package check

import (
	"testing"

	"github.com/tocsin/tocsin/internal/finding"
)

// The table in docs/severity.md, row by row, at the edges.
func TestStalenessSeverity(t *testing.T) {
	for _, tc := range []struct {
		w           finding.Window
		destructive bool
		want        finding.Severity
	}{
		{finding.Window{Never: true, MaxWaitMS: 60000}, false, finding.High},
		{finding.Window{Never: true, MaxWaitMS: 60000}, true, finding.Critical},
		{finding.Window{FirstRejectedMS: 1000}, false, finding.Medium},
		{finding.Window{FirstRejectedMS: 45000}, true, finding.High},
		{finding.Window{FirstRejectedMS: 999.9}, false, finding.Low},
		{finding.Window{FirstRejectedMS: 3}, true, finding.Medium},
	} {
		got, why := stalenessSeverity(&tc.w, tc.destructive)
		if got != tc.want || why == "" {
			t.Errorf("window %+v destructive=%v: %s (%q), want %s", tc.w, tc.destructive, got, why, tc.want)
		}
	}
}
