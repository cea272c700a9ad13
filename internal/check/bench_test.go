package check_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/lab"
)

// BenchmarkRevocationWindow measures what the staleness measurement costs and how precise it is on
// the vulnerable lab: bracket width (ms) and requests per measurement, at introspection TTLs of 1 s
// and 3 s (the goal: width <= 10 ms with <= 60 requests). Run with -benchtime 3x or more;
// each iteration takes a few TTLs. Compare runs with benchstat.
func BenchmarkRevocationWindow(b *testing.B) {
	for _, ttl := range []time.Duration{time.Second, 3 * time.Second} {
		b.Run(fmt.Sprintf("ttl=%s", ttl), func(b *testing.B) {
			_, tgt := labTarget(b, lab.Options{Flavor: "vulnerable", IntrospectionTTL: ttl, PermissionTTL: -1})
			var width, requests, errMS float64
			for b.Loop() {
				fs := runCheck(b, check.RevokedTokenAccepted{}, tgt)
				if len(fs) != 1 || fs[0].Window == nil || fs[0].Window.Never {
					b.Fatalf("want one closed window, got %+v", fs)
				}
				w := fs[0].Window
				width += w.WidthMS()
				requests += float64(fs[0].Requests)
				// How far the bracket's middle, counted from the fill, lies from the true TTL.
				mid := (w.LastAcceptedMS+w.FirstRejectedMS)/2 + w.FillToChangeMS
				d := mid - float64(ttl.Milliseconds())
				if d < 0 {
					d = -d
				}
				errMS += d
			}
			n := float64(b.N)
			b.ReportMetric(width/n, "bracket-ms")
			b.ReportMetric(requests/n, "requests")
			b.ReportMetric(errMS/n, "ttl-error-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
