package scan_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/lab"
	"github.com/tocsin/tocsin/internal/report"
	"github.com/tocsin/tocsin/internal/scan"
)

// Each check, run alone on the vulnerable lab (where it finds what it looks for, so that its setups,
// its changes and its teardowns all run), leaves the lab's resources as it found them. A whole scan
// that leaves nothing behind could still hide a check that leaves something another check removes;
// one check at a time, the one that leaks is named. One lab serves every check; each scan has a
// target of its own, so a request budget of its own.
func TestEachCheckLeavesNothingBehind(t *testing.T) {
	l, tgt := startLab(t, lab.Options{Flavor: lab.Vulnerable, IntrospectionTTL: 300 * time.Millisecond, PermissionTTL: 300 * time.Millisecond, ActionGap: 20 * time.Millisecond})
	for _, id := range tgt.CheckOrder {
		t.Run(id, func(t *testing.T) {
			before := l.Resources()
			r, err := scan.Run(context.Background(), buildTarget(t, l, l.ConfigYAML()), scan.Options{Name: "lab", Only: []string{id}})
			if err != nil {
				t.Fatal(err)
			}
			if after := l.Resources(); !maps.Equal(before, after) {
				t.Errorf("resources before %v, after %v: %s left something behind", before, after, id)
			}
			if len(r.LeftOnTarget) > 0 {
				t.Errorf("report lists leftovers %+v", r.LeftOnTarget)
			}
			if len(r.Checks) != 1 || r.Checks[0].ID != id {
				t.Fatalf("checks run %+v, want %s alone", r.Checks, id)
			}
			if c := r.Checks[0]; c.Status != report.StatusFailed {
				t.Errorf("status %s (%s), want a finding on the vulnerable lab: a check that stopped early proves little about its cleanup", c.Status, c.Reason)
			}
			assertEvidenceInOrder(t, r)
		})
	}
}

// A probe whose setup creates a resource and whose teardown fails leaves that resource on the target;
// the scan says so in the report (left_on_target in the JSON, its own heading in the text, before
// the findings) with as many resources as the lab really kept, and does not report a clean target.
func TestFailedTeardownIsLeftOnTarget(t *testing.T) {
	const checkID = "auth/missing" // sends read-item, whose setup creates an item
	for _, tc := range []struct {
		name     string
		from, to string // read-item's teardown, as the lab's config writes it and as this test breaks it
		status   string // what the lab answers the broken teardown
	}{
		{"wrong method", "method: DELETE", "method: PATCH", "405"},
		{"wrong path", "path: /items/{{item_id}}", "path: /item/{{item_id}}", "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := lab.Start(context.Background(), "127.0.0.1:0", lab.Options{Flavor: lab.Vulnerable})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			yaml := breakTeardown(t, string(l.ConfigYAML()), "read-item", tc.from, tc.to)
			tgt := buildTarget(t, l, []byte(yaml))

			before := l.Resources()
			r, err := scan.Run(context.Background(), tgt, scan.Options{Name: "lab", Only: []string{checkID}})
			if err != nil {
				t.Fatal(err)
			}
			kept := 0
			for k, n := range l.Resources() {
				kept += n - before[k]
			}
			if kept <= 0 {
				t.Fatalf("the lab kept %d resources: the broken teardown did not leave anything, so the test proves nothing", kept)
			}

			if len(r.LeftOnTarget) != 1 {
				t.Fatalf("left on target %+v, want the %d item(s) read-item's setup created", r.LeftOnTarget, kept)
			}
			left := r.LeftOnTarget[0]
			if left.Check != checkID || left.Probe != "read-item" || left.Count != kept || !strings.Contains(left.Reason, tc.status) {
				t.Errorf("leftover %+v, want %d by %s's read-item, with the %s the teardown got", left, kept, checkID, tc.status)
			}

			var buf bytes.Buffer
			if err := report.WriteJSON(&buf, r); err != nil {
				t.Fatal(err)
			}
			var rendered struct {
				LeftOnTarget []report.Leftover `json:"left_on_target"`
			}
			if err := json.Unmarshal(buf.Bytes(), &rendered); err != nil {
				t.Fatal(err)
			}
			if len(rendered.LeftOnTarget) != 1 || rendered.LeftOnTarget[0] != left {
				t.Errorf("left_on_target in the JSON %+v, want %+v", rendered.LeftOnTarget, left)
			}

			buf.Reset()
			if err := report.WriteText(&buf, r, report.Options{}); err != nil {
				t.Fatal(err)
			}
			text := buf.String()
			heading := strings.Index(text, "Left on the target (remove by hand):")
			if heading < 0 {
				t.Fatalf("the text report has no heading for what was left:\n%s", text)
			}
			listed := heading + strings.Index(text[heading:], "read-item")
			if listed < heading || listed > strings.Index(text, "\nChecks:") {
				t.Errorf("the text report's heading does not list read-item before the checks:\n%s", text)
			}
			for _, f := range r.Findings {
				if at := strings.Index(text, f.ID); at < heading {
					t.Errorf("the text report shows finding %s at %d, not after what was left:\n%s", f.ID, at, text)
				}
			}
		})
	}
}

// breakTeardown returns config with from replaced by to in the teardown of the probe named probe,
// and fails t if the config does not write that teardown as expected.
func breakTeardown(t *testing.T, config, probe, from, to string) string {
	t.Helper()
	start := strings.Index(config, "\n  "+probe+":\n")
	if start < 0 {
		t.Fatalf("the lab's config has no probe %s", probe)
	}
	end := strings.Index(config[start+1:], "\n\n")
	if end < 0 {
		t.Fatalf("probe %s is not followed by a blank line", probe)
	}
	block := config[start : start+1+end]
	td := strings.Index(block, "    teardown:\n")
	if td < 0 || !strings.Contains(block[td:], from) {
		t.Fatalf("probe %s has no teardown with %q:\n%s", probe, from, block)
	}
	broken := block[:td] + strings.Replace(block[td:], from, to, 1)
	return config[:start] + broken + config[start+len(block):]
}
