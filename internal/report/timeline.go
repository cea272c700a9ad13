package report

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/tocsin/tocsin/internal/finding"
)

// The HTML report draws each finding's evidence as an SVG timeline. Evidence spans very different
// scales at once: the token, cache fill and change sit a fraction of a millisecond before the
// acknowledgement, the replays seconds after it. A single linear axis would pile them up, so the axis
// is cut into segments at the long quiet gaps: each segment is linear, and each cut is drawn as a
// break labelled with the time it skips.

const (
	svgWidth     = 920.0
	svgMarginX   = 24.0
	breakWidth   = 72.0
	labelRowH    = 14.0
	maxLabelRows = 8
	// labelLineRunes is where a long label wraps onto another line, at a space.
	labelLineRunes = 40
	// charWidth is about how wide a character of the 11 px label font is.
	charWidth = 6.2
)

// svgTimeline is what the template draws; every coordinate is computed here.
type svgTimeline struct {
	Width, Height float64
	AxisY         float64
	Segments      []svgSegment
	Breaks        []svgBreak
	Shade         *svgRect
	ShadeLabel    *svgText
	Bracket       *svgBracket
	Marks         []svgMark
	Replays       []svgReplay
	LegendY       float64
	// Notes are the labels that found no room in the drawing: their marks are numbered and the
	// notes listed under it, so that no label is cut.
	Notes []string
}

type svgSegment struct {
	X1, X2 float64
	Ticks  []svgText
}

type svgBreak struct {
	X, LabelY float64
	Label     string
}

type svgRect struct{ X, Y, W, H float64 }

type svgText struct {
	X, Y   float64
	Text   string
	Anchor string // SVG text-anchor: start, middle or end
}

type svgBracket struct {
	X1, X2, Y float64
	Label     svgText
}

// svgMark is a labelled event: a line from its label down to the axis. Events of one kind in a row
// with the same label but for a number (a race's copies) are one mark with a count.
type svgMark struct {
	X, LabelX float64
	TopY      float64 // where the mark's line starts, just under its label
	Anchor    string
	Lines     []svgLine // the label, wrapped; none when it is a note under the drawing
	Class     string    // colour by kind; unknown kinds get "other"
	Title     string    // hover text
}

type svgLine struct {
	Y    float64
	Text string
}

type svgReplay struct {
	X, Y  float64
	Class string // accepted, rejected, inconclusive
	Title string
}

// markKinds names the event kinds the timeline knows; any other kind is drawn as a grey mark labelled
// with its own name, so a new check's events show up before this table learns them.
var markKinds = map[string]struct{ label, class string }{
	finding.EventToken:       {"token issued", "token"},
	finding.EventFill:        {"cache fill", "fill"},
	finding.EventChangeSent:  {"", "change"}, // labelled from the window: "revocation sent"
	finding.EventChangeAcked: {"acknowledged (t=0)", "ack"},
	finding.EventRestore:     {"restored", "other"},
	"setup":                  {"setup", "fill"},
	"action-sent":            {"action sent", "action"},
	"action-answered":        {"action answered", "action"},
	"verify":                 {"verify", "verify"},
	finding.EventAccess:      {"access", "action"},
}

// buildTimeline lays out a finding's evidence, or returns nil when there is nothing to draw.
func buildTimeline(f finding.Finding) *svgTimeline {
	if len(f.Evidence) == 0 {
		return nil
	}
	// A report read back from JSON may be in any order; the drawing goes by time.
	events := slices.Clone(f.Evidence)
	slices.SortStableFunc(events, func(a, b finding.Event) int { return cmp.Compare(a.AtMS, b.AtMS) })
	w := f.Window
	times := []float64{0}
	for _, e := range events {
		times = append(times, e.AtMS)
	}
	if w != nil {
		times = append(times, w.LastAcceptedMS)
		if !w.Never {
			times = append(times, w.FirstRejectedMS)
		}
	}
	scale := newSegmentedScale(times)

	var replays []svgReplay
	var marks []pendingMark
	for _, e := range events {
		x := scale.x(e.AtMS)
		if e.Kind == finding.EventReplay {
			replays = append(replays, replayDot(e, x))
			continue
		}
		label, class := markLabel(e, w)
		title := strings.TrimSpace(fmt.Sprintf("%s at %s: %s", e.Kind, fmtMS(e.AtMS), e.Detail))
		if e.HTTP != nil {
			title += fmt.Sprintf(" (%s %s -> %d)", e.HTTP.Method, e.HTTP.URL, e.HTTP.Status)
		}
		shape := e.Kind + "\x00" + digits.ReplaceAllString(label, "#")
		// A numbered series (race copy 1, 2, ...) is one mark however the axis spreads it; other
		// repeats only when they would be drawn on top of each other.
		if n := len(marks); n > 0 && marks[n-1].shape == shape && (digits.MatchString(label) || x-marks[n-1].lastX <= 4) {
			last := &marks[n-1]
			last.count++
			last.lastAt, last.lastX = e.AtMS, x
			continue
		}
		marks = append(marks, pendingMark{svgMark: svgMark{X: x, Class: class, Title: title}, label: label, shape: shape, count: 1, firstAt: e.AtMS, lastAt: e.AtMS, lastX: x})
	}

	t := &svgTimeline{Width: svgWidth}
	rows := placeLabels(marks, &t.Notes)
	t.AxisY = 14 + float64(rows)*labelRowH + 10
	for i := range marks {
		m := &marks[i]
		m.TopY = t.AxisY - 10
		for j := range m.Lines {
			// Row 0 sits nearest the axis; a label's first line is its highest row.
			m.Lines[j].Y = t.AxisY - 10 - float64(m.row+len(m.Lines)-1-j)*labelRowH
		}
		if len(m.Lines) > 0 {
			m.TopY = m.Lines[len(m.Lines)-1].Y + 3
		}
		t.Marks = append(t.Marks, m.svgMark)
	}
	breakY := t.AxisY + 28
	replayY := t.AxisY + 48
	for i := range replays {
		replays[i].Y = replayY
	}
	t.Replays = replays

	for i, s := range scale.segments {
		seg := svgSegment{X1: s.x1, X2: s.x2}
		lo, hi := fmtMS(s.lo), fmtMS(s.hi)
		switch {
		case s.hi == s.lo:
			seg.Ticks = []svgText{{X: scale.x(s.lo), Y: t.AxisY + 14, Text: lo, Anchor: "middle"}}
		case textWidth(lo)+textWidth(hi)+8 > s.x2-s.x1:
			// Too narrow for a tick at each end: one label for the span, under its middle.
			seg.Ticks = []svgText{{X: (s.x1 + s.x2) / 2, Y: t.AxisY + 14, Text: strings.TrimSuffix(lo, " ms") + " to " + hi, Anchor: "middle"}}
		default:
			seg.Ticks = []svgText{
				{X: scale.x(s.lo), Y: t.AxisY + 14, Text: lo, Anchor: "start"},
				{X: scale.x(s.hi), Y: t.AxisY + 14, Text: hi, Anchor: "end"},
			}
		}
		t.Segments = append(t.Segments, seg)
		if i > 0 {
			// Under the ticks, so that a cut never covers the time beside it.
			prev := scale.segments[i-1]
			t.Breaks = append(t.Breaks, svgBreak{X: (prev.x2 + s.x1) / 2, LabelY: breakY, Label: "+" + fmtMS(s.lo-prev.hi)})
		}
	}

	bracketY := replayY + 16
	if w != nil {
		x0, xa := scale.x(0), scale.x(w.LastAcceptedMS)
		t.Shade = &svgRect{X: x0, Y: t.AxisY - 6, W: math.Max(xa-x0, 1), H: replayY - t.AxisY + 14}
		// The legend explains the shade; a window that never closed has no bracket, so its end is said
		// in words where the bracket would be.
		if w.Never {
			t.ShadeLabel = &svgText{X: xa, Y: bracketY + 14, Text: fmt.Sprintf("still honoured when tocsin stopped at %s", fmtMS(w.LastAcceptedMS)), Anchor: "end"}
		} else {
			xr := scale.x(w.FirstRejectedMS)
			t.Bracket = &svgBracket{X1: xa, X2: math.Max(xr, xa+2), Y: bracketY,
				Label: svgText{X: xr, Y: bracketY + 14, Text: fmt.Sprintf("window ends in [%s, %s]", fmtMS(w.LastAcceptedMS), fmtMS(w.FirstRejectedMS)), Anchor: "end"}}
		}
	}
	t.LegendY = bracketY + 36
	if len(replays) == 0 && w == nil {
		t.LegendY = breakY + 24 // no replay lane, no bracket: nothing to leave room for
	}
	t.Height = t.LegendY + 12
	return t
}

// pendingMark is a mark while the labels are laid out.
type pendingMark struct {
	svgMark
	label           string
	shape           string // kind and label with numbers masked: marks of one shape in a row merge
	count           int
	firstAt, lastAt float64
	lastX           float64
	row             int
	note            string // the label, when it found no room in the drawing
}

var digits = regexp.MustCompile(`\d+`)

// markLabel names an event on the drawing, and the colour class of its kind.
func markLabel(e finding.Event, w *finding.Window) (label, class string) {
	kind, known := markKinds[e.Kind]
	label, class = kind.label, kind.class
	switch {
	case e.Kind == finding.EventChangeSent && w != nil:
		label = w.Change + " sent"
	case e.Kind == finding.EventChangeSent:
		label = "change sent"
	case e.Kind == finding.EventNote || e.Kind == finding.EventControl:
		label, class = e.Detail, "other"
	case e.Kind == finding.EventForged:
		label, class = e.Detail, "action"
	case !known:
		label, class = e.Kind, "other"
	}
	return label, class
}

func replayDot(e finding.Event, x float64) svgReplay {
	outcome := "inconclusive"
	title := fmt.Sprintf("replay at %s", fmtMS(e.AtMS))
	if e.HTTP != nil {
		if e.HTTP.Outcome != "" {
			outcome = e.HTTP.Outcome
		}
		title = fmt.Sprintf("replay at %s: %s %d %s", fmtMS(e.AtMS), e.HTTP.Method, e.HTTP.Status, outcome)
	}
	return svgReplay{X: x, Class: outcome, Title: title}
}

// placeLabels gives each mark's label a row above the axis where it overlaps no other label and no
// other mark's line, wrapping long labels over several rows. A label that finds no room becomes a
// numbered note under the drawing. It returns how many rows are used.
func placeLabels(marks []pendingMark, notes *[]string) int {
	type placed struct {
		lo, hi   int // rows
		from, to float64
		x        float64
	}
	var done []placed
	free := func(lo, hi int, from, to, x float64) bool {
		for _, p := range done {
			rowsMeet := lo <= p.hi && p.lo <= hi
			if rowsMeet && from < p.to+6 && p.from < to+6 {
				return false // the labels overlap
			}
			// A mark's line runs down past the labels below it: it must miss their text, which
			// starts 3 px beside a mark (so marks a pixel or two apart can stack their labels).
			if p.lo > hi && from-1 < p.x && p.x < to+1 {
				return false // a higher label's line would cross this one
			}
			if lo > p.hi && p.from-1 < x && x < p.to+1 {
				return false // this label's line would cross a lower one
			}
		}
		return true
	}
	place := func(m *pendingMark, text string) bool {
		lines := wrapLabel(text)
		width := 0.0
		for _, l := range lines {
			width = math.Max(width, textWidth(l))
		}
		// Right of the mark, else left of it; kept inside the drawing.
		right := math.Min(m.X+3, svgWidth-4-width)
		left := math.Max(m.X-3-width, 2)
		// Every row to the right first: a label to the left would cover marks not placed yet.
		for _, from := range []float64{right, left} {
			for row := 0; row+len(lines) <= maxLabelRows; row++ {
				if !free(row, row+len(lines)-1, from, from+width, m.X) {
					continue
				}
				done = append(done, placed{lo: row, hi: row + len(lines) - 1, from: from, to: from + width, x: m.X})
				m.row, m.Anchor, m.LabelX = row, "start", from
				m.Lines = make([]svgLine, len(lines))
				for i, l := range lines {
					m.Lines[i].Text = l
				}
				return true
			}
		}
		return false
	}
	// Right to left: a mark's label then sits above those of the marks to its right, and its line
	// runs down to the left of their text, so that marks close together stack like stairs.
	for i := len(marks) - 1; i >= 0; i-- {
		m := &marks[i]
		label := m.label
		if m.count > 1 {
			label = strings.TrimSpace(digits.ReplaceAllString(m.label, "")) + fmt.Sprintf(" (×%d)", m.count)
			label = strings.ReplaceAll(label, " :", ":")
			m.Title = fmt.Sprintf("%d events from %s to %s: %s", m.count, fmtMS(m.firstAt), fmtMS(m.lastAt), m.Title)
		}
		if place(m, label) {
			continue
		}
		m.note = label
	}
	// Labels with no room are listed under the drawing, numbered in time order.
	for i := range marks {
		m := &marks[i]
		if m.note == "" {
			continue
		}
		*notes = append(*notes, fmt.Sprintf("at %s: %s", fmtMS(m.firstAt), m.note))
		if !place(m, fmt.Sprintf("(%d)", len(*notes))) {
			m.Lines = nil // crowded beyond any row: the note and the hover text still say it
		}
	}
	rows := 0
	for _, p := range done {
		rows = max(rows, p.hi+1)
	}
	return rows
}

// wrapLabel folds a label at spaces into lines of about labelLineRunes characters.
func wrapLabel(label string) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(label) {
		if line != "" && len([]rune(line))+1+len([]rune(word)) > labelLineRunes {
			lines = append(lines, line)
			line = word
			continue
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" || len(lines) == 0 {
		lines = append(lines, line)
	}
	return lines
}

func textWidth(s string) float64 { return charWidth*float64(len([]rune(s))) + 8 }

// segmentedScale maps milliseconds to x, cutting the axis at long gaps.
type segmentedScale struct{ segments []scaleSegment }

type scaleSegment struct {
	lo, hi float64 // milliseconds
	x1, x2 float64 // pixels
}

func newSegmentedScale(times []float64) *segmentedScale {
	times = slices.Clone(times)
	slices.Sort(times)
	times = slices.Compact(times)
	span := times[len(times)-1] - times[0]
	// A gap longer than a fifth of everything shown is a cut: what happens on either side of it would
	// otherwise shrink to a few pixels.
	type cluster struct {
		lo, hi float64
		n      int
	}
	clusters := []cluster{{times[0], times[0], 1}}
	for _, t := range times[1:] {
		c := &clusters[len(clusters)-1]
		if span > 0 && t-c.hi > span/5 {
			clusters = append(clusters, cluster{t, t, 1})
			continue
		}
		c.hi, c.n = t, c.n+1
	}
	// Each segment's width follows how much happens in it, with a floor so that a lone event still has
	// room for its tick labels.
	avail := svgWidth - 2*svgMarginX - breakWidth*float64(len(clusters)-1)
	weights, total := make([]float64, len(clusters)), 0.0
	for i, c := range clusters {
		weights[i] = 2 + math.Sqrt(float64(c.n))
		total += weights[i]
	}
	s := &segmentedScale{}
	x := svgMarginX
	for i, c := range clusters {
		width := math.Max(avail*weights[i]/total, 90)
		s.segments = append(s.segments, scaleSegment{lo: c.lo, hi: c.hi, x1: x, x2: x + width})
		x += width + breakWidth
	}
	// The floors may overflow: squeeze everything back into the drawing.
	if end := x - breakWidth; end > svgWidth-svgMarginX {
		k := (svgWidth - 2*svgMarginX) / (end - svgMarginX)
		for i := range s.segments {
			s.segments[i].x1 = svgMarginX + (s.segments[i].x1-svgMarginX)*k
			s.segments[i].x2 = svgMarginX + (s.segments[i].x2-svgMarginX)*k
		}
	}
	return s
}

// x places t; a time inside a break (none of the inputs) goes to the nearer edge.
func (s *segmentedScale) x(t float64) float64 {
	for i, seg := range s.segments {
		if t <= seg.hi || i == len(s.segments)-1 {
			if t < seg.lo {
				return seg.x1
			}
			if seg.hi == seg.lo {
				return (seg.x1 + seg.x2) / 2
			}
			// A little padding inside the segment so that marks do not sit on the break.
			pad := (seg.x2 - seg.x1) * 0.04
			return seg.x1 + pad + (t-seg.lo)/(seg.hi-seg.lo)*(seg.x2-seg.x1-2*pad)
		}
	}
	return s.segments[len(s.segments)-1].x2
}

// fmtMS prints a millisecond figure with one decimal, or as seconds past ten of them.
func fmtMS(v float64) string {
	if math.Abs(v) >= 10000 {
		return fmt.Sprintf("%.2f s", v/1000)
	}
	return fmt.Sprintf("%.1f ms", v)
}
