package report

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/finding"
)

// The SARIF 2.1.0 log is written from the types below rather than a SARIF library: the one we used
// writes every index as -1 when unset ("index", "parentIndex", "byteOffset"), which validators flag
// and which says nothing. Only what tocsin fills is declared; every field is optional unless the
// standard requires it.

// HomeURL is where this build of tocsin and its documentation live, for SARIF viewers' "more about
// this tool" link. `make build` sets it from the git remote of the checkout it builds, and the GitHub
// Action from the action's repository (-ldflags "-X github.com/tocsin/tocsin/internal/report.HomeURL=...");
// when unknown, the log leaves it out.
var HomeURL = ""

const sarifSchemaURI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool              sarifTool         `json:"tool"`
	AutomationDetails sarifAutomation   `json:"automationDetails"`
	Invocations       []sarifInvocation `json:"invocations"`
	Results           []sarifResult     `json:"results"`
	Properties        map[string]any    `json:"properties,omitempty"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name            string      `json:"name"`
	InformationURI  string      `json:"informationUri,omitempty"`
	Version         string      `json:"version,omitempty"`
	SemanticVersion string      `json:"semanticVersion,omitempty"`
	Rules           []sarifRule `json:"rules"`
}

type sarifAutomation struct {
	ID string `json:"id"`
}

type sarifRule struct {
	ID                   string             `json:"id"`
	Name                 string             `json:"name"`
	ShortDescription     sarifText          `json:"shortDescription"`
	FullDescription      sarifText          `json:"fullDescription"`
	Help                 sarifText          `json:"help"`
	HelpURI              string             `json:"helpUri,omitempty"`
	DefaultConfiguration *sarifRuleDefaults `json:"defaultConfiguration,omitempty"`
	Properties           map[string]any     `json:"properties"`
}

type sarifRuleDefaults struct {
	Level string `json:"level"`
}

// sarifText is a message or a multiformat message string.
type sarifText struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	WebRequest          *sarifWebRequest  `json:"webRequest,omitempty"`
	WebResponse         *sarifWebResponse `json:"webResponse,omitempty"`
	Properties          map[string]any    `json:"properties"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysicalLocation `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogicalLocation `json:"logicalLocations,omitempty"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           sarifRegion           `json:"region"`
}

type sarifArtifactLocation struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn"`
	EndLine     int `json:"endLine"`
	EndColumn   int `json:"endColumn"`
}

type sarifLogicalLocation struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

type sarifWebRequest struct {
	Protocol string            `json:"protocol"`
	Method   string            `json:"method"`
	Target   string            `json:"target"`
	Headers  map[string]string `json:"headers,omitempty"`
}

type sarifWebResponse struct {
	Protocol   string     `json:"protocol"`
	StatusCode int        `json:"statusCode"`
	Body       *sarifBody `json:"body,omitempty"`
}

type sarifBody struct {
	Text string `json:"text"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	StartTimeUTC               string              `json:"startTimeUtc"`
	EndTimeUTC                 string              `json:"endTimeUtc"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level          string         `json:"level"`
	Message        sarifText      `json:"message"`
	AssociatedRule *sarifRuleRef  `json:"associatedRule,omitempty"`
	Properties     map[string]any `json:"properties,omitempty"`
}

type sarifRuleRef struct {
	ID    string `json:"id"`
	Index int    `json:"index"`
}

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
		return "error"
	case s == finding.Medium:
		return "warning"
	default:
		return "note"
	}
}

// WriteSARIF writes reports as one SARIF 2.1.0 log with one run per report. Each run has a rule per
// check, and per check and severity of its findings; one result per finding, located at its probe in
// the config; and the checks that did not reach a verdict as tool execution notifications.
func WriteSARIF(w io.Writer, reports []*Report) error {
	log := sarifLog{Schema: sarifSchemaURI, Version: "2.1.0", Runs: []sarifRun{}}
	for _, r := range reports {
		log.Runs = append(log.Runs, sarifRunOf(r))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(log)
}

func sarifRunOf(r *Report) sarifRun {
	run := sarifRun{
		Tool: sarifTool{Driver: sarifDriver{Name: "tocsin", InformationURI: HomeURL, Rules: []sarifRule{}}},
		// GitHub code scanning refuses two runs of one tool with the same category in one upload; the
		// target name tells the demo's two labs (and several configs) apart.
		AutomationDetails: sarifAutomation{ID: "tocsin/" + categorySafe(r.Target.Name) + "/"},
		Results:           []sarifResult{},
	}
	run.Tool.Driver.Version, run.Tool.Driver.SemanticVersion = sarifVersion(r.Tool.Version)

	ruleIndex := map[string]int{}
	addRule := func(rule sarifRule) {
		ruleIndex[rule.ID] = len(run.Tool.Driver.Rules)
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, rule)
	}
	for _, id := range ruleIDs(r) {
		addRule(sarifCheckRule(checkMeta(id, r)))
	}
	for _, f := range r.Findings {
		id := severityRuleID(f)
		if _, ok := ruleIndex[id]; !ok {
			addRule(sarifSeverityRule(checkMeta(f.Check, r), f.Severity))
		}
		run.Results = append(run.Results, sarifResultOf(r, f, ruleIndex[id]))
	}
	run.Invocations = []sarifInvocation{sarifInvocationOf(r, ruleIndex)}
	run.Properties = map[string]any{
		"target":   r.Target.Name,
		"origins":  r.Target.Origins,
		"requests": r.Requests,
		"status":   r.Status,
		"headline": r.Headline(),
	}
	if r.Graded() {
		run.Properties["score"], run.Properties["grade"] = *r.Score, r.Grade
	}
	return run
}

// severityRuleID is the rule a finding's result refers to. GitHub code scanning shows an alert at
// its rule's security-severity, so each severity a check's findings reach has its own rule: a
// medium finding must not show as high because another finding of the check is.
func severityRuleID(f finding.Finding) string { return f.Check + "/" + f.Severity.String() }

func sarifResultOf(r *Report, f finding.Finding, ruleIndex int) sarifResult {
	res := sarifResult{
		RuleID:    severityRuleID(f),
		RuleIndex: ruleIndex,
		Level:     sarifLevel(f.Severity),
		Message:   sarifText{Text: f.Summary},
		// The finding's ID is stable across runs for the same check, endpoint and identity: an alert
		// keeps its history while the flaw stays.
		PartialFingerprints: map[string]string{"tocsinFindingId/v1": f.ID},
		Properties: map[string]any{
			"id":                f.ID,
			"severity":          f.Severity.String(),
			"security-severity": securitySeverity[f.Severity],
			"identity":          f.Identity,
			"requests":          f.Requests,
		},
	}
	if f.SeverityReason != "" {
		res.Properties["severityReason"] = f.SeverityReason
	}
	if f.Window != nil {
		res.Properties["window"] = f.Window
		if f.Window.Cause != "" {
			// Flat, so that a query over code-scanning alerts need not open the window.
			res.Properties["cause"] = f.Window.Cause
			res.Properties["worst-case-ms"] = f.Window.WorstCaseMS
		}
	}
	if len(f.Forged) > 0 {
		res.Properties["forged"] = f.Forged
	}
	if f.Authz != nil {
		res.Properties["authz"] = f.Authz
	}
	loc := sarifLocation{LogicalLocations: []sarifLogicalLocation{{
		Name:               f.Endpoint,
		FullyQualifiedName: strings.TrimSpace(endpointMethod(f) + " " + readableURI(endpointURI(r, f))),
		Kind:               "resource",
	}}}
	if l := f.Location; l != nil && l.File != "" && l.Line > 0 {
		col := max(l.Column, 1)
		loc.PhysicalLocation = &sarifPhysicalLocation{
			ArtifactLocation: sarifArtifactLocation{URI: fileURI(l.File)},
			Region:           sarifRegion{StartLine: l.Line, StartColumn: col, EndLine: l.Line, EndColumn: max(l.EndColumn, col+1)},
		}
	}
	res.Locations = []sarifLocation{loc}
	if e := provingExchange(f); e != nil {
		res.WebRequest = &sarifWebRequest{Protocol: "http", Method: e.Method, Target: e.URL}
		if e.Token != "" && e.Token != noToken {
			res.WebRequest.Headers = map[string]string{"Authorization": "Bearer " + e.Token}
		}
		res.WebResponse = &sarifWebResponse{Protocol: "http", StatusCode: e.Status}
		if e.BodyExcerpt != "" {
			res.WebResponse.Body = &sarifBody{Text: e.BodyExcerpt}
		}
	}
	return res
}

// provingExchange is the request that shows the flaw best: the last one the API accepted when it
// should not have (a replay after the change, a race copy), else the action, else the last
// exchange of the evidence.
func provingExchange(f finding.Finding) *finding.Exchange {
	var last, action, accepted, forged *finding.Exchange
	for _, e := range f.Evidence {
		if e.HTTP == nil {
			continue
		}
		last = e.HTTP
		if e.Kind == finding.EventAction {
			action = e.HTTP
		}
		if e.Kind == finding.EventForged && e.HTTP.Outcome == "accepted" && forged == nil {
			forged = e.HTTP // what was sent in place of the token: the proof, not a control
		}
		if e.HTTP.Outcome == "accepted" && e.AtMS > 0 && e.Kind != finding.EventVerify {
			accepted = e.HTTP
		}
	}
	switch {
	case forged != nil:
		return forged
	case accepted != nil:
		return accepted
	case action != nil:
		return action
	}
	return last
}

// fileURI turns a relative path into a relative URI reference: slashes, and characters that URIs do
// not allow percent-encoded.
func fileURI(path string) string {
	parts := strings.Split(strings.ReplaceAll(path, `\`, "/"), "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func sarifInvocationOf(r *Report, ruleIndex map[string]int) sarifInvocation {
	// A scan that did not test everything did not succeed, whatever it found: code scanning must not
	// take the absence of alerts for a pass.
	inv := sarifInvocation{
		ExecutionSuccessful: r.Complete(),
		StartTimeUTC:        r.StartedAt.UTC().Format(time.RFC3339Nano),
		EndTimeUTC:          r.FinishedAt.UTC().Format(time.RFC3339Nano),
	}
	ref := func(id string) *sarifRuleRef { return &sarifRuleRef{ID: id, Index: ruleIndex[id]} }
	for _, rf := range r.RestoreFailures {
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{
			Level:          "error",
			Message:        sarifText{Text: fmt.Sprintf("identity %q was left %s by %s (%s); restore it by hand: %s", rf.Identity, rf.State, rf.Check, rf.Error, rf.Manual)},
			AssociatedRule: ref(rf.Check),
		})
	}
	for _, l := range r.LeftOnTarget {
		n := sarifNotification{
			Level:   "warning",
			Message: sarifText{Text: fmt.Sprintf("left on the target by %s: %s (%s)", l.Check, l.What, l.Reason)},
		}
		if _, ok := ruleIndex[l.Check]; ok {
			n.AssociatedRule = ref(l.Check)
		}
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, n)
	}
	for _, c := range r.Checks {
		var level string
		switch c.Status {
		case StatusSkipped, StatusError:
			level = "error"
		case StatusInconclusive:
			level = "warning"
		case StatusNotApplicable:
			level = "note"
		default:
			continue
		}
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{
			Level:          level,
			Message:        sarifText{Text: fmt.Sprintf("%s %s: %s", c.ID, c.Status, c.Reason)},
			AssociatedRule: ref(c.ID),
		})
	}
	if r.Interrupted {
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{
			Level: "error", Message: sarifText{Text: "the scan was interrupted"},
		})
	}
	return inv
}

// sarifVersion gives the tool version as SARIF viewers compare it, starting with a number: v1.2.3
// becomes 1.2.3 (also the semantic version), and a build with no release version 0.0.0-<it>.
func sarifVersion(v string) (version, semantic string) {
	v = strings.TrimPrefix(v, "v")
	if v == "" || v[0] < '0' || v[0] > '9' {
		v = "0.0.0-" + strings.Trim(categoryUnsafe.ReplaceAllString(v, "-"), "-")
		v = strings.TrimSuffix(v, "-")
	}
	if semverLike.MatchString(v) {
		semantic = v
	}
	return v, semantic
}

var semverLike = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// ruleIDs lists every check tocsin knows, then any other check the report names (a report saved by
// another version), so that every notification has its rule.
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

// sarifCheckRule describes a check: what notifications about it refer to.
func sarifCheckRule(meta check.Meta) sarifRule {
	rule := sarifRule{
		ID:               meta.ID,
		Name:             ruleName(meta.ID),
		ShortDescription: sarifText{Text: meta.Title},
		FullDescription:  sarifText{Text: meta.Title},
		Help:             sarifText{Text: ruleHelpText(meta), Markdown: ruleHelpMarkdown(meta)},
		// Every finding is proven by replay, never inferred.
		Properties: map[string]any{"tags": ruleTags(meta), "precision": "very-high"},
	}
	if meta.Description != "" {
		rule.FullDescription = sarifText{Text: meta.Description}
	}
	if len(meta.References) > 0 {
		rule.HelpURI = meta.References[0]
	}
	return rule
}

// sarifSeverityRule is a check's rule for its findings of one severity (docs/severity.md rates each
// finding on its own). The result level and security-severity are that severity's.
func sarifSeverityRule(meta check.Meta, sev finding.Severity) sarifRule {
	rule := sarifCheckRule(meta)
	rule.ID = meta.ID + "/" + sev.String()
	rule.Name = ruleName(meta.ID) + ruleName(sev.String())
	rule.ShortDescription.Text = fmt.Sprintf("%s (%s)", meta.Title, sev)
	rule.DefaultConfiguration = &sarifRuleDefaults{Level: sarifLevel(sev)}
	rule.Properties["security-severity"] = securitySeverity[sev]
	return rule
}

func ruleTags(meta check.Meta) []string {
	tags := []string{"security"}
	if meta.CWE != "" {
		tags = append(tags, meta.CWE, "external/cwe/"+strings.ToLower(meta.CWE))
	}
	return tags
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

// endpointMethod is the method of a finding's endpoint ("GET /items/{{id}}" gives GET).
func endpointMethod(f finding.Finding) string {
	method, _, ok := strings.Cut(f.Endpoint, " ")
	if !ok {
		return ""
	}
	return method
}

// endpointURI is the URL of a finding's endpoint: the origin the API was reached at and the probe's
// path template, braces percent-encoded so that the result is a valid URI. The origin comes from the
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
