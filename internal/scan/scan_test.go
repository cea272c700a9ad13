package scan_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/config"
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
	return l, buildTarget(t, l, l.ConfigYAML())
}

// buildTarget builds a target of l from a config of it (its own, or one a test changed), with
// the lab's secrets; each has its own client, so its own request budget.
func buildTarget(t *testing.T, l *lab.Lab, yaml []byte) *target.Target {
	t.Helper()
	env := l.Env()
	cfg, err := config.Parse("lab.yaml", yaml, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
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

// A scan leaves the target as it found it: everything the probes' setups created and every account
// a login registered is removed, in both flavours, and also when the scan is interrupted halfway.
// The same scans show that every finding's evidence comes in time order (the full vulnerable scan
// runs every check, so every kind of finding is there).
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
			// Every finding's evidence reads as a timeline: in time order, whichever check wrote it.
			if n := assertEvidenceInOrder(t, r); tc.flavor == lab.Vulnerable && tc.interrupt == 0 && n < 2 {
				t.Errorf("only %d finding(s) with two evidence events or more: the order of evidence was hardly tested", n)
			}
		})
	}
}

// assertEvidenceInOrder fails t unless every finding's evidence is in time order, both in r and in
// the JSON written from it (what a reader of the report replays). It returns how many findings have
// two events or more, so that a caller can tell an assertion that held from one that had nothing to
// look at.
func assertEvidenceInOrder(t *testing.T, r *report.Report) (timelines int) {
	t.Helper()
	for _, f := range r.Findings {
		for i := 1; i < len(f.Evidence); i++ {
			if prev, e := f.Evidence[i-1], f.Evidence[i]; e.AtMS < prev.AtMS {
				t.Errorf("%s (%s %s): evidence event %d (%s at %.3f ms) comes after event %d (%s at %.3f ms)",
					f.ID, f.Check, f.Endpoint, i+1, e.Kind, e.AtMS, i, prev.Kind, prev.AtMS)
				break // one is enough to read
			}
		}
		if len(f.Evidence) > 1 {
			timelines++
		}
	}
	var buf bytes.Buffer
	if err := report.WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var rendered struct {
		Findings []struct {
			ID       string `json:"id"`
			Evidence []struct {
				AtMS *float64 `json:"at_ms"`
				Kind string   `json:"kind"`
			} `json:"evidence"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(buf.Bytes(), &rendered); err != nil {
		t.Fatal(err)
	}
	if len(rendered.Findings) != len(r.Findings) {
		t.Fatalf("the JSON holds %d findings, the report %d", len(rendered.Findings), len(r.Findings))
	}
	for i, f := range rendered.Findings {
		if len(f.Evidence) != len(r.Findings[i].Evidence) {
			t.Errorf("%s: %d evidence events in the JSON, %d in the report", f.ID, len(f.Evidence), len(r.Findings[i].Evidence))
		}
		for j, e := range f.Evidence {
			if e.AtMS == nil {
				t.Errorf("%s: evidence event %d (%s) has no at_ms in the JSON", f.ID, j+1, e.Kind)
			} else if j > 0 && f.Evidence[j-1].AtMS != nil && *e.AtMS < *f.Evidence[j-1].AtMS {
				t.Errorf("%s: in the JSON, evidence event %d (%s at %v ms) comes after event %d (at %v ms)", f.ID, j+1, e.Kind, *e.AtMS, j, *f.Evidence[j-1].AtMS)
				break
			}
		}
	}
	return timelines
}
