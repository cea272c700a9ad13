package scan_test

import (
	"context"
	"maps"
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
