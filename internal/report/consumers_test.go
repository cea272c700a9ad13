package report

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tocsin/tocsin/internal/testenv"
)

// The reports are checked with the tools their consumers trust, not only with our own reading of
// the standards: Microsoft's SARIF Multitool (with GitHub code scanning's rules) for SARIF, and the
// junit-10.xsd that Jenkins and most CI test views follow for JUnit XML.

const multitoolVersion = "5.7.0" // @microsoft/sarif-multitool, installed by scripts/test-deps.sh

// ValidateSARIFWithMultitool fails the test unless `Sarif.Multitool validate`, with the SARIF and
// GitHub rule sets, finds no error and no warning in data. It skips (or fails under make test)
// when the Multitool is not installed.
func ValidateSARIFWithMultitool(t *testing.T, data []byte) {
	t.Helper()
	tool := filepath.Join(testenv.NPMDir(), "node_modules", "@microsoft", "sarif-multitool-linux", "Sarif.Multitool")
	if st, err := os.Stat(tool); err != nil || st.Mode()&0o111 == 0 {
		testenv.Missing(t, "SARIF Multitool "+multitoolVersion,
			"npm install --prefix "+testenv.NPMDir()+" @microsoft/sarif-multitool@"+multitoolVersion+" (bash scripts/test-deps.sh does it)")
	}
	policy, err := filepath.Abs(filepath.Join("testdata", "sarif-multitool.config.xml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "tocsin.sarif"), filepath.Join(dir, "validation.sarif")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// The tool's npm wrapper hands its arguments to a shell, which splits "Sarif;Gh" at the
	// semicolon: the native program is run directly.
	cmd := exec.Command(tool, "validate", "--rule-kind", "Sarif;Gh", "--level", "Error;Warning", "--config", policy, "--output", out, in)
	// No ICU needed: a fresh machine may not have libicu.
	cmd.Env = append(os.Environ(), "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1", "DOTNET_CLI_TELEMETRY_OPTOUT=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("Sarif.Multitool validate: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID  string `json:"ruleId"`
				Level   string `json:"level"`
				Message struct {
					Text      string   `json:"text"`
					Arguments []string `json:"arguments"`
				} `json:"message"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(raw, &log); err != nil {
		t.Fatalf("the Multitool's own log: %v", err)
	}
	if len(log.Runs) == 0 {
		t.Fatal("the Multitool wrote no run: did it validate anything?")
	}
	for _, run := range log.Runs {
		for _, r := range run.Results {
			// A result with no level is a warning (SARIF's default).
			if r.Level == "" || r.Level == "error" || r.Level == "warning" {
				t.Errorf("Multitool %s %s: %s %s", r.Level, r.RuleID, r.Message.Text, strings.Join(r.Message.Arguments, " | "))
			}
		}
	}
}

// ValidateJUnitXSD fails the test unless data is valid against testdata/junit-10.xsd, checked with
// xmllint (Debian's libxml2-utils).
func ValidateJUnitXSD(t *testing.T, data []byte) {
	t.Helper()
	xmllint := testenv.LookPath(t, "apt-get install libxml2-utils", "xmllint", "/usr/bin/xmllint")
	xsd, err := filepath.Abs(filepath.Join("testdata", "junit-10.xsd"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(xmllint, "--noout", "--nonet", "--schema", xsd, file).CombinedOutput(); err != nil {
		t.Errorf("JUnit XML is not valid against junit-10.xsd: %v\n%s", err, b)
	}
}

func TestGoldenSARIFPassesMultitool(t *testing.T) {
	// A release build knows where tocsin lives (make build sets it); the log then names it.
	defer func(u string) { HomeURL = u }(HomeURL)
	HomeURL = "https://tocsin.example/"
	ValidateSARIFWithMultitool(t, render(t, "sarif", goldenReports()))
}

func TestGoldenJUnitPassesXSD(t *testing.T) {
	ValidateJUnitXSD(t, render(t, "junit", goldenReports()))
}
