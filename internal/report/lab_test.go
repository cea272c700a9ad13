package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/lab"
	"github.com/tocsin/tocsin/internal/redact"
	"github.com/tocsin/tocsin/internal/report"
	"github.com/tocsin/tocsin/internal/scan"
	"github.com/tocsin/tocsin/internal/target"
)

// labScan is one full scan of the vulnerable lab, shared by the tests below: it is the slow part.
type labScan struct {
	report  *report.Report
	secrets map[string]string // secret -> where it came from, for the failure message
	err     error
}

var (
	labOnce   sync.Once
	labResult labScan
)

func scanVulnerableLab(t *testing.T) labScan {
	t.Helper()
	if testing.Short() {
		t.Skip("scans the lab")
	}
	labOnce.Do(func() { labResult = runLabScan() })
	if labResult.err != nil {
		t.Fatal(labResult.err)
	}
	return labResult
}

func runLabScan() labScan {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Short caches keep the scan to a few seconds; the windows are still well over the measurement's
	// precision, so both staleness checks find what they find in the demo.
	l, err := lab.Start(ctx, "127.0.0.1:0", lab.Options{Flavor: "vulnerable", IntrospectionTTL: 400 * time.Millisecond, PermissionTTL: 400 * time.Millisecond})
	if err != nil {
		return labScan{err: err}
	}
	defer l.Close()
	env := l.Env()
	cfg, err := l.Config("lab.yaml")
	if err != nil {
		return labScan{err: err}
	}
	cfg.Limits.MaxWindow = 15 * time.Second // generous under -race; the lab's windows are under a second
	red := &redact.Redactor{}
	tgt, err := target.Build(ctx, cfg, red)
	if err != nil {
		return labScan{err: err}
	}
	locate := func(probe string) *finding.Location {
		k, ok := cfg.Key("probes." + probe)
		if !ok {
			return nil
		}
		return &finding.Location{File: "lab.yaml", Line: k.Line, Column: k.Column, EndColumn: k.EndColumn}
	}
	r, err := scan.Run(ctx, tgt, scan.Options{Name: "lab (vulnerable)", Version: "test", Locate: locate})
	if err != nil {
		return labScan{err: err}
	}
	secrets := map[string]string{"alice-password": "alice's password", "bob-password": "bob's password"}
	for name, v := range env {
		secrets[v] = name
	}
	for _, s := range red.Secrets() {
		if _, ok := secrets[s]; !ok {
			secrets[s] = "registered with the redactor (" + red.Label(s) + ")"
		}
		// A JWT's signature is as secret as the token: a writer that split tokens must not leak it.
		if parts := strings.Split(s, "."); len(parts) == 3 && len(parts[2]) >= 16 {
			secrets[parts[2]] = "the signature of " + red.Label(s)
		}
	}
	return labScan{report: r, secrets: secrets}
}

// No token, client secret, admin key or password the scan used may appear in any format.
func TestNoSecretInAnyFormat(t *testing.T) {
	ls := scanVulnerableLab(t)
	r := ls.report
	for _, id := range []string{"toctou/revoked-token-accepted", "toctou/scope-downgrade-ignored"} {
		found := false
		for _, c := range r.Checks {
			if c.ID == id {
				found = c.Status == report.StatusFailed
			}
		}
		if !found {
			t.Errorf("%s did not find the vulnerable lab's flaw (checks %+v): the reports would not exercise evidence", id, r.Checks)
		}
	}
	// Proof the list is real: the identities minted several tokens, each registered for redaction.
	tokens := 0
	for _, where := range ls.secrets {
		if strings.Contains(where, "[token:") && !strings.HasPrefix(where, "the signature") {
			tokens++
		}
	}
	if tokens < 4 {
		t.Fatalf("only %d tokens registered with the redactor; the test would prove nothing", tokens)
	}
	for _, format := range report.Formats {
		var buf bytes.Buffer
		if err := report.Write(&buf, format, report.Options{}, r); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		out := buf.String()
		if len(r.Findings) > 0 && !strings.Contains(out, r.Findings[0].ID) {
			t.Errorf("%s output lacks finding %s: is it the report?", format, r.Findings[0].ID)
		}
		for secret, where := range ls.secrets {
			if redact.Shows(out, secret) {
				t.Errorf("%s output contains a secret: %s (%q)", format, where, secret)
			}
		}
	}
}

func TestRealReportMatchesSchemas(t *testing.T) {
	r := scanVulnerableLab(t).report
	for _, rs := range [][]*report.Report{{r}, {r, r}} {
		var js, sarif bytes.Buffer
		if err := report.Write(&js, "json", report.Options{}, rs...); err != nil {
			t.Fatal(err)
		}
		report.ValidateReportJSON(t, js.Bytes())
		if err := report.Write(&sarif, "sarif", report.Options{}, rs...); err != nil {
			t.Fatal(err)
		}
		report.ValidateSARIF(t, sarif.Bytes())
	}
	// What code scanning and CI test views would be handed, checked with the tools they trust.
	defer func(u string) { report.HomeURL = u }(report.HomeURL)
	report.HomeURL = "https://tocsin.example/"
	for _, f := range r.Findings {
		if f.Location == nil {
			t.Errorf("finding %s (probe %q) has no location: code scanning would refuse it", f.ID, f.Probe)
		}
	}
	var sarif, junit bytes.Buffer
	if err := report.Write(&sarif, "sarif", report.Options{}, r); err != nil {
		t.Fatal(err)
	}
	report.ValidateSARIFWithMultitool(t, sarif.Bytes())
	if err := report.Write(&junit, "junit", report.Options{}, r, r); err != nil {
		t.Fatal(err)
	}
	report.ValidateJUnitXSD(t, junit.Bytes())
	// A report read back from its JSON writes the same JSON: nothing is lost, so what `tocsin report`
	// converts is the whole report. (Other formats may differ in the last digits: JSON keeps evidence
	// offsets to the microsecond.)
	var js bytes.Buffer
	if err := report.Write(&js, "json", report.Options{}, r); err != nil {
		t.Fatal(err)
	}
	var back report.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := report.Write(&again, "json", report.Options{}, &back); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js.Bytes(), again.Bytes()) {
		t.Error("the JSON of the report read back from JSON differs from the original")
	}
}

func TestRealReportHTMLInChromium(t *testing.T) {
	r := scanVulnerableLab(t).report
	var buf bytes.Buffer
	if err := report.WriteHTML(&buf, []*report.Report{r}); err != nil {
		t.Fatal(err)
	}
	facts := report.CheckHTMLInChromium(t, buf.Bytes(), []*report.Report{r}, filepath.Join(t.TempDir(), "lab.png"))
	// Each staleness finding closes its window in the lab: a bracket, and replays on both sides of it.
	if facts.Brackets < 2 || facts.Accepted == 0 || facts.Rejected == 0 {
		t.Errorf("timelines of the lab's findings: %+v; want a bracket per staleness finding and both kinds of replay", facts)
	}
}
