package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/report"
)

func savedReport(t *testing.T, dir string, array bool) string {
	t.Helper()
	r := &report.Report{
		Schema:    report.Schema,
		Tool:      report.Tool{Name: "tocsin", Version: "test"},
		Target:    report.Target{Name: "saved", Origins: []string{"http://127.0.0.1:1"}},
		StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Checks:    []report.CheckResult{{ID: "toctou/revoked-token-accepted", Title: "Revoked token still accepted", Status: report.StatusFailed, Findings: 1}},
		Findings: []finding.Finding{{
			ID: finding.StableID("toctou/revoked-token-accepted", "GET /x", "alice"), Check: "toctou/revoked-token-accepted",
			Title: "Revoked token still accepted", Severity: finding.Medium, Endpoint: "GET /x", Summary: "still honoured",
			Remediation: "re-check",
		}},
	}
	// Score and summary are left empty on purpose: the command recomputes them.
	var v any = r
	if array {
		v = []*report.Report{r, r}
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "report.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestReportConvertsEveryFormat(t *testing.T) {
	dir := t.TempDir()
	for _, array := range []bool{false, true} {
		in := savedReport(t, dir, array)
		for format, want := range map[string]string{
			"text":  "score 85/100, grade B",
			"json":  `"grade": "B"`,
			"sarif": `"version": "2.1.0"`,
			"junit": "<testsuites",
			"html":  "<!DOCTYPE html>",
		} {
			out := filepath.Join(dir, "out."+format)
			code, _, stderr := runCLI("report", "-i", in, "--format", format, "-o", out)
			if code != ExitOK {
				t.Fatalf("%s (array %v): exit %d: %s", format, array, code, stderr)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), want) {
				t.Errorf("%s (array %v): output lacks %q", format, array, want)
			}
			if n := strings.Count(string(data), "TOC-"); array && format != "text" && format != "json" && n < 2 {
				t.Errorf("%s of two reports mentions the finding %d times", format, n)
			}
		}
	}
}

func TestReportFailOn(t *testing.T) {
	in := savedReport(t, t.TempDir(), false)
	if code, _, stderr := runCLI("report", "-i", in, "--fail-on", "medium"); code != ExitFindings {
		t.Errorf("--fail-on medium with a medium finding: exit %d, want %d (%s)", code, ExitFindings, stderr)
	}
	if code, _, _ := runCLI("report", "-i", in, "--fail-on", "high"); code != ExitOK {
		t.Errorf("--fail-on high with a medium finding: exit %d, want 0", code)
	}
}

func TestReportBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no input", []string{"report"}, "no input report"},
		{"missing file", []string{"report", "-i", filepath.Join(dir, "nope.json")}, "read report"},
		{"not JSON", []string{"report", "-i", write("a.yaml", "schema: tocsin.report/v1\n")}, "is not JSON"},
		{"broken JSON", []string{"report", "-i", write("b.json", `{"schema": "tocsin.report/v1",`)}, "not valid JSON"},
		{"wrong schema", []string{"report", "-i", write("c.json", `{"schema": "tocsin.report/v9"}`)}, `has schema "tocsin.report/v9"`},
		{"no schema", []string{"report", "-i", write("d.json", `{"version": "2.1.0", "runs": []}`)}, `no "schema" field`},
		{"wrong type", []string{"report", "-i", write("e.json", `{"schema": "tocsin.report/v1", "findings": "none"}`)}, "does not look like a tocsin report"},
		{"empty array", []string{"report", "-i", write("f.json", `[]`)}, "empty array"},
		{"second report bad", []string{"report", "-i", write("g.json", `[{"schema": "tocsin.report/v1"}, {"schema": "x"}]`)}, "report 2"},
		{"bad format", []string{"report", "-i", write("h.json", `{"schema": "tocsin.report/v1"}`), "--format", "pdf"}, "unknown format"},
	} {
		code, _, stderr := runCLI(tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.name, code, stderr, ExitUsage, tc.want)
		}
	}
}
