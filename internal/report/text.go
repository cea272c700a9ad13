package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/tocsin/tocsin/internal/finding"
)

var severityColor = map[finding.Severity]string{
	finding.Critical: "\x1b[1;35m",
	finding.High:     "\x1b[1;31m",
	finding.Medium:   "\x1b[33m",
	finding.Low:      "\x1b[36m",
	finding.Info:     "\x1b[2m",
}

const colorReset = "\x1b[0m"

// WriteText writes a summary for a terminal: findings first, most severe first, then every check's
// status.
func WriteText(w io.Writer, r *Report, opts Options) error {
	p := &printer{w: w}
	sev := func(s finding.Severity) string {
		label := "[" + strings.ToUpper(s.String()) + "]"
		if opts.Color {
			return severityColor[s] + label + colorReset
		}
		return label
	}
	p.f("tocsin %s: scan of %s (%s)\n", r.Tool.Version, r.Target.Name, strings.Join(r.Target.Origins, ", "))
	p.f("started %s, took %s, %d requests\n", r.StartedAt.UTC().Format("2006-01-02 15:04:05 MST"), seconds(r.DurationMS), r.Requests)
	headline := r.Headline()
	if !r.Graded() {
		headline = strings.ToUpper(headline[:1]) + headline[1:]
		if opts.Color {
			headline = "\x1b[1;33m" + headline + colorReset
		}
	}
	p.f("%s\n", headline)
	// What makes the scan untrustworthy as a whole comes before any finding.
	for _, rf := range r.RestoreFailures {
		p.f("\n")
		p.wrap("", fmt.Sprintf("RESTORE FAILED: identity %q was left %s by %s (%s). Restore it by hand (secrets appear as labels; take them from your config):", rf.Identity, rf.State, rf.Check, rf.Error))
		p.f("    %s\n", rf.Manual)
	}
	if len(r.LeftOnTarget) > 0 {
		p.f("\nLeft on the target (remove by hand):\n")
		for _, l := range r.LeftOnTarget {
			p.wrap("  ", fmt.Sprintf("%s, by %s (probe %s): %s", l.What, l.Check, l.Probe, l.Reason))
		}
	}
	if nr := r.NotReached(); len(nr) > 0 {
		p.f("\nNot tested, so not a pass:\n")
		for _, c := range nr {
			p.wrap("  ", fmt.Sprintf("%s %s: %s", c.Status, c.ID, c.Reason))
		}
	}
	if r.Inconclusive() > 0 {
		p.f("\nInconclusive (tested, but the evidence cannot decide):\n")
		for _, c := range r.Checks {
			if c.Status == StatusInconclusive {
				p.wrap("  ", c.ID+": "+c.Reason)
			}
		}
	}
	p.f("\n")

	if len(r.Findings) == 0 {
		if r.Graded() {
			p.f("No findings.\n")
		} else {
			p.f("No findings proven in what was tested.\n")
		}
	} else {
		p.f("%d finding%s: %s\n", len(r.Findings), plural(len(r.Findings)), r.Summary.counts())
	}
	for _, f := range r.Findings {
		p.f("\n%s %s  (%s, %s)\n", sev(f.Severity), f.Title, f.Check, f.ID)
		p.f("  endpoint:  %s   identity: %s\n", f.Endpoint, f.Identity)
		p.wrap("  ", f.Summary)
		if w := f.Window; w != nil {
			for _, ft := range windowFacts(w, f.Requests) {
				p.wrapAfter(fmt.Sprintf("  %-11s", strings.ToLower(ft.Label)+":"), "    ", ft.Text)
			}
		}
		if in := f.Inflight; in != nil {
			p.f("  in flight: revocation acknowledged %s after the action was sent; a read at %s still found the resource;\n", ms(in.AckMS), ms(in.VerifyMS))
			p.f("             the action answered at %s (usual latency %s); attempts %d\n", ms(in.AnsweredMS), ms(in.ActionLatencyMS), in.Attempts)
		}
		if len(f.Forged) > 0 {
			p.f("  sent in place of the token:\n")
			for _, fg := range f.Forged {
				p.wrap("    ", fmt.Sprintf("%s: %s (%d)", fg.Variant, fg.Outcome, fg.Status))
				if fg.Outcome == "accepted" {
					p.wrap("      ", "built as: "+fg.Made)
				}
			}
		}
		if a := f.Authz; a != nil {
			p.wrap("  ", "proof:     "+a.Line(f.Identity))
		}
		if f.SeverityReason != "" {
			p.f("  severity:  %s\n", f.SeverityReason)
		}
		if tl := timelineText(f.Evidence); tl != "" {
			zero := "the start"
			for _, e := range f.Evidence {
				if e.Kind == finding.EventChangeAcked {
					zero = "the acknowledgement"
				}
			}
			p.f("  timeline (ms from %s):\n%s", zero, tl)
		}
		p.f("  remediation:\n")
		for _, line := range strings.Split(f.Remediation, "\n") {
			p.wrap("    ", line)
		}
	}

	p.f("\nChecks:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range r.Checks {
		detail := ""
		switch c.Status {
		case StatusFailed:
			detail = fmt.Sprintf("%d finding%s", c.Findings, plural(c.Findings))
		case StatusSkipped, StatusError, StatusInconclusive, StatusNotApplicable:
			detail = c.Reason
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d requests\t%s\t%s\n", c.Status, c.ID, c.Requests, seconds(c.DurationMS), detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Surface != nil {
		writeSurfaceText(p, r.Surface)
	}
	return p.err
}

// timelineText condenses an evidence timeline: runs of replays with the same outcome become one line.
func timelineText(events []finding.Event) string {
	var b strings.Builder
	for i := 0; i < len(events); i++ {
		e := events[i]
		if e.Kind == finding.EventReplay && e.HTTP != nil {
			j := i
			for j+1 < len(events) && events[j+1].Kind == finding.EventReplay && events[j+1].HTTP != nil && events[j+1].HTTP.Outcome == e.HTTP.Outcome {
				j++
			}
			last := events[j]
			if j == i {
				fmt.Fprintf(&b, "    %10.1f  replay %s: %d %s\n", e.AtMS, e.HTTP.Method, e.HTTP.Status, e.HTTP.Outcome)
			} else {
				fmt.Fprintf(&b, "    %10.1f  %d replays %s .. %.1f: %d %s\n", e.AtMS, j-i+1, e.HTTP.Method, last.AtMS, last.HTTP.Status, last.HTTP.Outcome)
			}
			i = j
			continue
		}
		detail := e.Detail
		if e.HTTP != nil {
			detail = fmt.Sprintf("%s: %s %s -> %d", detail, e.HTTP.Method, e.HTTP.URL, e.HTTP.Status)
		}
		fmt.Fprintf(&b, "    %10.1f  %s\n", e.AtMS, strings.TrimSpace(e.Kind+" "+detail))
	}
	return b.String()
}

func (s Summary) counts() string {
	var parts []string
	for _, c := range []struct {
		n    int
		name string
	}{{s.Critical, "critical"}, {s.High, "high"}, {s.Medium, "medium"}, {s.Low, "low"}, {s.Info, "info"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.name))
		}
	}
	return strings.Join(parts, ", ")
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// wrap prints text indented and folded at about 100 columns.
func (p *printer) wrap(indent, text string) { p.wrapAfter(indent, indent+"  ", text) }

// wrapAfter prints text after first (kept as it is, padding included), folded at about 100 columns
// onto lines that start with indent.
func (p *printer) wrapAfter(first, indent, text string) {
	const width = 100
	line, empty := first, true
	for _, word := range strings.Fields(text) {
		switch {
		case empty:
			line += word
		case len(line)+1+len(word) > width:
			p.f("%s\n", line)
			line = indent + word
		default:
			line += " " + word
		}
		empty = false
	}
	if !empty {
		p.f("%s\n", line)
	}
}

func ms(v float64) string { return fmt.Sprintf("%.1f ms", v) }

func seconds(msv float64) string { return fmt.Sprintf("%.1f s", msv/1000) }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
