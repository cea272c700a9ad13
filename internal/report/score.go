package report

// The score starts at 100 and loses points per finding by severity. Each severity's total loss is
// capped so that many findings of a lower severity never rate a scan below one finding of a higher
// one would: however many low findings, the grade stays at B or better; medium findings alone never
// make an F. docs/score.md explains the choice and must change with these numbers.
var scoreRule = []struct {
	count func(Summary) int
	each  int // points lost per finding
	cap   int // most points all findings of this severity can lose; 0 means no cap
}{
	{func(s Summary) int { return s.Critical }, 65, 0},
	{func(s Summary) int { return s.High }, 30, 90},
	{func(s Summary) int { return s.Medium }, 15, 45},
	{func(s Summary) int { return s.Low }, 5, 20},
	// Info findings cost nothing: they are context, not flaws.
}

// gradeBands maps the lowest score of each grade, best first.
var gradeBands = []struct {
	min   int
	grade string
}{{90, "A"}, {75, "B"}, {60, "C"}, {40, "D"}, {0, "F"}}

// score rates a scan from its finding counts.
func score(s Summary) (int, string) {
	points := 100
	for _, r := range scoreRule {
		loss := r.count(s) * r.each
		if r.cap > 0 && loss > r.cap {
			loss = r.cap
		}
		points -= loss
	}
	points = max(points, 0)
	for _, b := range gradeBands {
		if points >= b.min {
			return points, b.grade
		}
	}
	return points, "F"
}
