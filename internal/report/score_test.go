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
	r.Score, r.Grade = -1, "?"
	r.Finish()
	if want, grade := score(r.Summary); r.Score != want || r.Grade != grade || r.Grade == "A" {
		t.Errorf("Finish left score %d grade %s; want %d %s for %+v", r.Score, r.Grade, want, grade, r.Summary)
	}
}
