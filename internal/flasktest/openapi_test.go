//go:build unix

package flasktest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/check"
)

// openapiConfig is testdata/flask-api/tocsin.yaml with its probes and checks replaced by the app's
// OpenAPI document: the identities and their hooks, and nothing about requests.
func openapiConfig(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	y := string(data)
	i := strings.Index(y, "\nprobes:")
	if i < 0 {
		t.Fatal("tocsin.yaml has no probes section")
	}
	y = y[:i+1]
	y = strings.Replace(y, "    downgrade:", "    downgrade:\n      removes: [reports:read]", 1)
	spec, err := filepath.Abs(filepath.Join(appDir, "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(y + "openapi:\n  source: " + spec + "\n  destructive: [createItem, deleteItem]\n")
}

// The Flask app's OpenAPI document is enough for the checks to pick their operations: the vulnerable
// mode gives exactly the findings its flaws imply, the fixed mode none.
func TestFlaskFromOpenAPI(t *testing.T) {
	type key struct{ check, endpoint string }
	for _, tc := range []struct {
		settings map[string]string
		want     []key
	}{
		{map[string]string{"FLASK_MODE": "vulnerable", "FLASK_INTROSPECTION_TTL": "0.5", "FLASK_PERMISSION_TTL": "0.5"}, []key{
			{checkRevoked, "GET /items/{{item_id}}"},
			{checkRevoked, "GET /reports/summary"},
			{checkDowngrade, "GET /reports/summary"},
			{checkInflight, "DELETE /items/{{item_id}}"},
			// The daily report forgot its authentication: its document says it needs reports:read.
			{"auth/missing", "GET /reports/daily"}, {"auth/missing", "GET /reports/daily"}, {"auth/missing", "GET /reports/daily"},
		}},
		{map[string]string{"FLASK_MODE": "fixed"}, nil},
	} {
		t.Run(tc.settings["FLASK_MODE"], func(t *testing.T) {
			app := startFlask(t, tc.settings)
			start := time.Now()
			rep := scanFlaskWith(t, app, openapiConfig(t))
			var got []key
			for _, f := range rep.Findings {
				got = append(got, key{f.Check, f.Endpoint})
			}
			less := func(a, b key) int { return strings.Compare(a.check+" "+a.endpoint, b.check+" "+b.endpoint) }
			slices.SortFunc(got, less)
			slices.SortFunc(tc.want, less)
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings %v, want %v:%s", got, tc.want, summaries(rep))
			}
			for _, c := range rep.Checks {
				for _, x := range c.Experiments {
					// On the daily report the TOCTOU checks' controls see no authentication at all:
					// inconclusive, which is auth/missing's finding, not theirs.
					daily := x.Probe == "getDailyReport" && tc.settings["FLASK_MODE"] == "vulnerable" && c.ID != "auth/missing"
					if !check.Verdict(x.Verdict).Reached() || (x.Verdict == "inconclusive") != daily {
						t.Errorf("%s on %s: %s (%s)", c.ID, x.Probe, x.Verdict, x.Reason)
					}
				}
			}
			if !rep.Complete() || rep.Surface == nil {
				t.Fatalf("status %s, surface %v", rep.Status, rep.Surface)
			}
			tested, public, _ := rep.Surface.Count()
			if tested != 4 || public != 1 {
				t.Errorf("surface: %s; want getItem, deleteItem, getReportSummary and getDailyReport tested, healthz public", rep.Surface.Line())
			}
			t.Logf("%s in %.1f s", rep.Surface.Line(), time.Since(start).Seconds())
		})
	}
}
