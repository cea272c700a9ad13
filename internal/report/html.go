package report

import (
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
)

// WriteHTML writes reports as one self-contained HTML page: styles inline, no script, no external
// asset, so that it can be mailed, archived as a CI artifact and opened offline. Several reports (the
// demo's two labs) become sections of the same page.
func WriteHTML(w io.Writer, reports []*Report) error {
	page := htmlPage{Title: "tocsin report"}
	for i, r := range reports {
		hr := htmlReport{Report: r, Anchor: fmt.Sprintf("report-%d", i+1)}
		fs := slices.Clone(r.Findings)
		// Finish already sorts, but a report read back from JSON may have been edited by hand.
		slices.SortStableFunc(fs, func(a, b finding.Finding) int { return int(b.Severity) - int(a.Severity) })
		for _, f := range fs {
			f.Evidence = slices.Clone(f.Evidence) // sorted here, without touching the report
			f.SortEvidence()
			hf := htmlFinding{Finding: f, Timeline: buildTimeline(f), URI: readableURI(endpointURI(r, f)), Zero: "the start of the experiment", Proof: proofLine(f)}
			if f.Window != nil {
				hf.Facts, hf.Passes = windowFacts(f.Window, f.Requests), passRows(f.Window)
			}
			for _, e := range f.Evidence {
				if e.Kind == finding.EventChangeAcked {
					hf.Zero = "the acknowledgement"
				}
			}
			if len(f.Evidence) > 0 {
				hf.Reproduce = reproduceScript(f, hf.Zero)
			}
			hr.Findings = append(hr.Findings, hf)
		}
		page.Reports = append(page.Reports, hr)
	}
	if len(reports) == 1 {
		page.Title = "tocsin report: " + reports[0].Target.Name
	}
	return htmlTemplate.Execute(w, page)
}

type htmlPage struct {
	Title   string
	Reports []htmlReport
}

type htmlReport struct {
	*Report
	Anchor   string
	Findings []htmlFinding
}

type htmlFinding struct {
	finding.Finding
	Timeline  *svgTimeline
	URI       string
	Zero      string     // what evidence offsets count from
	Proof     string     // the window or the proof in one line, for the findings table
	Reproduce string     // the requests as a shell script
	Facts     []fact     // a staleness window's cause, figures and worst case
	Passes    [][]string // a staleness window's passes, one row each
}

// proofLine says in one line what a finding measured: its window, the in-flight proof, or the first
// sentence of its summary.
func proofLine(f finding.Finding) string {
	switch {
	case f.Window != nil:
		return windowLine(f.Window)
	case f.Inflight != nil:
		return inflightLine(f.Inflight)
	case f.Authz != nil:
		return f.Authz.Line(f.Identity)
	}
	first, _, _ := strings.Cut(f.Summary, ". ")
	first, _, _ = strings.Cut(first, " (") // the figures in brackets are in the card
	return strings.TrimSuffix(first, ".")
}

// windowLine is a staleness window in one line: its cause and its figure, in the cause's frame
// when it has one.
func windowLine(w *finding.Window) string {
	var figure string
	switch {
	case w.Cause == finding.CausePeriodic && w.Periodic != nil:
		figure = fmt.Sprintf("from %s to %s after the %s", w.Periodic.Shortest.String(), w.Periodic.Longest.String(), w.Change)
	case w.Never:
		figure = fmt.Sprintf("still honoured %s after the %s, when the replays stopped", fmtMS(w.LastAcceptedMS), w.Change)
	case w.Parameter != "" && w.Parameter != "window" && w.Bracket != nil:
		figure = fmt.Sprintf("%s %s %s", w.Parameter, w.Bracket.String(), finding.DescribeFrame(w.Frame, w.Change))
	default:
		figure = fmt.Sprintf("honoured until %s after the %s", finding.FormatBracket(w.LastAcceptedMS, w.FirstRejectedMS), w.Change)
	}
	if w.Cause != "" {
		return w.Cause + ": " + figure
	}
	return figure
}

// inflightLine is an in-flight proof in one line.
func inflightLine(in *finding.Inflight) string {
	return fmt.Sprintf("committed at %s, after the revocation was acknowledged at %s (action sent at 0)", fmtMS(in.AnsweredMS), fmtMS(in.AckMS))
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper": strings.ToUpper,
	"f1":    func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"ms":    fmtMS,
	"secs":  func(ms float64) string { return fmt.Sprintf("%.1f s", ms/1000) },
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 MST") },
	"lower": strings.ToLower,
	"join":  strings.Join,
	"lines": func(s string) []string { return strings.Split(s, "\n") },
	"add":   func(a, b float64) float64 { return a + b },
	"home":  func() string { return HomeURL },
	"sub":   func(a, b float64) float64 { return a - b },
}).Parse(htmlSource))

const htmlSource = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
:root { --fg: #1d2330; --muted: #5c6475; --line: #d9dde5; --bg: #f6f7f9; --card: #fff;
  --critical: #7b1fa2; --high: #c62828; --medium: #e65100; --low: #0277bd; --info: #607d8b;
  --accepted: #d32f2f; --rejected: #2e7d32; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header.page { background: #1d2330; color: #fff; padding: 18px 32px; }
header.page h1 { margin: 0; font-size: 22px; font-weight: 600; }
header.page nav a { color: #cfd8ff; margin-right: 16px; }
main { max-width: 1000px; margin: 0 auto; padding: 16px 24px 48px; }
section.report { margin-top: 24px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 18px 22px; margin: 14px 0; }
.overview { display: flex; gap: 24px; align-items: center; }
.grade { flex: none; width: 92px; height: 92px; border-radius: 50%; display: flex; flex-direction: column; align-items: center; justify-content: center; color: #fff; }
.grade b { font-size: 40px; line-height: 1; }
.grade span { font-size: 13px; opacity: .9; }
.grade-A { background: #2e7d32; } .grade-B { background: #689f38; } .grade-C { background: #f9a825; }
.grade-D { background: #ef6c00; } .grade-F { background: #c62828; } .grade-none { background: #6a1b9a; }
.headline { font-weight: 600; } .headline-warn { color: #6a1b9a; }
.card.alert { border-left: 5px solid #6a1b9a; } .card.warn { border-left: 5px solid #e65100; }
pre.mono { white-space: pre-wrap; word-break: break-all; background: #f6f7f9; padding: 8px; border-radius: 4px; }
h2 { margin: 0 0 4px; font-size: 20px; }
h3 { margin: 0; font-size: 17px; }
.muted { color: var(--muted); }
.chips span { display: inline-block; padding: 1px 10px; border-radius: 12px; margin-right: 6px; font-size: 13px; color: #fff; }
.sev { display: inline-block; padding: 1px 8px; border-radius: 4px; font-size: 12px; font-weight: 700; color: #fff; letter-spacing: .04em; vertical-align: 2px; }
.sev-critical { background: var(--critical); } .sev-high { background: var(--high); } .sev-medium { background: var(--medium); }
.sev-low { background: var(--low); } .sev-info { background: var(--info); }
article.finding { border-left: 5px solid var(--info); }
article.finding.sev-border-critical { border-left-color: var(--critical); } article.finding.sev-border-high { border-left-color: var(--high); }
article.finding.sev-border-medium { border-left-color: var(--medium); } article.finding.sev-border-low { border-left-color: var(--low); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 10px 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
ul.forged { margin: 0; padding-left: 1.2em; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; }
.status { font-weight: 600; } .status-passed { color: #2e7d32; } .status-failed { color: #c62828; }
.status-skipped { color: #8d6e63; } .status-error { color: #6a1b9a; } .status-inconclusive { color: #e65100; }
.remediation { margin-top: 10px; } .remediation p { margin: 4px 0; }
details { margin-top: 8px; } summary { cursor: pointer; color: var(--muted); }
svg.timeline { width: 100%; height: auto; margin-top: 8px; background: #fbfbfd; border: 1px solid var(--line); border-radius: 6px; }
svg.timeline text { font: 11px system-ui, sans-serif; fill: var(--fg); }
svg.timeline .tick { fill: var(--muted); }
svg.timeline .axis { stroke: #4a5163; stroke-width: 1.5; }
svg.timeline .brk { fill: #fbfbfd; stroke: #4a5163; }
svg.timeline .shade { fill: var(--accepted); opacity: .10; }
svg.timeline .bracket { fill: none; stroke: var(--fg); stroke-width: 1.5; }
svg.timeline line.mark { stroke-width: 1; stroke-dasharray: 2 2; }
svg.timeline .k-token { stroke: #1565c0; fill: #1565c0; } svg.timeline .k-fill { stroke: #6a1b9a; fill: #6a1b9a; }
svg.timeline .k-change { stroke: #e65100; fill: #e65100; } svg.timeline .k-ack { stroke: #1d2330; fill: #1d2330; }
svg.timeline .k-action { stroke: #ad1457; fill: #ad1457; } svg.timeline .k-verify { stroke: #00838f; fill: #00838f; }
svg.timeline .k-other { stroke: #757575; fill: #757575; }
svg.timeline text.k-token, svg.timeline text.k-fill, svg.timeline text.k-change, svg.timeline text.k-ack,
svg.timeline text.k-action, svg.timeline text.k-verify, svg.timeline text.k-other { stroke: none; }
svg.timeline circle.accepted { fill: var(--accepted); } svg.timeline circle.rejected { fill: var(--rejected); }
svg.timeline circle.inconclusive { fill: #9e9e9e; }
svg.timeline circle { stroke: #fff; stroke-width: 1; opacity: .85; }
footer { color: var(--muted); font-size: 13px; margin-top: 32px; }
footer table { margin: 6px 0 10px; max-width: 560px; }
.scroll { overflow-x: auto; max-width: 100%; }
.card a, .card code, .card p { overflow-wrap: anywhere; }
.scroll > svg.timeline { min-width: 720px; }
.overview { flex-wrap: wrap; }
.overview > div { min-width: 0; }
dl.facts dd { min-width: 0; overflow-wrap: anywhere; }
td.mono, td.excerpt { overflow-wrap: anywhere; word-break: break-word; }
td.excerpt { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; color: var(--muted); }
table.findings td:first-child { white-space: nowrap; }
ol.timeline-notes { margin: 4px 0 0; padding-left: 22px; font-size: 13px; color: var(--muted); }
details.reproduce pre { white-space: pre; overflow-x: auto; max-height: 32em; background: #f6f7f9; padding: 8px; border-radius: 4px; margin: 6px 0 0; }
h4 { margin: 12px 0 4px; font-size: 15px; }
@media (max-width: 640px) {
  header.page { padding: 12px 16px; }
  main { padding: 8px 10px 32px; }
  .card { padding: 12px 14px; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dd { margin-bottom: 6px; }
  table.findings tr:first-child { display: none; }
  table.findings tr { display: block; padding: 6px 0; border-bottom: 1px solid var(--line); }
  table.findings td { display: block; border: none; padding: 1px 0; }
}
</style>
</head>
<body>
<header class="page">
<h1>{{.Title}}</h1>
{{- if gt (len .Reports) 1}}
<nav>{{range .Reports}}<a href="#{{.Anchor}}">{{.Target.Name}}</a>{{end}}</nav>
{{- end}}
</header>
<main>
{{- range .Reports}}
<section class="report" id="{{.Anchor}}">
<div class="card overview">
{{- if .Graded}}
<div class="grade grade-{{.Grade}}" title="score {{.Score}} of 100 (how it is decided: at the foot of the page)"><b>{{.Grade}}</b><span>{{.Score}} / 100</span></div>
{{- else}}
<div class="grade grade-none" title="no grade: {{.Headline}}"><b>?</b><span>{{if .Complete}}undecided{{else}}incomplete{{end}}</span></div>
{{- end}}
<div>
<h2>{{.Target.Name}}</h2>
<div class="headline{{if not .Graded}} headline-warn{{end}}">{{.Headline}}</div>
<div class="muted">{{join .Target.Origins ", "}}</div>
<div class="muted">started {{when .StartedAt}}, took {{secs .DurationMS}}, {{.Requests}} requests, tocsin {{.Tool.Version}}</div>
<div class="chips" style="margin-top:6px">
{{- if eq .Summary.Total 0}}<span class="sev-info" style="background:#2e7d32">no findings</span>{{end}}
{{- if .Summary.Critical}}<span class="sev-critical">{{.Summary.Critical}} critical</span>{{end}}
{{- if .Summary.High}}<span class="sev-high">{{.Summary.High}} high</span>{{end}}
{{- if .Summary.Medium}}<span class="sev-medium">{{.Summary.Medium}} medium</span>{{end}}
{{- if .Summary.Low}}<span class="sev-low">{{.Summary.Low}} low</span>{{end}}
{{- if .Summary.Info}}<span class="sev-info">{{.Summary.Info}} info</span>{{end}}
</div>
</div>
</div>
{{- range .RestoreFailures}}
<div class="card alert"><h3>Restore failed: identity {{.Identity}}</h3>
<p>{{.Check}} left <strong>{{.Identity}}</strong> {{.State}}: {{.Error}}</p>
<p>Restore it by hand (secrets appear as labels; take them from your config):</p>
<pre class="mono">{{.Manual}}</pre></div>
{{- end}}
{{- with .LeftOnTarget}}
<div class="card alert"><h3>Left on the target</h3><p>Created by the scan and not removed; remove by hand:</p><ul>
{{- range .}}<li>{{.What}}, by <code>{{.Check}}</code> (probe {{.Probe}}): {{.Reason}}</li>{{end}}
</ul></div>
{{- end}}
{{- with .NotReached}}
<div class="card alert"><h3>Not tested, so not a pass</h3><ul>
{{- range .}}<li><code>{{.ID}}</code> {{.Status}}: {{.Reason}}</li>{{end}}
</ul></div>
{{- end}}
{{- if .Inconclusive}}
<div class="card warn"><h3>Inconclusive: tested, but the evidence cannot decide</h3><ul>
{{- range .Checks}}{{if eq .Status "inconclusive"}}<li><code>{{.ID}}</code>: {{.Reason}}</li>{{end}}{{end}}
</ul></div>
{{- end}}

{{- with .Findings}}
<div class="card"><h3>Findings</h3>
<div class="scroll"><table class="findings">
<tr><th>severity</th><th>check</th><th>endpoint</th><th>window or proof</th><th>details</th></tr>
{{- range .}}
<tr><td><span class="sev sev-{{.Severity}}">{{upper .Severity.String}}</span></td><td><code>{{.Check}}</code></td><td><code>{{.Endpoint}}</code></td><td>{{.Proof}}</td><td><a href="#{{.ID}}">{{.ID}}</a></td></tr>
{{- end}}
</table></div></div>
{{- end}}

{{- range .Findings}}{{$f := .}}
<article class="card finding sev-border-{{.Severity}}" id="{{.ID}}">
<h3><span class="sev sev-{{.Severity}}">{{upper .Severity.String}}</span> {{.Title}}</h3>
<div class="muted mono">{{.ID}} · {{.Check}}{{if .CWE}} · {{.CWE}}{{end}}</div>
<p>{{.Summary}}</p>
<dl class="facts">
<dt>Endpoint</dt><dd><code>{{.Endpoint}}</code>{{if .URI}} <span class="muted mono">{{.URI}}</span>{{end}}</dd>
{{- if .Identity}}<dt>Identity</dt><dd>{{.Identity}}{{if .Probe}} (probe {{.Probe}}){{end}}</dd>{{end}}
{{- range .Facts}}
<dt>{{.Label}}</dt><dd>{{.Text}}</dd>
{{- end}}
{{- with .Inflight}}
<dt>In flight</dt><dd>revocation acknowledged {{ms .AckMS}} after the action was sent; a read at {{ms .VerifyMS}} still found the resource; the action answered at {{ms .AnsweredMS}} (usual latency {{ms .ActionLatencyMS}}); attempts: {{.Attempts}}</dd>
{{- end}}
{{- with .Forged}}
<dt>Sent instead</dt><dd><ul class="forged">{{range .}}<li><strong>{{.Variant}}</strong>: {{.Outcome}} ({{.Status}}){{if eq .Outcome "accepted"}}<br><span class="muted">built as: {{.Made}}</span>{{end}}</li>{{end}}</ul></dd>
{{- end}}
{{- with .Authz}}
<dt>Proof</dt><dd>{{.Line $f.Identity}}</dd>
{{- end}}
<dt>Severity</dt><dd><span class="sev sev-{{.Severity}}">{{upper .Severity.String}}</span>{{if .SeverityReason}} {{.SeverityReason}}{{end}}</dd>
<dt>Requests</dt><dd>{{.Requests}}</dd>
</dl>
{{- with .Timeline}}
<div class="scroll">
<svg class="timeline" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="evidence timeline, milliseconds from {{$f.Zero}}">
{{- with .Shade}}<rect class="shade" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"/>{{end}}
{{- $axis := .AxisY}}
{{- range .Segments}}
<line class="axis" x1="{{.X1}}" y1="{{$axis}}" x2="{{.X2}}" y2="{{$axis}}"/>
{{- range .Ticks}}<text class="tick" x="{{.X}}" y="{{.Y}}" text-anchor="{{.Anchor}}">{{.Text}}</text>{{end}}
{{- end}}
{{- range .Breaks}}
<g class="break"><path class="brk" d="M{{sub .X 6}} {{add $axis 7}} L{{sub .X 2}} {{sub $axis 7}} M{{add .X 2}} {{add $axis 7}} L{{add .X 6}} {{sub $axis 7}}"/><text class="tick" x="{{.X}}" y="{{.LabelY}}" text-anchor="middle">{{.Label}}</text></g>
{{- end}}
{{- range .Marks}}
{{- $m := .}}
<g class="event"><title>{{.Title}}</title><line class="mark k-{{.Class}}" x1="{{.X}}" y1="{{.TopY}}" x2="{{.X}}" y2="{{add $axis 6}}"/><circle class="k-{{.Class}}" cx="{{.X}}" cy="{{$axis}}" r="3"/>{{if .Lines}}<text class="k-{{.Class}}" text-anchor="{{.Anchor}}">{{range .Lines}}<tspan x="{{$m.LabelX}}" y="{{.Y}}">{{.Text}}</tspan>{{end}}</text>{{end}}</g>
{{- end}}
{{- range .Replays}}
<circle class="{{.Class}}" cx="{{.X}}" cy="{{.Y}}" r="5"><title>{{.Title}}</title></circle>
{{- end}}
{{- with .Bracket}}
<path class="bracket" d="M{{.X1}} {{sub .Y 6}} L{{.X1}} {{.Y}} L{{.X2}} {{.Y}} L{{.X2}} {{sub .Y 6}}"/>
<text x="{{.Label.X}}" y="{{.Label.Y}}" text-anchor="{{.Label.Anchor}}">{{.Label.Text}}</text>
{{- end}}
{{- with .ShadeLabel}}<text x="{{.X}}" y="{{.Y}}" text-anchor="{{.Anchor}}">{{.Text}}</text>{{end}}
<g class="legend">
{{- if .Replays}}
<circle class="accepted" cx="30" cy="{{.LegendY}}" r="5"/><text x="40" y="{{add .LegendY 4}}">replay accepted</text>
<circle class="rejected" cx="150" cy="{{.LegendY}}" r="5"/><text x="160" y="{{add .LegendY 4}}">replay rejected</text>
{{- end}}
{{- if .Shade}}
<rect class="shade" x="{{if .Replays}}264{{else}}24{{end}}" y="{{sub .LegendY 6}}" width="18" height="12"/><text x="{{if .Replays}}288{{else}}48{{end}}" y="{{add .LegendY 4}}">old state honoured after the acknowledgement</text>
{{- end}}
{{- if not (or .Replays .Shade)}}
<text class="tick" x="24" y="{{add .LegendY 4}}">milliseconds from {{$f.Zero}}; hover a mark for its details</text>
{{- end}}
</g>
</svg>
</div>
{{- with .Notes}}
<ol class="timeline-notes">{{range .}}<li>{{.}}</li>{{end}}</ol>
{{- end}}
{{- end}}
{{- if .Reproduce}}
<details class="reproduce" open><summary>Reproduce: the requests as curl commands, in order, with what the API answered</summary>
<pre class="mono">{{.Reproduce}}</pre></details>
{{- end}}
<div class="remediation"><strong>Remediation</strong>
{{- range lines .Remediation}}<p>{{.}}</p>{{end}}
</div>
{{- if .References}}
<div><strong>References</strong> {{range $i, $r := .References}}{{if $i}} · {{end}}<a href="{{$r}}">{{$r}}</a>{{end}}</div>
{{- end}}
{{- if .Passes}}
<details><summary>Passes ({{len .Passes}}; milliseconds from each pass's own acknowledgement)</summary>
<div class="scroll"><table>
<tr><th class="num">pass</th><th>first use sent .. answered</th><th class="num">change sent</th><th>window</th><th>{{.Window.Parameter}} ({{.Window.Frame}})</th><th>set on purpose</th><th class="num">replays</th><th>why</th></tr>
{{- range .Passes}}
<tr>{{range .}}<td class="mono">{{.}}</td>{{end}}</tr>
{{- end}}
</table></div>
</details>
{{- end}}
{{- if .Evidence}}
<details><summary>Evidence ({{len .Evidence}} events, milliseconds from {{.Zero}})</summary>
<div class="scroll"><table>
<tr><th class="num">at</th><th>event</th><th>request</th><th>token</th><th class="num">status</th><th>outcome</th><th>response (start, redacted)</th></tr>
{{- range .Evidence}}
<tr><td class="num mono">{{f1 .AtMS}}</td><td>{{.Kind}}{{if .Detail}}: {{.Detail}}{{end}}</td>
{{- with .HTTP}}<td class="mono">{{.Method}} {{.URL}}</td><td class="mono">{{.Token}}</td><td class="num">{{.Status}}</td><td>{{.Outcome}}</td><td class="excerpt">{{.BodyExcerpt}}</td>{{else}}<td></td><td></td><td></td><td></td><td></td>{{end}}</tr>
{{- end}}
</table></div>
</details>
{{- end}}
</article>
{{- end}}

<div class="card">
<h3>Checks</h3>
<div class="scroll"><table>
<tr><th>status</th><th>check</th><th class="num">findings</th><th class="num">requests</th><th class="num">time</th><th>reason</th></tr>
{{- range .Checks}}
<tr><td class="status status-{{.Status}}">{{.Status}}</td><td><code>{{.ID}}</code><br><span class="muted">{{.Title}}</span></td><td class="num">{{.Findings}}</td><td class="num">{{.Requests}}</td><td class="num">{{secs .DurationMS}}</td><td>{{.Reason}}</td></tr>
{{- end}}
</table></div>
</div>
{{- with .Surface}}
<div class="card">
<h3>Surface</h3>
<p class="muted">{{join .Sources ", "}}: {{.Line}}</p>
{{- range .Notes}}<p class="muted">{{.}}</p>{{end}}
<div class="scroll"><table>
<tr><th>status</th><th>operation</th><th>checks, and why</th></tr>
{{- range .Operations}}
<tr><td class="status">{{.Status}}</td><td><code>{{.Endpoint}}</code>{{if ne .ID .Endpoint}}<br><span class="muted">{{.ID}}</span>{{end}}</td><td>{{range .Checks}}<code>{{.Check}}</code>: {{.Why}}<br>{{end}}{{.Reason}}</td></tr>
{{- end}}
{{- range .Unselected}}
<tr><td class="status status-skipped">no operation</td><td><code>{{.Check}}</code></td><td>{{.Reason}}</td></tr>
{{- end}}
</table></div>
</div>
{{- end}}
</section>
{{- end}}
<footer>
<p>Generated by tocsin{{with home}} (<a href="{{.}}">{{.}}</a>){{end}}. Tokens, secrets and passwords never appear in this report: they are replaced by labels such as [token:1a2b3c4d].</p>
<details><summary>How severity, score and grade are decided</summary>
<p>A revoked token or removed scope still honoured after the identity provider acknowledged the change is rated by how long it lasted and whether the probe changes data:</p>
<table>
<tr><th>old state honoured</th><th>read-only probe</th><th>destructive probe</th></tr>
<tr><td>still when tocsin stopped waiting (max_window)</td><td>high</td><td>critical</td></tr>
<tr><td>1 s or more</td><td>medium</td><td>high</td></tr>
<tr><td>under 1 s</td><td>low</td><td>medium</td></tr>
</table>
<p>A destructive action committed after its token's revocation was acknowledged is high. A one-shot action performed more times than its limit allows is high.</p>
<p>An operation that answers without a valid token (auth/missing) is high, critical when it writes. A forged JWT accepted (jwt/*) is critical when it claims another identity's subject, high for the identity's own; an expired token accepted is medium.</p>
<p>Between identities (authz/*): another identity's object read, or a privileged read without the privilege, is high; another's object changed or deleted, or a privileged write, read back, is critical. A property the client must not set that took is critical when it is a privilege (role, is_admin, scopes, ...), high for ownership or value (owner, balance, ...), medium otherwise. Each finding's Severity row names the clause that applied.</p>
<p>The score starts at 100 and loses, per finding, 65 for critical, 30 for high (90 at most in all), 15 for medium (45 at most) and 5 for low (20 at most). Grades: A 90-100, B 75-89, C 60-74, D 40-59, F 0-39. Only a complete scan with every check decided is graded: what was not tested is never a pass.</p>
</details>
</footer>
</main>
</body>
</html>
`

// readableURI shows a probe's path template as written ({{item_id}}), not percent-encoded as SARIF
// needs it.
func readableURI(uri string) string {
	return strings.NewReplacer("%7B", "{", "%7D", "}", "%20", " ").Replace(uri)
}
