package guard

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
)

// The endpoint benchmarks compare the same handler behind plain JWT validation and behind guard,
// calling ServeHTTP in-process so that network time does not hide guard's cost. Each reports
// req/s and p50/p99 latency; compare jwt-only with guard-memory for guard's overhead:
//
//	go test -run '^$' -bench 'Endpoint|RevokeInFlight' -benchtime 2s -count 6 ./guard/
//
// BenchmarkPostgresRequest compares, in one run, a handler that queries PostgreSQL behind guard's
// one transaction per request and behind a pin on one connection with the query on another,
// against the same handler with no guard; BenchmarkRevokeUnderLoad measures revocations under
// TestPostgresLoad's load:
//
//	go test -run '^$' -bench 'PostgresRequest|RevokeUnderLoad' -benchtime 6x ./guard/

const benchGrants = 64

type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }

// benchTokens returns tokens signed by method with key, and matching grants, for benchGrants
// subjects.
func benchTokens(b *testing.B, method jwt.SigningMethod, key any) ([]*http.Request, []Grant) {
	b.Helper()
	var reqs []*http.Request
	var grants []Grant
	exp := time.Now().Add(time.Hour)
	for i := range benchGrants {
		gr := Grant{ID: fmt.Sprintf("j%d", i), Subject: fmt.Sprintf("s%d", i), Scopes: []string{"items:read"}, Expires: exp}
		tok, err := jwt.NewWithClaims(method, jwt.MapClaims{"sub": gr.Subject, "jti": gr.ID, "exp": exp.Unix(), "scope": "items:read"}).SignedString(key)
		if err != nil {
			b.Fatal(err)
		}
		r, _ := http.NewRequest(http.MethodGet, "/items/1", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		reqs = append(reqs, r)
		grants = append(grants, gr)
	}
	return reqs, grants
}

// serveBench drives h from parallel goroutines and reports throughput and latency percentiles.
// Each goroutine walks reqs from its own start, spread evenly, as clients with their own tokens do:
// starting them side by side would have every CPU act on the same grant at the same moment, which
// measures contention on one grant (BenchmarkEndpointOneToken does that on purpose), not the cost of
// the check.
func serveBench(b *testing.B, h http.Handler, reqs []*http.Request) latencyFigures {
	b.Helper()
	var mu sync.Mutex
	var all []time.Duration
	var next atomic.Int64
	workers := runtime.GOMAXPROCS(0) // RunParallel's goroutines, at parallelism 1
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		lat := serveLoop(b, h, reqs, int(next.Add(1))*len(reqs)/workers, pb.Next)
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	return reportLatency(b, all, elapsed, "req/s")
}

// serveLoop serves reqs with h, from reqs[start] on and round again, while more says so or until an
// answer is not 200 (which fails b), and returns each request's latency.
func serveLoop(b *testing.B, h http.Handler, reqs []*http.Request, start int, more func() bool) []time.Duration {
	lat := make([]time.Duration, 0, 4096)
	w := &benchWriter{h: http.Header{}}
	for i := start; more(); i++ {
		w.code = http.StatusOK
		t0 := time.Now()
		h.ServeHTTP(w, reqs[i%len(reqs)])
		lat = append(lat, time.Since(t0))
		if w.code != http.StatusOK {
			b.Errorf("status %d", w.code)
			break
		}
	}
	return lat
}

// latencyFigures sum up the latencies of requests served over some time.
type latencyFigures struct {
	rate, p50, p99 float64 // per second; µs
}

// figures sorts all and sums it up; elapsed is the time all were served in.
func figures(all []time.Duration, elapsed time.Duration) latencyFigures {
	if len(all) == 0 {
		return latencyFigures{}
	}
	slices.Sort(all)
	return latencyFigures{
		rate: float64(len(all)) / elapsed.Seconds(),
		p50:  float64(all[len(all)/2].Nanoseconds()) / 1e3,
		p99:  float64(all[len(all)*99/100].Nanoseconds()) / 1e3,
	}
}

func reportLatency(b *testing.B, all []time.Duration, elapsed time.Duration, rateUnit string) latencyFigures {
	if len(all) == 0 {
		return latencyFigures{}
	}
	f := figures(all, elapsed)
	if rateUnit != "" {
		b.ReportMetric(f.rate, rateUnit)
	}
	b.ReportMetric(f.p50, "p50-µs")
	b.ReportMetric(f.p99, "p99-µs")
	return f
}

func BenchmarkEndpoint(b *testing.B) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for _, alg := range []struct {
		name     string
		method   jwt.SigningMethod
		sign     any
		verifier *JWT
		postgres bool // the store's cost does not depend on the algorithm: measure it once
	}{
		{"HS256", jwt.SigningMethodHS256, testKey, &JWT{Key: testKey, Algorithms: []string{"HS256"}}, true},
		{"ES256", jwt.SigningMethodES256, ecKey, &JWT{Key: &ecKey.PublicKey, Algorithms: []string{"ES256"}}, false},
	} {
		b.Run(alg.name, func(b *testing.B) { benchEndpoint(b, alg.method, alg.sign, alg.verifier, alg.postgres) })
	}
}

// BenchmarkEndpointOneToken is the worst case for guard's memory store: every goroutine sends the
// same token, so every CPU pins and releases the same grant at once, and the cache lines of its
// counters go back and forth between CPUs on every request. Plain JWT validation shares nothing.
func BenchmarkEndpointOneToken(b *testing.B) {
	reqs, grants := benchTokens(b, jwt.SigningMethodHS256, testKey)
	verifier := &JWT{Key: testKey, Algorithms: []string{"HS256"}}
	item := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"id":1}`)) })
	grantID := func(r *http.Request) (string, error) {
		gr, err := verifier.Verify(r.Context(), r.Header.Get("Authorization")[len("Bearer "):])
		return gr.ID, err
	}
	one := reqs[:1]
	b.Run("jwt-only", func(b *testing.B) {
		serveBench(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := grantID(r); err != nil {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			item.ServeHTTP(w, r)
		}), one)
	})
	b.Run("guard-memory", func(b *testing.B) {
		g := New()
		mustGrant(b, g, grants[0])
		serveBench(b, g.Middleware("items:read", grantID, item), one)
	})
}

func benchEndpoint(b *testing.B, method jwt.SigningMethod, signKey any, verifier *JWT, postgres bool) {
	reqs, grants := benchTokens(b, method, signKey)
	// The handler every variant protects: it writes a small body.
	item := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"id":1}`)) })
	// grantID verifies the token on every request, as jwt-only does: the difference is guard's.
	grantID := func(r *http.Request) (string, error) {
		gr, err := verifier.Verify(r.Context(), r.Header.Get("Authorization")[len("Bearer "):])
		return gr.ID, err
	}

	b.Run("jwt-only", func(b *testing.B) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := grantID(r); err != nil {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			item.ServeHTTP(w, r)
		})
		serveBench(b, h, reqs)
	})
	b.Run("guard-memory", func(b *testing.B) {
		g := New()
		for _, gr := range grants {
			mustGrant(b, g, gr)
		}
		serveBench(b, g.Middleware("items:read", grantID, item), reqs)
	})
	b.Run("guard-memory-cached", func(b *testing.B) {
		g := New()
		for _, gr := range grants {
			mustGrant(b, g, gr)
		}
		serveBench(b, g.Middleware("items:read", g.Bearer(verifier), item), reqs)
	})
	if !postgres {
		return
	}
	b.Run("guard-postgres", func(b *testing.B) {
		g := benchPostgresGuard(b)
		for _, gr := range grants {
			mustGrant(b, g, gr)
		}
		serveBench(b, g.Middleware("items:read", grantID, item), reqs)
	})
}

func benchPostgresGuard(b *testing.B) *Guard {
	b.Helper()
	gs, _, _ := pgReplicas(b, 1)
	g := gs[0]
	g.now = time.Now
	return g
}

// BenchmarkRevokeInFlight measures how long Revoke takes while actions of about 1 ms keep running
// on the grant from several goroutines: the wait for the running ones.
func BenchmarkRevokeInFlight(b *testing.B) {
	for _, name := range []string{"memory", "postgres"} {
		b.Run(name, func(b *testing.B) {
			g := New()
			if name == "postgres" {
				g = benchPostgresGuard(b)
			}
			ctx := context.Background()
			var lat []time.Duration
			i := 0
			for b.Loop() {
				i++
				id := fmt.Sprintf("r%d", i)
				mustGrant(b, g, Grant{ID: id, Subject: "alice"})
				var wg sync.WaitGroup
				var ran atomic.Int64
				for range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for g.Do(ctx, id, "", func(context.Context) error {
							ran.Add(1)
							time.Sleep(time.Millisecond)
							return nil
						}) == nil {
						}
					}()
				}
				for ran.Load() < 4 {
					time.Sleep(100 * time.Microsecond)
				}
				t0 := time.Now()
				if err := g.Revoke(ctx, id); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				wg.Wait()
			}
			reportLatency(b, lat, 0, "")
		})
	}
}

// BenchmarkPostgresRequest: the per-request cost of guard on PostgreSQL for a handler that reads a
// row, with the handler's query in the request's transaction (one-transaction, guard.Tx) and, as
// handlers were written before it, on a second pool connection while the first holds the pin
// (two-connections: the same SQL and round trips as the Middleware of before), against the same
// handler without guard (baseline). 8 requests run at once on a pool of 20, few enough that the
// two-connection shape does not starve the pool. Each iteration serves every variant in turn for
// half a second, so that a machine whose load drifts weighs on all of them alike; the ratios are
// to the baseline of the same iterations. Run it with -benchtime Nx for N rounds.
func BenchmarkPostgresRequest(b *testing.B) {
	gs, _, pool := pgReplicas(b, 1)
	g := gs[0]
	g.now = time.Now
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL);
		INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 64) i`); err != nil {
		b.Fatal(err)
	}
	reqs, grants := benchTokens(b, jwt.SigningMethodHS256, testKey)
	for _, gr := range grants {
		mustGrant(b, g, gr)
	}
	verifier := &JWT{Key: testKey, Algorithms: []string{"HS256"}}
	grantID := func(r *http.Request) (string, error) {
		gr, err := verifier.Verify(r.Context(), r.Header.Get("Authorization")[len("Bearer "):])
		return gr.ID, err
	}
	type querier interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}
	item := func(q func(*http.Request) querier) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var body string
			if err := q(r).QueryRow(r.Context(), `SELECT body FROM items WHERE id = 1`).Scan(&body); err != nil {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.Write([]byte(body))
		}
	}
	onPool := item(func(*http.Request) querier { return pool })
	inTx := item(func(r *http.Request) querier { return Tx(r.Context()) })
	variants := []struct {
		name string
		h    http.Handler
		lat  []time.Duration
		took time.Duration
	}{
		{name: "baseline", h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := grantID(r); err != nil {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			onPool(w, r)
		})},
		{name: "two-connections", h: g.Require("items:read", grantID)(onPool)},
		{name: "one-transaction", h: g.Require("items:read", grantID)(inTx)},
	}
	for b.Loop() {
		for i := range variants {
			v := &variants[i]
			lat, took := servePhase(b, v.h, reqs, 8, 500*time.Millisecond)
			v.lat = append(v.lat, lat...)
			v.took += took
		}
	}
	var base latencyFigures
	for i, v := range variants {
		f := figures(v.lat, v.took)
		b.ReportMetric(f.rate, v.name+"-req/s")
		b.ReportMetric(f.p50, v.name+"-p50-µs")
		b.ReportMetric(f.p99, v.name+"-p99-µs")
		if i == 0 {
			base = f
			continue
		}
		b.ReportMetric(f.rate/base.rate, v.name+"-req/s-ratio")
		b.ReportMetric(f.p50/base.p50, v.name+"-p50-ratio")
		b.ReportMetric(f.p99/base.p99, v.name+"-p99-ratio")
	}
}

// servePhase drives h from workers goroutines for about d and returns each request's latency and
// how long the phase took.
func servePhase(b *testing.B, h http.Handler, reqs []*http.Request, workers int, d time.Duration) ([]time.Duration, time.Duration) {
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for k := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := serveLoop(b, h, reqs, k*len(reqs)/workers, func() bool { return time.Now().Before(deadline) })
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, time.Since(start)
}

// BenchmarkRevokeUnderLoad runs TestPostgresLoad's load, larger, and reports how long revocations
// took (the wait for the write running on the grant) and how long requests took.
func BenchmarkRevokeUnderLoad(b *testing.B) {
	var res loadResult
	for b.Loop() {
		g, pool := pgSmallPool(b)
		r := runLoad(b, g, pool, load{clients: 4 * smallPool, perClient: 50, revokeEvery: 10 * time.Millisecond})
		if len(r.failures) > 0 || len(r.violations) > 0 {
			b.Fatalf("%d requests failed, %d violations: %v %v", len(r.failures), len(r.violations), r.failures, r.violations)
		}
		res.revocations = append(res.revocations, r.revocations...)
		res.requestTook = append(res.requestTook, r.requestTook...)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
	b.ReportMetric(float64(len(res.revocations))/float64(b.N), "revokes/op")
	b.ReportMetric(ms(res.revokePercentile(50)), "revoke-p50-ms")
	b.ReportMetric(ms(res.revokePercentile(99)), "revoke-p99-ms")
	b.ReportMetric(ms(res.revokePercentile(100)), "revoke-max-ms")
	slices.Sort(res.requestTook)
	if n := len(res.requestTook); n > 0 {
		b.ReportMetric(ms(res.requestTook[n/2]), "request-p50-ms")
		b.ReportMetric(ms(res.requestTook[n*99/100]), "request-p99-ms")
		b.ReportMetric(ms(res.requestTook[n-1]), "request-max-ms")
	}
}
