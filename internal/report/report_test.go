package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tocsin/tocsin/internal/finding"
)

// Redact reaches every text that may quote the target or the config, so that no format shows a
// secret a check forgot to redact.
func TestRedactReachesEveryText(t *testing.T) {
	const secret = "S3CRET-value"
	s := "x " + secret + " y"
	r := &Report{
		Schema:          Schema,
		RestoreFailures: []RestoreFailure{{Identity: "alice", State: s, Manual: s, Error: s}},
		LeftOnTarget:    []Leftover{{Check: "c", What: s, Reason: s}},
		Checks: []CheckResult{{ID: "race/limit-overrun", Status: StatusError, Reason: s, Endpoints: []string{s},
			Experiments: []Experiment{{Probe: "p", Endpoint: s, Verdict: "error", Reason: s}}}},
		Findings: []finding.Finding{{ID: "TOC-1", Check: "race/limit-overrun", Endpoint: s, Summary: s, SeverityReason: s,
			Evidence: []finding.Event{{Detail: s, HTTP: &finding.Exchange{Method: "GET", URL: s, BodyExcerpt: s}}}}},
	}
	shared := r.Findings[0].Evidence[0].HTTP
	r.Redact(func(x string) string { return strings.ReplaceAll(x, secret, "[key:00000000]") })
	r.Finish()
	for _, format := range Formats {
		var b bytes.Buffer
		if err := Write(&b, format, Options{}, r); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), secret) {
			t.Errorf("%s report holds the secret", format)
		}
	}
	if shared.URL != s {
		t.Error("Redact changed an exchange it does not own")
	}
}
