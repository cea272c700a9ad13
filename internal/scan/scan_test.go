package scan_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/lab"
	"github.com/tocsin/tocsin/internal/redact"
	"github.com/tocsin/tocsin/internal/report"
	"github.com/tocsin/tocsin/internal/scan"
	"github.com/tocsin/tocsin/internal/target"
)

func labTarget(t *testing.T, opts lab.Options) *target.Target {
	_, tgt := startLab(t, opts)
	return tgt
}

// startLab starts a lab with opts and builds the target its own config describes.
func startLab(t *testing.T, opts lab.Options) (*lab.Lab, *target.Target) {
	t.Helper()
	l, err := lab.Start(context.Background(), "127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cfg, err := l.Config("lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := target.Build(context.Background(), cfg, &redact.Redactor{})
	if err != nil {
		t.Fatal(err)
	}
	return l, tgt
}

// On the fixed lab every configured check runs and passes, in config order, and the report adds up.
func TestFixedLabPasses(t *testing.T) {
	tgt := labTarget(t, lab.Options{Flavor: lab.Fixed, ActionGap: 5 * time.Millisecond})
	r, err := scan.Run(context.Background(), tgt, scan.Options{Name: "lab (fixed)", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Checks) != len(tgt.CheckOrder) {
		t.Fatalf("%d check results for %d configured checks", len(r.Checks), len(tgt.CheckOrder))
	}
	for i, c := range r.Checks {
		if c.ID != tgt.CheckOrder[i] {
			t.Errorf("check %d is %s, want %s (config order)", i, c.ID, tgt.CheckOrder[i])
		}
		if c.Status != report.StatusPassed || c.Requests == 0 {
			t.Errorf("%s: status %s (%s), %d requests; want passed with requests", c.ID, c.Status, c.Reason, c.Requests)
		}
	}
	if r.Summary.Total != 0 || len(r.Findings) != 0 || r.Findings == nil {
		t.Errorf("findings %v, summary %+v: want an empty, non-nil list", r.Findings, r.Summary)
	}
	if r.Schema != report.Schema || r.Requests < len(r.Checks) || !r.FinishedAt.After(r.StartedAt) {
		t.Errorf("report metadata %+v", r)
	}
}

// A check that cannot run on this target is reported as skipped with the reason, and the scan goes on.
func TestSkippedCheckIsReported(t *testing.T) {
	tgt := labTarget(t, lab.Options{Flavor: lab.Fixed})
	tgt.Identities["alice"].Revoke = nil
	r, err := scan.Run(context.Background(), tgt, scan.Options{Only: []string{"toctou/revoked-token-accepted", "toctou/scope-downgrade-ignored"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Checks[0]; got.Status != report.StatusSkipped || !strings.Contains(got.Reason, "no revoke hook") {
		t.Errorf("revoked-token-accepted: %+v, want skipped for the missing hook", got)
	}
	if got := r.Checks[1]; got.Status != report.StatusPassed {
		t.Errorf("the scan did not go on after the skip: %+v", got)
	}
}

func TestOnlyRefusesUnconfiguredChecks(t *testing.T) {
	tgt := labTarget(t, lab.Options{Flavor: lab.Fixed})
	_, err := scan.Run(context.Background(), tgt, scan.Options{Only: []string{"toctou/nope"}})
	if err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("err = %v, want a refusal naming the unconfigured check", err)
	}
}

// An interrupted scan returns what it found so far along with the error, so nothing is lost.
func TestInterruptedScanKeepsPartialReport(t *testing.T) {
	tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable, IntrospectionTTL: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	r, err := scan.Run(ctx, tgt, scan.Options{})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err = %v, want an interruption", err)
	}
	if r == nil || len(r.Checks) == 0 || r.Checks[0].Status != report.StatusError {
		t.Fatalf("partial report %+v, want the interrupted check recorded as an error", r)
	}
}

// A scan leaves the target as it found it: everything the probes' setups created and every account
// a login registered is removed, in both flavours, and also when the scan is interrupted halfway.
func TestScanLeavesNothingBehind(t *testing.T) {
	for _, tc := range []struct {
		flavor    string
		interrupt time.Duration // 0: let the scan finish
	}{
		{lab.Vulnerable, 0},
		{lab.Fixed, 0},
		{lab.Vulnerable, 1500 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("%s/interrupt=%s", tc.flavor, tc.interrupt), func(t *testing.T) {
			l, tgt := startLab(t, lab.Options{Flavor: tc.flavor, IntrospectionTTL: 300 * time.Millisecond, PermissionTTL: 300 * time.Millisecond, ActionGap: 20 * time.Millisecond})
			before := l.Resources()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.interrupt > 0 {
				time.AfterFunc(tc.interrupt, cancel)
			}
			r, _ := scan.Run(ctx, tgt, scan.Options{Name: "lab"})
			if r == nil {
				t.Fatal("no report")
			}
			if after := l.Resources(); !maps.Equal(before, after) {
				t.Errorf("resources before the scan %v, after %v: the scan left something behind", before, after)
			}
			if len(r.LeftOnTarget) > 0 {
				t.Errorf("report lists leftovers %+v", r.LeftOnTarget)
			}
			if tc.interrupt > 0 && (!r.Interrupted || r.Complete()) {
				t.Errorf("interrupted scan: interrupted=%v status=%s", r.Interrupted, r.Status)
			}
		})
	}
}
