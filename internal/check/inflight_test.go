package check_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/lab"
)

// The vulnerable lab with its caches off has only the in-flight flaw: the DELETE is authorized when it
// arrives and commits a gap later, whatever happened in between.
func TestInflightRevocationVulnerable(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: "vulnerable", IntrospectionTTL: -1, PermissionTTL: -1, ActionGap: 100 * time.Millisecond})
	fs := runCheck(t, check.InflightRevocation{}, tgt)
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want exactly 1: %+v", len(fs), fs)
	}
	f := fs[0]
	in := f.Inflight
	if f.Check != "toctou/inflight-revocation" || f.Severity != finding.High || in == nil {
		t.Fatalf("unexpected finding %+v", f)
	}
	// The proof's order of events: acknowledgement, then a read that still found the resource, then
	// the action's success.
	if !(in.AckMS < in.VerifyMS && in.VerifyMS < in.AnsweredMS) {
		t.Errorf("timeline out of order: ack %.2f, verify %.2f, answered %.2f", in.AckMS, in.VerifyMS, in.AnsweredMS)
	}
	if !in.RefusedAfterRevocation {
		t.Errorf("with no cache, a token revoked before the action must be refused; the control says otherwise")
	}
	if in.ActionLatencyMS < 100 || in.ActionLatencyMS > 1000 {
		t.Errorf("action latency %.1f ms, want about the lab's 100 ms gap", in.ActionLatencyMS)
	}
	if len(in.RevokeOffsetsHitMS) == 0 || in.Attempts < 1 {
		t.Errorf("no offsets or attempts recorded: %+v", in)
	}
	kinds := map[string]int{}
	for _, e := range f.Evidence {
		kinds[e.Kind]++
	}
	for _, k := range []string{finding.EventAction, finding.EventChangeAcked, finding.EventVerify, finding.EventAnswered} {
		if kinds[k] == 0 {
			t.Errorf("evidence lacks %q: %+v", k, f.Evidence)
		}
	}
	// The controls that make the claim mean something: the action refused with no token and with a
	// garbage one, sent (in the first attempt) before the proving attempt's action.
	var controls []string
	actionAt := 0.0
	for _, e := range f.Evidence {
		if e.Kind == finding.EventAction {
			actionAt = e.AtMS
		}
	}
	for _, e := range f.Evidence {
		if e.Kind != finding.EventControl {
			continue
		}
		controls = append(controls, e.Detail)
		if e.HTTP == nil || e.HTTP.Method != "DELETE" || e.HTTP.Outcome != "rejected" || e.AtMS >= actionAt {
			t.Errorf("control event %+v (http %+v): want the DELETE, refused, before the action", e, e.HTTP)
		}
	}
	if fmt.Sprint(controls) != "[with no token with a garbage token]" {
		t.Errorf("control events %q; want the action with no token and with a garbage token", controls)
	}
}

// An action too slow to keep the verify read primed (servers time out unfinished headers) is still
// proven, with the read sent through the HTTP client after the acknowledgement; and the fixed lab
// still passes that way.
func TestInflightRevocationUnprimedVerify(t *testing.T) {
	defer check.SetMaxPrimedVerifyWait(0)()
	_, tgt := labTarget(t, lab.Options{Flavor: "vulnerable", IntrospectionTTL: -1, PermissionTTL: -1, ActionGap: 50 * time.Millisecond})
	fs := runCheck(t, check.InflightRevocation{}, tgt)
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want exactly 1: %+v", len(fs), fs)
	}
	if in := fs[0].Inflight; !(in.AckMS < in.VerifyMS && in.VerifyMS < in.AnsweredMS) {
		t.Errorf("timeline out of order: ack %.2f, verify %.2f, answered %.2f", in.AckMS, in.VerifyMS, in.AnsweredMS)
	}
	_, fixed := labTarget(t, lab.Options{Flavor: "fixed", ActionGap: 50 * time.Millisecond})
	if fs := runCheck(t, check.InflightRevocation{}, fixed); len(fs) != 0 {
		t.Fatalf("fixed lab: got %d findings, want none: %+v", len(fs), fs)
	}
}

// The vulnerable lab as the demo runs it: the introspection cache also keeps a revoked token alive, and
// the finding says so.
func TestInflightRevocationVulnerableWithCache(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: "vulnerable"})
	fs := runCheck(t, check.InflightRevocation{}, tgt)
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want exactly 1: %+v", len(fs), fs)
	}
	if fs[0].Inflight.RefusedAfterRevocation {
		t.Errorf("the cached lab accepted nothing after revocation? %+v", fs[0].Inflight)
	}
}

// The fixed lab passes both ways a correct API can: a revocation that arrives first refuses the action,
// one that arrives during it waits for it, so the read after the acknowledgement finds it done.
func TestInflightRevocationFixed(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: "fixed", ActionGap: 100 * time.Millisecond})
	if fs := runCheck(t, check.InflightRevocation{}, tgt); len(fs) != 0 {
		t.Fatalf("fixed lab: got %d findings, want none: %+v", len(fs), fs)
	}
}

// A revocation hook that fails is the cause the check reports, with what to do about the hook; the
// action's own connection, which a stalled hook leaves waiting past its timeout, is not blamed on the
// target's HTTP/1.1. One hook stalls past limits.timeout, one answers 500, and one acknowledges so
// late that the action primed before it (the control attempt's) outlives its connection's deadline.
func TestInflightRevocationHookFails(t *testing.T) {
	done := make(chan struct{})
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stall":
			select { // never answers
			case <-r.Context().Done():
			case <-done:
			}
		case "/slow":
			// 0.8 s of the 1 s timeout: the action, primed before this and taking 0.3 s, cannot
			// finish within its connection's second however the machine schedules.
			select {
			case <-time.After(800 * time.Millisecond):
				w.WriteHeader(http.StatusOK)
			case <-r.Context().Done():
			case <-done:
			}
		default:
			http.Error(w, "revocation store unavailable", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(hooks.Close)
	t.Cleanup(func() { close(done) }) // before Close, which waits for the stalled handlers
	for _, tc := range []struct {
		path string
		gap  time.Duration
	}{{"stall", 20 * time.Millisecond}, {"fail", 20 * time.Millisecond}, {"slow", 300 * time.Millisecond}} {
		t.Run(tc.path, func(t *testing.T) {
			_, tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable, IntrospectionTTL: -1, PermissionTTL: -1, ActionGap: tc.gap}, func(c *config.Config) {
				c.Limits.Timeout = time.Second // how long the stalled hook is waited for
				c.Target.Origins = append(c.Target.Origins, hooks.URL)
				c.Identities["alice"].Revoke = &config.Hook{HTTP: &config.HTTPHook{Method: http.MethodPost, URL: hooks.URL + "/" + tc.path, Body: "token={{token}}", Expect: []int{200}}}
			})
			fs, xs, err := runRecorded(t, check.InflightRevocation{}, tgt)
			if err != nil || len(fs) != 0 || len(xs) != 1 {
				t.Fatalf("findings %+v, experiments %+v, err %v; want one experiment, no finding", fs, xs, err)
			}
			reason := xs[0].Reason
			if xs[0].Verdict != check.Errored || !strings.Contains(reason, "revocation") || !strings.Contains(reason, "identities.alice.revoke") || strings.Contains(reason, "HTTP/1.1") {
				t.Fatalf("verdict %s (%s); want error naming the revocation hook, not HTTP/1.1", xs[0].Verdict, reason)
			}
		})
	}
}

// BenchmarkInflightGap reports how often one scan proves the in-flight flaw on the vulnerable lab
// (caches off) as its check-to-use gap shrinks, and the attempts a proof takes. The figure is
// the smallest gap proven in >= 95% of 20 scans: go test -run '^$' -bench InflightGap -benchtime 20x.
func BenchmarkInflightGap(b *testing.B) {
	for _, gap := range []time.Duration{20 * time.Millisecond, 5 * time.Millisecond, time.Millisecond, 500 * time.Microsecond, 200 * time.Microsecond, 100 * time.Microsecond, 50 * time.Microsecond} {
		b.Run(fmt.Sprintf("gap=%s", gap), func(b *testing.B) {
			_, tgt := labTarget(b, lab.Options{Flavor: "vulnerable", IntrospectionTTL: -1, PermissionTTL: -1, ActionGap: gap}, func(c *config.Config) {
				c.Limits.RequestBudget = 1_000_000 // a scan that proves nothing spends about 100 requests
			})
			var proven, attempts float64
			for b.Loop() {
				fs := runCheck(b, check.InflightRevocation{}, tgt)
				if len(fs) == 1 {
					proven++
					attempts += float64(fs[0].Inflight.Attempts)
				}
			}
			b.ReportMetric(100*proven/float64(b.N), "%proven")
			if proven > 0 {
				b.ReportMetric(attempts/proven, "attempts/proof")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkInflightFixedFalsePositives counts findings on the fixed lab, which must have none: the
// issue asks for 0 over 100 scans (-benchtime 100x). A short gap keeps each scan quick and puts the
// revocation right against the action, where a timing-based oracle would be fooled.
func BenchmarkInflightFixedFalsePositives(b *testing.B) {
	_, tgt := labTarget(b, lab.Options{Flavor: "fixed", ActionGap: 2 * time.Millisecond}, func(c *config.Config) {
		c.Limits.RequestBudget = 1_000_000 // about 100 requests a scan
		c.Limits.Rate = 2000
	})
	var falsePositives float64
	for b.Loop() {
		falsePositives += float64(len(runCheck(b, check.InflightRevocation{}, tgt)))
	}
	b.ReportMetric(falsePositives, "false-positives")
	b.ReportMetric(float64(b.N), "scans")
	b.ReportMetric(0, "ns/op")
	if falsePositives > 0 {
		b.Errorf("%v findings on the fixed lab", falsePositives)
	}
}

// The offset schedule starts half a revocation round trip before the release, in steps of a
// sixteenth of the action's latency, then sweeps the latency, and never repeats an offset.
func TestRevokeOffsets(t *testing.T) {
	got := check.RevokeOffsets(16*time.Millisecond, 2*time.Millisecond) // step 1 ms, centre -1 ms
	want := []time.Duration{0, -time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond, 12 * time.Millisecond}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("offsets %v, want %v", got, want)
	}
	// 1/8 of 8 ms lands on centre + 4 steps (1 ms) and is tried once.
	got = check.RevokeOffsets(8*time.Millisecond, 2*time.Millisecond) // step 500 us, centre -1 ms
	want = []time.Duration{-500 * time.Microsecond, -time.Millisecond, 0, time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 6 * time.Millisecond}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("offsets %v, want %v", got, want)
	}
}

// An application on a single-writer database makes every token-bearing request write: a verify read
// with a token waits behind the delete and answers "gone" as the delete commits. That is no evidence
// of the state at the acknowledgement: the check must say so, never pass. An anonymous read of a
// public resource does not wait, and proves the flaw; the fixed flavour passes with either reader.
func TestInflightVerifyReadsThatWait(t *testing.T) {
	opts := func(flavor string) lab.Options {
		return lab.Options{Flavor: flavor, IntrospectionTTL: -1, PermissionTTL: -1, ActionGap: 60 * time.Millisecond, SingleWriter: true}
	}
	for _, tc := range []struct {
		name    string
		flavor  string
		tweak   func(*config.Config)
		verdict check.Verdict
		reason  string
	}{
		{"vulnerable, token verifier", lab.Vulnerable, func(*config.Config) {}, check.Inconclusive, "verify reads waited behind the action"},
		{"vulnerable, anonymous public read", lab.Vulnerable, anonymousVerifier, check.Found, ""},
		{"fixed, token verifier", lab.Fixed, func(*config.Config) {}, check.Passed, ""},
		{"fixed, anonymous public read", lab.Fixed, anonymousVerifier, check.Passed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, tgt := labTarget(t, opts(tc.flavor), tc.tweak)
			fs, xs, err := runRecorded(t, check.InflightRevocation{}, tgt)
			if err != nil || len(xs) != 1 {
				t.Fatalf("experiments %+v, err %v", xs, err)
			}
			if xs[0].Verdict != tc.verdict || !strings.Contains(xs[0].Reason, tc.reason) {
				t.Fatalf("verdict %s (%s), want %s (%q)", xs[0].Verdict, xs[0].Reason, tc.verdict, tc.reason)
			}
			t.Logf("verdict %s: %s", xs[0].Verdict, xs[0].Reason)
			if want := map[check.Verdict]int{check.Found: 1}[tc.verdict]; len(fs) != want {
				t.Fatalf("%d findings, want %d: %+v", len(fs), want, fs)
			}
		})
	}
}

// BenchmarkInflightSingleWriter reports, on the lab as a single-writer database, how each verifier
// kind decides: the proof rate (issue 18: 20 scans per kind, -benchtime 20x), how often the check
// is inconclusive because the reads waited, and false positives on the fixed flavour (0 wanted;
// -benchtime 100x for the 100 scans).
func BenchmarkInflightSingleWriter(b *testing.B) {
	for _, flavor := range []string{lab.Vulnerable, lab.Fixed} {
		for _, v := range []struct {
			name  string
			tweak func(*config.Config)
		}{{"token", func(*config.Config) {}}, {"anonymous", anonymousVerifier}} {
			b.Run(flavor+"/verifier="+v.name, func(b *testing.B) {
				_, tgt := labTarget(b, lab.Options{Flavor: flavor, IntrospectionTTL: -1, PermissionTTL: -1, ActionGap: 30 * time.Millisecond, SingleWriter: true}, v.tweak, func(c *config.Config) {
					c.Limits.RequestBudget = 1_000_000
				})
				counts := map[check.Verdict]float64{}
				for b.Loop() {
					_, xs, err := runRecorded(b, check.InflightRevocation{}, tgt)
					if err != nil || len(xs) != 1 {
						b.Fatalf("experiments %+v, err %v", xs, err)
					}
					counts[xs[0].Verdict]++
				}
				n := float64(b.N)
				b.ReportMetric(100*counts[check.Found]/n, "%proven")
				b.ReportMetric(100*counts[check.Inconclusive]/n, "%inconclusive")
				b.ReportMetric(100*counts[check.Passed]/n, "%passed")
				b.ReportMetric(0, "ns/op")
				if flavor == lab.Fixed && counts[check.Found] > 0 {
					b.Errorf("%v findings on the fixed lab", counts[check.Found])
				}
			})
		}
	}
}

// anonymousVerifier makes the in-flight check read the resource back with no token, through the
// lab's public catalogue.
func anonymousVerifier(c *config.Config) {
	for _, ch := range c.Checks {
		if ch.ID == config.CheckInflightRevocation {
			ch.Verifier = config.Anonymous
		}
	}
	c.Probe("delete-item").Verify[0].Path = "/public/items/{{item_id}}"
}
