package surface_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/surface"
)

// A recording near the size bound is read, and made into probes, in bounded time.
func TestLargeHARIsLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"log":{"entries":[`)
	for i := 0; b.Len() < surface.MaxBytes/4; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"request":{"method":"POST","url":"http://a/c%d"},"response":{"status":201,"content":{"mimeType":"application/json","text":"{\"id\":\"v%d\"}"}}},`, i%50, i)
		fmt.Fprintf(&b, `{"request":{"method":"GET","url":"http://a/c%d/v%d/x%d"},"response":{"status":200,"content":{}}}`, i%50, i, i)
	}
	b.WriteString(`]}}`)
	start := time.Now()
	d, err := surface.ParseHAR([]byte(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	surface.Probes(d, surface.Policy{Destructive: func(*surface.Operation) bool { return true }})
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("%d operations took %s", len(d.Operations), took)
	}
	t.Logf("%d operations in %s", len(d.Operations), time.Since(start))
}
