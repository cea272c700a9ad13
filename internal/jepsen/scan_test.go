package jepsen

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tocsin/tocsin/guard"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/lab"
	"github.com/tocsin/tocsin/internal/pgtest"
	"github.com/tocsin/tocsin/internal/redact"
	"github.com/tocsin/tocsin/internal/report"
	"github.com/tocsin/tocsin/internal/scan"
	"github.com/tocsin/tocsin/internal/target"
)

// The scanner, pointed at three replicas of the fixed lab behind a round-robin proxy, each with its
// own guard and pool on one PostgreSQL, finds nothing: a revocation or downgrade sent through any
// replica holds on every other, including for an action already in flight there.
func TestScannerFindsNothingOnPostgresReplicas(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.Shared(t).NewDatabase(t)
	newGuard := func() *guard.Guard {
		pool, err := pgxpool.New(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		return guard.NewPostgres(pool)
	}
	{
		pool, err := pgxpool.New(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		err = guard.Migrate(ctx, pool)
		pool.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	primary, err := lab.Start(ctx, "127.0.0.1:0", lab.Options{Flavor: lab.Fixed, Guard: newGuard(), ActionGap: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { primary.Close() })
	replicas := []*lab.Lab{primary}
	for range 2 {
		r, err := primary.StartReplica(ctx, "127.0.0.1:0", newGuard())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		replicas = append(replicas, r)
	}

	// Round robin, request by request, so that an action, its revocation and the read that checks
	// it land on different replicas.
	served := make([]atomic.Int64, len(replicas))
	var next atomic.Int64
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		i := int(next.Add(1)) % len(replicas)
		served[i].Add(1)
		u, _ := url.Parse(replicas[i].URL())
		pr.SetURL(u)
	}}
	front := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go front.Serve(ln)
	t.Cleanup(func() { front.Close() })
	frontURL := "http://" + ln.Addr().String()

	yaml := strings.ReplaceAll(string(primary.ConfigYAML()), primary.URL(), frontURL)
	env := primary.Env()
	cfg, err := config.Parse("replicas.yaml", []byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := target.Build(ctx, cfg, &redact.Redactor{})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	rep, err := scan.Run(sctx, tgt, scan.Options{Name: "lab replicas on PostgreSQL"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Errorf("finding on the PostgreSQL replica set: %s: %s", f.Check, f.Summary)
	}
	for _, c := range rep.Checks {
		if c.Status != report.StatusPassed {
			t.Errorf("%s: %s %s, want passed", c.ID, c.Status, c.Reason)
		}
	}
	for i := range served {
		if served[i].Load() < 10 {
			t.Errorf("replica %d served %d requests: the proxy did not spread the scan", i, served[i].Load())
		}
	}
	t.Logf("scan: %d requests over %d replicas in %.1f s", rep.Requests, len(replicas), rep.DurationMS/1000)
}
