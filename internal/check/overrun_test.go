package check_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/lab"
	"github.com/tocsin/tocsin/internal/race"
	"github.com/tocsin/tocsin/internal/target"
)

func TestLimitOverrunVulnerable(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: "vulnerable"})
	fs := runCheck(t, check.LimitOverrun{}, tgt)
	if len(fs) != 3 {
		t.Fatalf("got %d findings, want exactly 3 (the coupon, the referral order and the bonus): %+v", len(fs), fs)
	}
	byProbe := map[string]finding.Finding{}
	for _, f := range fs {
		byProbe[f.Probe] = f
	}
	f := byProbe["redeem-coupon"]
	if f.Check != "race/limit-overrun" || f.Severity != finding.High || f.Probe != "redeem-coupon" || f.Identity != "alice" {
		t.Errorf("unexpected finding %+v", f)
	}
	// The summary carries the counts: the lab's coupon is single use, so the baseline is 1 of 20.
	if !strings.Contains(f.Summary, "where 1 of 20 succeeded one after another") {
		t.Errorf("summary %q lacks the baseline", f.Summary)
	}
	var accepted, release int
	for _, e := range f.Evidence {
		if strings.HasPrefix(e.Detail, "race copy") && e.HTTP != nil && e.HTTP.Outcome == "accepted" {
			accepted++
			if strings.Contains(e.HTTP.BodyExcerpt+e.HTTP.URL, "Bearer") || e.HTTP.Token == "" {
				t.Errorf("race evidence %+v: token not labelled", e.HTTP)
			}
		}
		if strings.HasPrefix(e.Detail, "release: last-byte-h1 over http/1.1") {
			release++
		}
	}
	if accepted < 2 || release != 1 {
		t.Errorf("evidence has %d accepted race copies and %d release notes, want >= 2 and 1: %+v", accepted, release, f.Evidence)
	}
	// A token, 2 setups, 20 sequential and 20 raced; then the teardown: a token, 2 deletes, its revocation.
	if f.Requests != 1+2+20+20+4 {
		t.Errorf("spent %d requests, want 47", f.Requests)
	}
	// The bonus is one per account: only an account minted for the race can show the overrun, since
	// the baseline spends the bonus of its own.
	b := byProbe["claim-bonus"]
	if b.Probe != "claim-bonus" || b.Identity != "newcomer" || !strings.Contains(b.Summary, "as one account minted for the race") ||
		!strings.Contains(b.Summary, "where 1 of 20 succeeded one after another") {
		t.Errorf("bonus finding %+v", b)
	}
	// The referral order: a coupon that took two accounts and three steps to get (bob's referral
	// code, alice applying it, the coupon found in her list by a selector), raced with copies: 10.
	o := byProbe["order-with-referral"]
	if o.Identity != "alice" || !strings.Contains(o.Summary, "out of 10 synchronised requests") || !strings.Contains(o.Summary, "where 1 of 10 succeeded one after another") {
		t.Errorf("referral order finding %+v", o)
	}
}

// The fixed lab passes every probe: no finding is not enough, since an inconclusive or skipped
// probe has none either.
func TestLimitOverrunFixed(t *testing.T) {
	_, tgt := labTarget(t, lab.Options{Flavor: "fixed"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ledger := &check.Ledger{}
	c := check.LimitOverrun{}
	fs, err := c.Run(ctx, &check.Env{Target: tgt, Plan: tgt.Checks[c.Meta().ID], Ledger: ledger})
	if err != nil || len(fs) != 0 {
		t.Fatalf("fixed lab: err %v, %d findings, want none: %+v", err, len(fs), fs)
	}
	xs := ledger.Experiments(c.Meta().ID)
	if len(xs) != 3 {
		t.Fatalf("experiments %+v, want 3", xs)
	}
	for _, x := range xs {
		if x.Verdict != check.Passed {
			t.Errorf("fixed lab: %s %s: %s, want passed", x.Probe, x.Verdict, x.Reason)
		}
	}
}

// couponStub is a coupon API for the race check's controls, on 127.0.0.1, speaking HTTP/1.1 and
// h2c (HTTP/2 with prior knowledge). Each coupon may be redeemed uses times (default 1).
type couponStub struct {
	uses int
	// window, when set, makes redemption a check-then-act race: the handler checks the count,
	// waits window, and only then counts the redemption. Zero checks and counts in one step.
	window time.Duration
	// maxStreams, when set, is the server's HTTP/2 MAX_CONCURRENT_STREAMS.
	maxStreams int
	// baseline answers the sequential baseline's coupon (the first one created): by its k-th
	// redemption (1-based), "503" or "400" to redeem it but answer that status, "stall" to redeem it
	// and never answer.
	baseline map[int]string
}

func (s couponStub) start(t *testing.T) string {
	t.Helper()
	uses := max(s.uses, 1)
	var mu sync.Mutex
	created := 0
	used := map[string]int{}
	calls := map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /coupons", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		created++
		id := fmt.Sprintf("coupon-%d", created)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id": %q}`, id)
	})
	mux.HandleFunc("DELETE /coupons/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /coupons/{id}/redeem", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer static-token-1234" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		id := r.PathValue("id")
		mu.Lock()
		calls[id]++
		fault := ""
		if id == "coupon-1" {
			fault = s.baseline[calls[id]]
		}
		if used[id] >= uses {
			mu.Unlock()
			http.Error(w, "used", http.StatusConflict)
			return
		}
		if s.window > 0 {
			mu.Unlock()
			time.Sleep(s.window) // the redemption is checked, not yet counted
			mu.Lock()
		}
		used[id]++
		mu.Unlock()
		switch fault {
		case "503": // redeemed, but the answer is lost behind an overloaded proxy
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case "400":
			http.Error(w, "bad request", http.StatusBadRequest)
		case "stall":
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: &p}
	if s.maxStreams > 0 {
		srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: s.maxStreams}
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// stubTarget is a config for the stub: one probe, redeem, raced with copies, torn down.
func stubTarget(t *testing.T, origin string, copies int) *target.Target {
	t.Helper()
	return couponConfig(t, origin, copies, 2*time.Second, "    teardown: {method: DELETE, path: \"/coupons/{{coupon_id}}\", accept: [204]}")
}

// runOverrun runs c on tgt and returns its findings and its one experiment.
func runOverrun(t *testing.T, c check.LimitOverrun, tgt *target.Target) ([]finding.Finding, check.Experiment) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ledger := &check.Ledger{}
	id := c.Meta().ID
	fs, err := c.Run(ctx, &check.Env{Target: tgt, Plan: tgt.Checks[id], Ledger: ledger})
	xs := ledger.Experiments(id)
	if err != nil || len(xs) != 1 {
		t.Fatalf("err %v, experiments %+v; want one experiment", err, xs)
	}
	return fs, xs[0]
}

// A release split over several writes did not send the copies together: no overrun then is not a
// pass. The server's stream limit (4) splits 20 copies over 5 connections.
func TestLimitOverrunSplitRelease(t *testing.T) {
	h2 := check.LimitOverrun{Mode: race.SinglePacketH2}
	t.Run("fixed, split", func(t *testing.T) {
		tgt := stubTarget(t, couponStub{maxStreams: 4}.start(t), 20)
		fs, x := runOverrun(t, h2, tgt)
		if len(fs) != 0 || x.Verdict != check.Inconclusive || !strings.Contains(x.Reason, "was split") ||
			!strings.Contains(x.Reason, "4 concurrent streams") || !strings.Contains(x.Reason, "hint: lower the probe's copies") {
			t.Fatalf("findings %+v, experiment %+v; want inconclusive, split by the stream limit", fs, x)
		}
	})
	// The control: the same server and batch in one packet is a pass.
	t.Run("fixed, one packet", func(t *testing.T) {
		tgt := stubTarget(t, couponStub{}.start(t), 20)
		if fs, x := runOverrun(t, h2, tgt); len(fs) != 0 || x.Verdict != check.Passed {
			t.Fatalf("findings %+v, experiment %+v; want passed", fs, x)
		}
	})
	// An overrun proven through a split release stands, and says it was split.
	t.Run("vulnerable, split", func(t *testing.T) {
		tgt := stubTarget(t, couponStub{maxStreams: 4, window: 200 * time.Millisecond}.start(t), 20)
		fs, x := runOverrun(t, h2, tgt)
		if len(fs) != 1 || x.Verdict != check.Found || !strings.Contains(fs[0].Summary, "The release was split") {
			t.Fatalf("findings %+v, experiment %+v; want a finding that notes the split", fs, x)
		}
	})
}

// A baseline with answers that are neither accepted nor refused does not give the limit: the coupon
// here may be redeemed twice, and the baseline's second redemption is spent but answered 503 (or
// not answered), so the baseline counts one success where the API allows two, and the race's two
// would be a false overrun. The verdict is inconclusive, and the race is not sent.
func TestLimitOverrunBaselineOverloaded(t *testing.T) {
	for _, tc := range []struct{ fault, reason string }{
		{"503", "baseline request 2 of 20 to POST /coupons/{{coupon_id}}/redeem answered 503"},
		{"stall", "baseline request 2 of 20 to POST /coupons/{{coupon_id}}/redeem got no response within limits.timeout"},
		{"400", "(hint: add 400 to the probe's accept or reject statuses"},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			tgt := stubTarget(t, couponStub{uses: 2, baseline: map[int]string{2: tc.fault}}.start(t), 20)
			fs, x := runOverrun(t, check.LimitOverrun{}, tgt)
			if len(fs) != 0 || x.Verdict != check.Inconclusive || !strings.Contains(x.Reason, tc.reason) {
				t.Fatalf("findings %+v, experiment %+v; want inconclusive: %q", fs, x, tc.reason)
			}
			if tc.fault != "400" && !strings.Contains(x.Reason, "the target looks overloaded") {
				t.Errorf("reason %q does not say the target looks overloaded", x.Reason)
			}
			// The setup, 2 baseline requests and the teardown's delete (the token is static).
			if sent := tgt.Client.Sent(); sent != 4 {
				t.Errorf("sent %d requests, want 4: the baseline stops at its second request, without the race", sent)
			}
		})
	}
	// The control: the same API, answering every request, passes (two of 20 in both).
	tgt := stubTarget(t, couponStub{uses: 2}.start(t), 20)
	if fs, x := runOverrun(t, check.LimitOverrun{}, tgt); len(fs) != 0 || x.Verdict != check.Passed {
		t.Fatalf("findings %+v, experiment %+v; want passed", fs, x)
	}
}
