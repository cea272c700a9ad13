package report

import "testing"

// The cases pin the rule docs/score.md states; change both together.
func TestScore(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     Summary
		score int
		grade string
	}{
		{"no findings", Summary{}, 100, "A"},
		{"info costs nothing", Summary{Info: 7}, 100, "A"},
		{"one low", Summary{Low: 1}, 95, "A"},
		{"lows are capped at B", Summary{Low: 50}, 80, "B"},
		{"one medium", Summary{Medium: 1}, 85, "B"},
		{"the demo: two medium", Summary{Medium: 2}, 70, "C"},
		{"mediums alone never make an F", Summary{Medium: 40}, 55, "D"},
		{"one high", Summary{High: 1}, 70, "C"},
		{"two high", Summary{High: 2}, 40, "D"},
		{"highs capped", Summary{High: 9}, 10, "F"},
		{"one critical is an F", Summary{Critical: 1}, 35, "F"},
		{"floor at zero", Summary{Critical: 2, High: 3}, 0, "F"},
		{"mixed", Summary{High: 1, Medium: 1, Low: 1}, 50, "D"},
		{"band edge A", Summary{Low: 2}, 90, "A"},
		{"band edge B", Summary{Medium: 1, Low: 2}, 75, "B"},
		{"band edge C", Summary{Medium: 1, Low: 5}, 65, "C"},
		{"band edge D", Summary{High: 2}, 40, "D"},
	} {
		score, grade := score(tc.s)
		if score != tc.score || grade != tc.grade {
			t.Errorf("%s: %+v scored %d (%s), want %d (%s)", tc.name, tc.s, score, grade, tc.score, tc.grade)
		}
	}
}

func TestFinishFillsScore(t *testing.T) {
	r := goldenReports()[0]
	// Make it complete and decided: only then does it earn a grade.
	r.Checks, r.RestoreFailures = r.Checks[:3], nil
	bogus := -1
	r.Score, r.Grade = &bogus, "?"
	r.Finish()
	if want, grade := score(r.Summary); r.Score == nil || *r.Score != want || r.Grade != grade || r.Grade == "A" {
		t.Errorf("Finish left score %v grade %s; want %d %s for %+v", r.Score, r.Grade, want, grade, r.Summary)
	}
}

// A scan that did not test everything, or could not decide, is never graded, and says why.
func TestUngradedReports(t *testing.T) {
	base := func() *Report {
		r := goldenReports()[1] // the fixed lab: complete, grade A
		r.Finish()
		return r
	}
	if r := base(); !r.Graded() || r.Grade != "A" || r.Status != StatusComplete {
		t.Fatalf("fixed golden report: status %s grade %q; want complete A", r.Status, r.Grade)
	}
	for _, tc := range []struct {
		name     string
		change   func(*Report)
		status   string
		headline string
	}{
		{"check errored", func(r *Report) { r.Checks[0].Status, r.Checks[0].Reason = StatusError, "connection refused" }, StatusIncomplete, "incomplete: 1 of 2 checks did not run to a verdict; no grade"},
		{"check skipped", func(r *Report) { r.Checks[1].Status = StatusSkipped }, StatusIncomplete, "incomplete: 1 of 2 checks did not run to a verdict; no grade"},
		{"interrupted", func(r *Report) { r.Interrupted = true }, StatusIncomplete, "incomplete: interrupted; no grade"},
		{"restore failed", func(r *Report) { r.RestoreFailures = []RestoreFailure{{Identity: "alice"}} }, StatusIncomplete, "incomplete: 1 identity left changed; no grade"},
		{"inconclusive", func(r *Report) { r.Checks[0].Status = StatusInconclusive }, StatusComplete, "complete, but 1 of 2 checks inconclusive; no grade until they decide"},
	} {
		r := base()
		tc.change(r)
		r.Finish()
		if r.Status != tc.status || r.Graded() || r.Score != nil || r.Grade != "" || r.Headline() != tc.headline {
			t.Errorf("%s: status %s graded %v score %v grade %q headline %q; want %s, ungraded, %q", tc.name, r.Status, r.Graded(), r.Score, r.Grade, r.Headline(), tc.status, tc.headline)
		}
	}
}
