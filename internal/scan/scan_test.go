package scan_test

import (
	"context"
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
	return tgt
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
