package report

import (
	"strings"
	"testing"
)

// The surface section appears in JSON (valid against the schema), text and HTML, with every
// operation's status and why.
func TestSurfaceSection(t *testing.T) {
	r := goldenReports()[1]
	r.Surface = &Surface{
		Sources: []string{"openapi: spec.yaml (OpenAPI 3.1.0)"},
		Notes:   []string{"2 recorded request(s) to https://cdn.example left out: not an allowed origin"},
		Operations: []Operation{
			{ID: "getItem", Endpoint: "GET /items/{id}", Status: OperationTested, Probe: "getItem", How: "setup: POST /items",
				Checks: []OperationCheck{{Check: "toctou/revoked-token-accepted", Why: "as alice: a GET that needs items:read"}}},
			{ID: "health", Endpoint: "GET /healthz", Status: OperationPublic},
			{ID: "deleteItem", Endpoint: "DELETE /items/{id}", Status: OperationNotTested, Reason: "a write (DELETE), not allowed by destructive"},
		},
		Unselected: []Unselected{{Check: "race/limit-overrun", Reason: "no operation is marked single_use"}},
	}
	js := render(t, "json", []*Report{r})
	ValidateReportJSON(t, js)
	for format, wants := range map[string][]string{
		"json": {`"status": "not-tested"`, `"why": "as alice: a GET that needs items:read"`},
		"text": {"Surface (openapi: spec.yaml (OpenAPI 3.1.0)): 3 operations: 1 tested, 1 public, 1 not tested", "not tested  DELETE /items/{id} (deleteItem)", "no operation for race/limit-overrun"},
		"html": {"<h3>Surface</h3>", "<code>GET /healthz</code>", "not allowed by destructive"},
	} {
		out := string(render(t, format, []*Report{r}))
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("%s lacks %q", format, w)
			}
		}
	}
}
