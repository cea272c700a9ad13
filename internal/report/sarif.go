package report

import (
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/finding"
)

// informationURI is where a SARIF viewer sends people who want to know what tocsin is.
const informationURI = "https://github.com/tocsin/tocsin"

// securitySeverity is the CVSS-like figure GitHub code scanning reads from a rule's
// "security-severity" property to rank alerts: 9.0 and up is critical, 7.0 high, 4.0 medium, 0.1 low.
var securitySeverity = map[finding.Severity]string{
	finding.Critical: "9.5",
	finding.High:     "8.0",
	finding.Medium:   "5.5",
	finding.Low:      "3.0",
	finding.Info:     "0.0",
}

// sarifLevel maps a severity to a SARIF result level: only what should block a merge is an error.
func sarifLevel(s finding.Severity) string {
	switch {
	case s >= finding.High:
		return sarif.LevelError
	case s == finding.Medium:
		return sarif.LevelWarning
	default:
		return sarif.LevelNote
	}
}

// WriteSARIF writes reports as one SARIF 2.1.0 log with one run per report. Each run has one rule per
// check, one result per finding, and the checks that were skipped or stopped by an error as tool
// execution notifications.
func WriteSARIF(w io.Writer, reports []*Report) error {
	log := sarif.NewReport()
	// The go-sarif default points at a moving branch; the OASIS URL is the one the standard names.
	log.Schema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	for _, r := range reports {
		log.AddRun(sarifRun(r))
	}
	if err := log.PrettyWrite(w); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func sarifRun(r *Report) *sarif.Run {
	run := sarif.NewRunWithInformationURI("tocsin", informationURI)
	run.Tool.Driver.WithVersion(r.Tool.Version)

	// GitHub code scanning refuses two runs of one tool with the same category in one upload; the
	// target name tells the demo's two labs (and several configs) apart.
	run.WithAutomationDetails(&sarif.RunAutomationDetails{ID: ptr("tocsin/" + categorySafe(r.Target.Name) + "/")})

	ruleIndex := map[string]int{}
	for _, id := range ruleIDs(r) {
		ruleIndex[id] = len(run.Tool.Driver.Rules)
		run.Tool.Driver.AddRule(sarifRule(id, r))
	}

	for _, f := range r.Findings {
		res := sarif.NewResult().
			WithRuleID(f.Check).
			WithRuleIndex(ruleIndex[f.Check]).
			WithLevel(sarifLevel(f.Severity)).
			WithMessage(sarif.NewTextMessage(f.Summary)).
			// A map, not AddPartialFingerprint: go-sarif v3.3.1 adds to a nil map there.
			WithPartialFingerprints(map[string]string{"tocsinFindingId/v1": f.ID})
		logical := sarif.NewLogicalLocation().
			WithName(f.Endpoint).
			WithFullyQualifiedName(f.Endpoint).
			WithKind("function")
		loc := sarif.NewLocation().AddLogicalLocation(logical)
		if uri := endpointURI(r, f); uri != "" {
			loc.WithPhysicalLocation(sarif.NewPhysicalLocation().
				WithArtifactLocation(sarif.NewArtifactLocation().WithURI(uri)))
		}
		res.AddLocation(loc)
		props := sarif.NewPropertyBag().
			Add("id", f.ID).
			Add("severity", f.Severity.String()).
			Add("security-severity", securitySeverity[f.Severity]).
			Add("identity", f.Identity).
			Add("requests", f.Requests)
		if w := f.Window; w != nil {
			props.Add("window", w)
			if w.Cause != "" {
				// Flat, so that a query over code-scanning alerts need not open the window.
				props.Add("cause", w.Cause).Add("worst-case-ms", w.WorstCaseMS)
			}
		}
		res.WithProperties(props)
		run.AddResult(res)
	}

	inv := sarif.NewInvocation().
		WithExecutionSuccessful(true).
		WithStartTimeUtc(r.StartedAt.UTC().Format(time.RFC3339Nano)).
		WithEndTimeUtc(r.FinishedAt.UTC().Format(time.RFC3339Nano))
	// A scan that did not test everything did not succeed, whatever it found: code scanning must not
	// take the absence of alerts for a pass.
	inv.WithExecutionSuccessful(r.Complete())
	for _, rf := range r.RestoreFailures {
		inv.AddToolExecutionNotification(&sarif.Notification{
			Level:          sarif.LevelError,
			Message:        sarif.NewTextMessage(fmt.Sprintf("identity %q was left %s by %s (%s); restore it by hand: %s", rf.Identity, rf.State, rf.Check, rf.Error, rf.Manual)),
			AssociatedRule: &sarif.ReportingDescriptorReference{ID: ptr(rf.Check), Index: ruleIndex[rf.Check]},
			Locations:      []*sarif.Location{},
		})
	}
	for _, c := range r.Checks {
		var level string
		switch c.Status {
		case StatusSkipped, StatusError:
			level = sarif.LevelError
		case StatusInconclusive:
			level = sarif.LevelWarning
		default:
			continue
		}
		n := &sarif.Notification{
			Level:          level,
			Message:        sarif.NewTextMessage(fmt.Sprintf("%s %s: %s", c.ID, c.Status, c.Reason)),
			AssociatedRule: &sarif.ReportingDescriptorReference{ID: ptr(c.ID), Index: ruleIndex[c.ID]},
			Locations:      []*sarif.Location{},
		}
		inv.AddToolExecutionNotification(n)
	}
	if r.Interrupted {
		inv.AddToolExecutionNotification(&sarif.Notification{
			Level: sarif.LevelError, Message: sarif.NewTextMessage("the scan was interrupted"), Locations: []*sarif.Location{},
		})
	}
	run.AddInvocation(inv)
	props := sarif.NewPropertyBag().
		Add("target", r.Target.Name).
		Add("origins", r.Target.Origins).
		Add("requests", r.Requests).
		Add("status", r.Status).
		Add("headline", r.Headline())
	if r.Graded() {
		props.Add("score", *r.Score).Add("grade", r.Grade)
	}
	run.WithProperties(props)
	return run
}

// ruleIDs lists every check tocsin knows, then any other check the report names (a report saved by
// another version), so that every result and notification has its rule.
func ruleIDs(r *Report) []string {
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, c := range check.All() {
		add(c.Meta().ID)
	}
	for _, c := range r.Checks {
		add(c.ID)
	}
	for _, f := range r.Findings {
		add(f.Check)
	}
	return ids
}

func sarifRule(id string, r *Report) *sarif.ReportingDescriptor {
	meta := checkMeta(id, r)
	rule := sarif.NewReportingDescriptor().
		WithID(id).
		WithName(ruleName(id)).
		WithShortDescription(sarif.NewMultiformatMessageString().WithText(meta.Title)).
		WithHelp(sarif.NewMultiformatMessageString().
			WithText(ruleHelpText(meta)).
			WithMarkdown(ruleHelpMarkdown(meta)))
	if meta.Description != "" {
		rule.WithFullDescription(sarif.NewMultiformatMessageString().WithText(meta.Description))
	}
	if len(meta.References) > 0 {
		rule.WithHelpURI(meta.References[0])
	}
	// A rule has one severity but a check's findings are rated one by one (docs/severity.md): the
	// rule carries the most severe of this run's findings, which is what GitHub shows on the alert.
	sev, found := finding.Info, false
	for _, f := range r.Findings {
		if f.Check == id && (!found || f.Severity > sev) {
			sev, found = f.Severity, true
		}
	}
	if !found {
		sev = finding.Medium // no alert carries this rule in this run; a neutral value
	}
	cfg := sarif.NewReportingConfiguration()
	cfg.Level = sarifLevel(sev)
	rule.WithDefaultConfiguration(cfg)
	tags := []string{"security"}
	if meta.CWE != "" {
		tags = append(tags, meta.CWE, "external/cwe/"+strings.ToLower(meta.CWE))
	}
	rule.WithProperties(sarif.NewPropertyBag().
		Add("security-severity", securitySeverity[sev]).
		Add("precision", "very-high"). // every finding is proven by replay, never inferred
		WithTags(tags))
	return rule
}

// checkMeta returns a check's metadata, or what the report itself says about a check this build of
// tocsin does not know.
func checkMeta(id string, r *Report) check.Meta {
	if c := check.ByID(id); c != nil {
		return c.Meta()
	}
	meta := check.Meta{ID: id, Title: id}
	for _, c := range r.Checks {
		if c.ID == id && c.Title != "" {
			meta.Title = c.Title
		}
	}
	for _, f := range r.Findings {
		if f.Check == id {
			meta.Title, meta.CWE, meta.Remediation, meta.References = f.Title, f.CWE, f.Remediation, f.References
			break
		}
	}
	return meta
}

// ruleName turns "toctou/revoked-token-accepted" into "RevokedTokenAccepted", the PascalCase
// identifier SARIF suggests for reportingDescriptor.name.
func ruleName(id string) string {
	var b strings.Builder
	for _, word := range strings.FieldsFunc(id[strings.LastIndex(id, "/")+1:], func(r rune) bool { return r == '-' || r == '_' }) {
		b.WriteString(strings.ToUpper(word[:1]) + word[1:])
	}
	return b.String()
}

func ruleHelpText(m check.Meta) string {
	parts := []string{}
	if m.Description != "" {
		parts = append(parts, m.Description)
	}
	if m.Remediation != "" {
		parts = append(parts, "Remediation:\n"+m.Remediation)
	}
	if len(m.References) > 0 {
		parts = append(parts, "References:\n"+strings.Join(m.References, "\n"))
	}
	if len(parts) == 0 {
		return m.Title
	}
	return strings.Join(parts, "\n\n")
}

func ruleHelpMarkdown(m check.Meta) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", m.Title)
	if m.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", m.Description)
	}
	if m.Remediation != "" {
		fmt.Fprintf(&b, "### Remediation\n\n%s\n\n", m.Remediation)
	}
	if len(m.References) > 0 {
		b.WriteString("### References\n\n")
		for _, ref := range m.References {
			fmt.Fprintf(&b, "- <%s>\n", ref)
		}
	}
	return strings.TrimSpace(b.String())
}

// endpointURI is the location of a finding: the origin the API was reached at and the probe's path
// template, braces percent-encoded so that the result is a valid URI. The origin comes from the
// finding's own evidence when it has any, since a target may name several origins.
func endpointURI(r *Report, f finding.Finding) string {
	origin := ""
	for _, e := range f.Evidence {
		if e.HTTP == nil {
			continue
		}
		if u, err := url.Parse(e.HTTP.URL); err == nil && u.Scheme != "" && u.Host != "" {
			origin = u.Scheme + "://" + u.Host
			break
		}
	}
	if origin == "" && len(r.Target.Origins) > 0 {
		origin = strings.TrimSuffix(r.Target.Origins[0], "/")
	}
	_, path, ok := strings.Cut(f.Endpoint, " ")
	if !ok {
		path = f.Endpoint
	}
	if origin == "" || !strings.HasPrefix(path, "/") {
		return ""
	}
	return origin + strings.NewReplacer("{", "%7B", "}", "%7D", " ", "%20").Replace(path)
}

var categoryUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// categorySafe turns a target name such as "lab (vulnerable)" into "lab-vulnerable".
func categorySafe(name string) string {
	s := strings.Trim(categoryUnsafe.ReplaceAllString(name, "-"), "-")
	if s == "" {
		return "target"
	}
	return s
}

func ptr[T any](v T) *T { return &v }
