package check_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/lab"
	"github.com/tocsin/tocsin/internal/report"
	"github.com/tocsin/tocsin/internal/scan"
	"github.com/tocsin/tocsin/internal/target"
)

// The restore hook's retries, seen from a whole scan of toctou/scope-downgrade-ignored on the fixed
// lab (one pass: the lab honours the downgrade at once, so the check restores alice once, at its end).
// Each test points alice's restore hook at a server of its own on 127.0.0.1, in front of the lab.

// restoreVia points alice's restore hook at hookURL (allowed as an origin, as a real config must).
func restoreVia(hookURL string) func(*config.Config) {
	return func(c *config.Config) {
		c.Target.Origins = append(c.Target.Origins, hookURL)
		c.Identities["alice"].Restore.HTTP.URL = hookURL + "/idp/subjects/alice/scopes"
	}
}

// scanDowngrade scans the downgrade check alone and returns the report and the alerts it raised.
func scanDowngrade(t *testing.T, opts lab.Options, tweak func(*config.Config)) (*lab.Lab, *report.Report, []string) {
	t.Helper()
	l, tgt := labTarget(t, opts, tweak)
	r, alerts, err := runDowngrade(tgt)
	if err != nil {
		t.Fatal(err)
	}
	return l, r, alerts
}

// runDowngrade is scanDowngrade's scan, safe to run off the test's goroutine.
func runDowngrade(tgt *target.Target) (*report.Report, []string, error) {
	var mu sync.Mutex
	var alerts []string
	r, err := scan.Run(context.Background(), tgt, scan.Options{
		Name: "lab", Only: []string{config.CheckScopeDowngrade},
		Alert: func(msg string) {
			mu.Lock()
			defer mu.Unlock()
			alerts = append(alerts, msg)
		},
	})
	mu.Lock()
	defer mu.Unlock()
	return r, slices.Clone(alerts), err
}

// aliceScopes asks the lab's identity provider what alice may do now.
func aliceScopes(t *testing.T, l *lab.Lab) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, l.URL()+"/idp/subjects/alice/scopes", nil)
	req.Header.Set("Authorization", "Bearer "+l.Env()["TOCSIN_LAB_ADMIN_KEY"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Scopes []string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Scopes
}

// assertRestoreFailed checks that r is incomplete because alice's restore failed, that the failure
// is in the JSON report's restore_failures naming the check, and that it was alerted once.
func assertRestoreFailed(t *testing.T, r *report.Report, alerts []string, wantErr ...string) report.RestoreFailure {
	t.Helper()
	if r.Status != report.StatusIncomplete || r.Graded() || len(r.RestoreFailures) != 1 {
		t.Fatalf("status %s graded %v restore failures %+v; want incomplete, ungraded, one failure", r.Status, r.Graded(), r.RestoreFailures)
	}
	rf := r.RestoreFailures[0]
	if rf.Identity != "alice" || rf.Check != config.CheckScopeDowngrade || !strings.Contains(rf.State, "downgraded") || rf.Manual == "" {
		t.Errorf("restore failure %+v; want alice left downgraded by %s, with the request to run by hand", rf, config.CheckScopeDowngrade)
	}
	for _, w := range wantErr {
		if !strings.Contains(rf.Error, w) {
			t.Errorf("restore failure's error %q; want it to say %q", rf.Error, w)
		}
	}
	var js strings.Builder
	if err := report.WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"restore_failures"`) || !strings.Contains(js.String(), `"status": "incomplete"`) {
		t.Errorf("JSON report without restore_failures or not incomplete:\n%s", js.String())
	}
	if len(alerts) != 1 || !strings.Contains(alerts[0], "RESTORE FAILED") {
		t.Errorf("alerts %q; want one RESTORE FAILED", alerts)
	}
	return rf
}

// A restore hook that keeps answering 500 (an identity provider that is down) is retried, not given
// up on at the first answer, and once the restore budget is spent the scan is incomplete, with the
// failure in restore_failures.
func TestRestoreAnswering500IsRetriedThenReported(t *testing.T) {
	defer check.SetRestoreFor(2 * time.Second)()
	var hits atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "identity store unavailable", http.StatusInternalServerError)
	}))
	defer hook.Close()

	l, r, alerts := scanDowngrade(t, lab.Options{Flavor: lab.Fixed}, restoreVia(hook.URL))
	// The first wait is 250 ms: a 2 s budget has room for a second attempt even on a slow machine.
	if n := hits.Load(); n < 2 {
		t.Errorf("the restore hook was called %d times; want it retried", n)
	}
	assertRestoreFailed(t, r, alerts, "restore failed", "500")
	if scopes := aliceScopes(t, l); slices.Contains(scopes, "reports:read") {
		t.Errorf("alice's scopes %v: the failing hook cannot have restored her", scopes)
	}
}

// A restore hook whose server accepts the connection and never answers must not hang the scan: the
// restore is bounded by the restore budget even when the per-request timeout is much longer, and the
// stall is reported as a failed restore.
func TestStalledRestoreIsBoundedAndReported(t *testing.T) {
	defer check.SetRestoreFor(time.Second)()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c) // held open, never read nor answered
			mu.Unlock()
		}
	}()
	defer func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()

	_, tgt := labTarget(t, lab.Options{Flavor: lab.Fixed}, func(c *config.Config) {
		c.Limits.Timeout = 5 * time.Minute // the longest a config allows: only the restore budget can end the stall
		restoreVia("http://" + ln.Addr().String())(c)
	})
	type result struct {
		r      *report.Report
		alerts []string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		r, alerts, err := runDowngrade(tgt)
		done <- result{r, alerts, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(90 * time.Second): // the budget is 1 s; this only catches a hang
		t.Fatal("the scan still runs 90 s after it began: a stalled restore hook hangs it")
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	if accepted.Load() == 0 {
		t.Fatal("the restore hook's server was never contacted")
	}
	assertRestoreFailed(t, res.r, res.alerts, "restore failed")
}

// A restore that fails at first (503 twice, say while the identity provider restarts) and is then
// acknowledged is no failure: nothing is left changed, so the scan is complete and graded, nothing is
// alerted, and alice has her scope back.
func TestRestoreThatSucceedsOnRetryIsNoFailure(t *testing.T) {
	var hits atomic.Int32
	var labURL atomic.Pointer[url.URL]
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 2 {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		httputil.NewSingleHostReverseProxy(labURL.Load()).ServeHTTP(w, r)
	}))
	defer hook.Close()

	l, r, alerts := scanDowngrade(t, lab.Options{Flavor: lab.Fixed}, func(c *config.Config) {
		u, err := url.Parse(c.Target.Origins[0])
		if err != nil {
			t.Fatal(err)
		}
		labURL.Store(u)
		restoreVia(hook.URL)(c)
	})
	if n := hits.Load(); n < 3 {
		t.Fatalf("the restore hook was called %d times; want two refusals and then the restore", n)
	}
	if len(r.RestoreFailures) != 0 || len(alerts) != 0 {
		t.Errorf("restore failures %+v, alerts %q; want none: the restore succeeded on a retry", r.RestoreFailures, alerts)
	}
	if r.Status != report.StatusComplete || !r.Graded() {
		t.Errorf("status %s graded %v checks %+v; want complete and graded", r.Status, r.Graded(), r.Checks)
	}
	if scopes := aliceScopes(t, l); !slices.Contains(scopes, "reports:read") {
		t.Errorf("alice's scopes %v; want reports:read restored", scopes)
	}
}

// A restore that fails between two passes (the vulnerable lab caches permissions, so the downgrade
// check restores alice before each later pass) is retried for one restore budget, recorded and
// alerted once: the measurement's closing restore does not spend a second budget on it.
func TestRestoreFailingBetweenPassesIsRetriedOnce(t *testing.T) {
	const budget = 2 * time.Second
	defer check.SetRestoreFor(budget)()
	var mu sync.Mutex
	var calls []time.Time
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, time.Now())
		mu.Unlock()
		http.Error(w, "identity store unavailable", http.StatusInternalServerError)
	}))
	defer hook.Close()

	_, r, alerts := scanDowngrade(t, lab.Options{Flavor: lab.Vulnerable}, restoreVia(hook.URL))
	assertRestoreFailed(t, r, alerts, "restore failed", "500")
	mu.Lock()
	defer mu.Unlock()
	if len(calls) < 2 {
		t.Fatalf("the restore hook was called %d times; want it retried", len(calls))
	}
	// One budget is 2 s; two in a row would span about 4 s.
	if span := calls[len(calls)-1].Sub(calls[0]); span > budget*3/2 {
		t.Errorf("restore attempts spanned %s (%d calls); want one budget of %s, not two", span.Round(time.Millisecond), len(calls), budget)
	}
}
