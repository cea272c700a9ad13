package scan

import (
	"testing"

	"github.com/tocsin/tocsin/internal/report"
)

// A check's status is its worst experiment's; not applicable is the best, so that a check is not
// applicable only when no probe tested anything, and passes when one did and the rest do not apply.
func TestCheckStatusNotApplicable(t *testing.T) {
	x := func(verdicts ...string) []report.Experiment {
		var out []report.Experiment
		for _, v := range verdicts {
			out = append(out, report.Experiment{Probe: "p", Verdict: v})
		}
		return out
	}
	id := func(s string) string { return s }
	for _, tc := range []struct {
		verdicts []string
		want     string
	}{
		{[]string{"not_applicable", "not_applicable"}, report.StatusNotApplicable},
		{[]string{"not_applicable", "passed"}, report.StatusPassed},
		{[]string{"passed", "not_applicable"}, report.StatusPassed},
		{[]string{"not_applicable", "inconclusive"}, report.StatusInconclusive},
		{[]string{"not_applicable", "finding"}, report.StatusFailed},
		{[]string{"not_applicable", "skipped"}, report.StatusSkipped},
		{[]string{"not_applicable", "error"}, report.StatusError},
	} {
		if got, _ := checkStatus(x(tc.verdicts...), 0, nil, id); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.verdicts, got, tc.want)
		}
	}
}
