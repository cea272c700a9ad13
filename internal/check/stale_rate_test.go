package check_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/lab"
)

// Replays that the API starts refusing with 429 Too Many Requests did not reach the end of the
// window, and did not fail either: the finding stands on the replays made, its reach says the rate
// limit stopped them, and the hint says to lower limits.rate.
func TestStalenessStoppedByRateLimit(t *testing.T) {
	var reads atomic.Int32
	var proxy *httptest.Server
	_, tgt := labTarget(t, lab.Options{Flavor: lab.Vulnerable, IntrospectionTTL: time.Hour, PermissionTTL: -1}, func(c *config.Config) {
		labURL, err := url.Parse(c.Target.Origins[0])
		if err != nil {
			t.Fatal(err)
		}
		rp := httputil.NewSingleHostReverseProxy(labURL)
		proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The item's reads: two controls, the first use, then replays; from the tenth on, the
			// API's rate limit answers.
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/items/") && reads.Add(1) > 9 {
				w.Header().Set("Retry-After", "60")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
			rp.ServeHTTP(w, r)
		}))
		c.Target.Origins = append([]string{proxy.URL}, c.Target.Origins...)
	})
	defer proxy.Close()
	fs, xs, err := runRecorded(t, check.RevokedTokenAccepted{}, tgt)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || len(xs) != 1 || xs[0].Verdict != check.Errored {
		t.Fatalf("findings %+v, experiments %+v; want the finding and an errored experiment", fs, xs)
	}
	if r := xs[0].Reason; !strings.Contains(r, "429") || !strings.Contains(r, "limits.rate") {
		t.Errorf("reason %q; want the rate limit named, with the hint to lower limits.rate", r)
	}
	w := fs[0].Window
	if w.Reach == nil || w.Reach.StoppedBy != finding.StoppedRate || !strings.Contains(w.Reach.Detail, "rate-limited") {
		t.Errorf("reach %+v; want stopped by the rate limit", w.Reach)
	}
	if strings.Contains(fs[0].Summary, "never refused within") {
		t.Errorf("summary %q claims past where the replays reached", fs[0].Summary)
	}
}
