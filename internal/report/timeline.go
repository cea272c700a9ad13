package report

import (
	"fmt"
	"math"
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
	labelRowH    = 15.0
	maxLabelRows = 5
	// maxLabelRunes keeps a label to about a third of the drawing.
	maxLabelRunes = 44
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
}

type svgSegment struct {
	X1, X2 float64
	Ticks  []svgText
}

type svgBreak struct {
	X     float64
	Label string
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

// svgMark is a labelled event: a line from its label down to the axis.
type svgMark struct {
	X, LabelX, LabelY float64
	Anchor            string
	Label             string
	Class             string // colour by kind; unknown kinds get "other"
	Title             string // hover text
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
}

// buildTimeline lays out a finding's evidence, or returns nil when there is nothing to draw.
func buildTimeline(f finding.Finding) *svgTimeline {
	if len(f.Evidence) == 0 {
		return nil
	}
	w := f.Window
	times := []float64{0}
	for _, e := range f.Evidence {
		times = append(times, e.AtMS)
	}
	if w != nil {
		times = append(times, w.LastAcceptedMS)
		if !w.Never {
			times = append(times, w.FirstRejectedMS)
		}
	}
	scale := newSegmentedScale(times)

	// Labels above the axis, placed in the first row where they do not overlap the previous label.
	type placed struct{ start, end float64 }
	var rows [maxLabelRows][]placed
	var marks []svgMark
	var replays []svgReplay
	for _, e := range f.Evidence {
		x := scale.x(e.AtMS)
		if e.Kind == finding.EventReplay {
			outcome := "inconclusive"
			title := fmt.Sprintf("replay at %s", fmtMS(e.AtMS))
			if e.HTTP != nil {
				if e.HTTP.Outcome != "" {
					outcome = e.HTTP.Outcome
				}
				title = fmt.Sprintf("replay at %s: %s %d %s", fmtMS(e.AtMS), e.HTTP.Method, e.HTTP.Status, outcome)
			}
			replays = append(replays, svgReplay{X: x, Class: outcome, Title: title})
			continue
		}
		kind, known := markKinds[e.Kind]
		label := kind.label
		switch {
		case e.Kind == finding.EventChangeSent && w != nil:
			label = w.Change + " sent"
		case e.Kind == finding.EventChangeSent:
			label = "change sent"
		case e.Kind == finding.EventNote:
			label, kind.class = e.Detail, "other"
		case !known:
			label, kind.class = e.Kind, "other"
		}
		title := strings.TrimSpace(fmt.Sprintf("%s at %s: %s", e.Kind, fmtMS(e.AtMS), e.Detail))
		if e.HTTP != nil {
			title += fmt.Sprintf(" (%s %s -> %d)", e.HTTP.Method, e.HTTP.URL, e.HTTP.Status)
		}
		// Notes can be long: the mark's hover text and the evidence table keep the whole of it.
		if r := []rune(label); len(r) > maxLabelRunes {
			label = string(r[:maxLabelRunes-1]) + "…"
		}
		// About 6 px per character at the 11 px label size. A label that would run off the right edge
		// goes to the left of its mark instead.
		width := 6.2*float64(len([]rune(label))) + 8
		start, labelX, anchor := x, x+3, "start"
		if x+width > svgWidth-4 && x-width >= 0 {
			start, labelX, anchor = x-width, x-3, "end"
		}
		// Many events at almost the same time (a race's copies) would pile their labels up: once every
		// row is taken there, a mark keeps only its hover text.
		row := -1
		for r := range rows {
			if n := len(rows[r]); n == 0 || rows[r][n-1].end < start {
				row = r
				break
			}
		}
		m := svgMark{X: x, LabelX: labelX, Anchor: anchor, Class: kind.class, Title: title}
		if row >= 0 {
			rows[row] = append(rows[row], placed{start, start + width})
			m.Label, m.LabelY = label, float64(row)
		}
		marks = append(marks, m)
	}
	used := 0
	for r := range rows {
		if len(rows[r]) > 0 {
			used = r + 1
		}
	}

	t := &svgTimeline{Width: svgWidth}
	t.AxisY = 14 + float64(used)*labelRowH + 10
	for i := range marks {
		// Row 0 sits nearest the axis; an unlabelled mark's line stops just above the axis.
		marks[i].LabelY = t.AxisY - 10 - marks[i].LabelY*labelRowH
		if marks[i].Label == "" {
			marks[i].LabelY = t.AxisY - 10
		}
	}
	replayY := t.AxisY + 30
	for i := range replays {
		replays[i].Y = replayY
	}
	t.Marks, t.Replays = marks, replays

	for i, s := range scale.segments {
		seg := svgSegment{X1: s.x1, X2: s.x2}
		seg.Ticks = append(seg.Ticks, svgText{X: scale.x(s.lo), Y: t.AxisY + 14, Text: fmtMS(s.lo), Anchor: "start"})
		if s.hi == s.lo {
			seg.Ticks[0].Anchor = "middle"
		} else {
			seg.Ticks = append(seg.Ticks, svgText{X: scale.x(s.hi), Y: t.AxisY + 14, Text: fmtMS(s.hi), Anchor: "end"})
		}
		t.Segments = append(t.Segments, seg)
		if i > 0 {
			prev := scale.segments[i-1]
			t.Breaks = append(t.Breaks, svgBreak{X: (prev.x2 + s.x1) / 2, Label: "+" + fmtMS(s.lo-prev.hi)})
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
		t.LegendY = t.AxisY + 36 // no replay lane, no bracket: nothing to leave room for
	}
	t.Height = t.LegendY + 12
	return t
}

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
