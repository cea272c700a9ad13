// Package racebench measures how tightly the race engine synchronises requests, against naive
// goroutine-per-request baselines, on loopback and on an emulated network link. A server records the
// moment each request body reached EOF; a batch's spread is the last such moment minus the first.
// Methods are interleaved batch by batch, so load on the machine hits them alike.
package racebench

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/race"
)

// Config sets the size of a run.
type Config struct {
	Sizes   []int         // batch sizes; default 2, 10, 20, 100
	Batches int           // per method and size; default 50
	Netem   bool          // also measure over a veth pair into a network namespace with netem delay
	Settle  time.Duration // the engine's wait before the release; zero takes race.DefaultSettle
	Out     io.Writer
}

// recorder stamps body EOF per batch.
type recorder struct {
	mu    sync.Mutex
	times map[string][]time.Time
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	now := time.Now()
	if id := req.Header.Get("X-Race-Batch"); id != "" {
		r.mu.Lock()
		r.times[id] = append(r.times[id], now)
		r.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

// spread returns max-min of a batch's arrivals, and how many arrived.
func (r *recorder) spread(id string) (time.Duration, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := r.times[id]
	delete(r.times, id)
	if len(ts) == 0 {
		return 0, 0
	}
	lo, hi := ts[0], ts[0]
	for _, t := range ts {
		if t.Before(lo) {
			lo = t
		}
		if t.After(hi) {
			hi = t
		}
	}
	return hi.Sub(lo), len(ts)
}

// link is where the servers listen and how the client reaches them.
type link struct {
	name     string
	tlsURL   string
	clearURL string
	tlsCfg   *tls.Config
	rec      *recorder
	close    func()
}

// startServers serves the recorder over TLS (h2 and HTTP/1.1) and cleartext (HTTP/1.1 and h2c) on
// the given listeners.
func startServers(name string, tlsLn, clearLn net.Listener) *link {
	rec := &recorder{times: map[string][]time.Time{}}
	ts := httptest.NewUnstartedServer(rec)
	ts.Listener.Close()
	ts.Listener = tlsLn
	ts.EnableHTTP2 = true
	ts.StartTLS()
	cs := httptest.NewUnstartedServer(rec)
	cs.Listener.Close()
	cs.Listener = clearLn
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	cs.Config.Protocols = &p
	cs.Start()
	return &link{
		name: name, tlsURL: ts.URL, clearURL: cs.URL, rec: rec,
		tlsCfg: ts.Client().Transport.(*http.Transport).TLSClientConfig,
		close:  func() { ts.Close(); cs.Close() },
	}
}

// method sends one batch of n requests tagged with id and returns the release's segment count (-1
// when not applicable).
type method struct {
	name string
	send func(ctx context.Context, l *link, id string, n int) (int, error)
}

func body(i int) []byte { return []byte(`{"coupon":"bench","n":` + strconv.Itoa(i) + `}`) }

func methods(c *client.Client, settle time.Duration) []method {
	engine := func(mode race.Mode, useTLS bool) func(ctx context.Context, l *link, id string, n int) (int, error) {
		return func(ctx context.Context, l *link, id string, n int) (int, error) {
			base := l.clearURL
			if useTLS {
				base = l.tlsURL
			}
			reqs := make([]race.Request, n)
			for i := range reqs {
				reqs[i] = race.Request{Method: "POST", URL: base + "/redeem", Header: http.Header{"X-Race-Batch": {id}}, Body: body(i)}
			}
			b, err := race.Send(ctx, race.Options{Mode: mode, Client: c, TLSConfig: l.tlsCfg, Settle: settle}, reqs)
			if err != nil {
				return -1, err
			}
			for _, r := range b.Responses {
				if r.Err != nil {
					return -1, r.Err
				}
			}
			return b.Release.Segments, nil
		}
	}
	naive := func(newClient func(l *link, n int) *http.Client, warm bool) func(ctx context.Context, l *link, id string, n int) (int, error) {
		return func(ctx context.Context, l *link, id string, n int) (int, error) {
			hc := newClient(l, n)
			defer hc.CloseIdleConnections()
			if warm { // open the connections first, untagged, so the batch reuses them
				if err := goroutines(ctx, hc, l.clearURL, "", n); err != nil {
					return -1, err
				}
			}
			return -1, goroutines(ctx, hc, l.clearURL, id, n)
		}
	}
	return []method{
		{"single-packet h2 (TLS)", engine(race.SinglePacketH2, true)},
		{"single-packet h2c", engine(race.SinglePacketH2, false)},
		{"last-byte h1", engine(race.LastByteH1, false)},
		{"naive, default client (new conns)", naive(func(*link, int) *http.Client {
			return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		}, false)},
		{"naive, warm h1 conns", naive(func(_ *link, n int) *http.Client {
			return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}}
		}, true)},
		{"naive, one h2c conn", naive(func(*link, int) *http.Client {
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			return &http.Client{Transport: &http.Transport{Protocols: &p}}
		}, true)},
	}
}

// goroutines is the naive baseline: one goroutine per request, released by closing a channel.
func goroutines(ctx context.Context, hc *http.Client, base, id string, n int) error {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, "POST", base+"/redeem", strings.NewReader(string(body(i))))
			if err != nil {
				errs[i] = err
				return
			}
			if id != "" {
				req.Header.Set("X-Race-Batch", id)
			}
			<-start
			resp, err := hc.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Row is one line of the result table.
type Row struct {
	Link, Method    string
	N               int
	Median, P90, SD time.Duration
	SegMin, SegMax  int // -1: not applicable
	Batches         int
	Ratio           float64 // median over single-packet h2c's median on the same link and N
}

// Run measures every method on loopback and, when asked and possible, on the netem link.
func Run(ctx context.Context, cfg Config) ([]Row, error) {
	if len(cfg.Sizes) == 0 {
		cfg.Sizes = []int{2, 10, 20, 100}
	}
	if cfg.Batches <= 0 {
		cfg.Batches = 50
	}
	var links []*link
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	links = append(links, startServers("loopback", ln1, ln2))
	if cfg.Netem {
		nl, err := netemLink()
		if err != nil {
			fmt.Fprintf(cfg.Out, "netem link: skipped: %v\n", err)
			// Without netem, a userspace bridge delays each frame as netem would; failing that, a
			// userspace relay on loopback delays each chunk read.
			if pl, perr := packetLink(); perr == nil {
				fmt.Fprintln(cfg.Out, "measuring a userspace packet bridge (10ms+-3ms per frame) instead")
				links = append(links, pl)
			} else if jl, jerr := jitterLink(); jerr != nil {
				fmt.Fprintf(cfg.Out, "packet jitter link: skipped: %v\nuserspace jitter link: skipped: %v\n", perr, jerr)
			} else {
				fmt.Fprintf(cfg.Out, "packet jitter link: skipped: %v\n", perr)
				fmt.Fprintln(cfg.Out, "measuring a userspace jitter relay (10ms+-3ms per chunk) instead")
				links = append(links, jl)
			}
		} else {
			links = append(links, nl)
		}
	}
	defer func() {
		for _, l := range links {
			l.close()
		}
	}()
	var rows []Row
	for _, l := range links {
		origins := []string{l.tlsURL, l.clearURL}
		c, err := client.New(client.Options{Origins: origins, Budget: 1 << 30, Rate: 1e9, Timeout: 20 * time.Second})
		if err != nil {
			return nil, err
		}
		ms := methods(c, cfg.Settle)
		for _, n := range cfg.Sizes {
			spreads := make([][]time.Duration, len(ms))
			segs := make([][]int, len(ms))
			failed := make([]error, len(ms))
			for b := range cfg.Batches {
				// Rotate the order so no method always runs right after another.
				for k := range ms {
					mi := (k + b) % len(ms)
					if failed[mi] != nil {
						continue
					}
					id := fmt.Sprintf("%s-%d-%d-%d", l.name, n, b, mi)
					sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					seg, err := ms[mi].send(sctx, l, id, n)
					cancel()
					var sp time.Duration
					if err == nil {
						var got int
						if sp, got = l.rec.spread(id); got != n {
							err = fmt.Errorf("server saw %d of %d requests", got, n)
						}
					}
					if err != nil {
						// One method failing must not throw away the others' measurements: its row
						// says what happened and the run goes on.
						failed[mi] = fmt.Errorf("batch %d: %w", b, err)
						fmt.Fprintf(cfg.Out, "%s, N=%d, %s: %v\n", l.name, n, ms[mi].name, failed[mi])
						continue
					}
					spreads[mi] = append(spreads[mi], sp)
					segs[mi] = append(segs[mi], seg)
				}
				if err := ctx.Err(); err != nil {
					return rows, err
				}
			}
			ref := median(spreads[1])
			for mi, m := range ms {
				r := Row{Link: l.name, Method: m.name, N: n, Batches: len(spreads[mi])}
				if failed[mi] != nil {
					r.Method += " (failed: see the log)"
				}
				if len(spreads[mi]) == 0 {
					r.SegMin, r.SegMax = -1, -1
					rows = append(rows, r)
					continue
				}
				r.Median, r.P90, r.SD = median(spreads[mi]), quantile(spreads[mi], 0.9), sd(spreads[mi])
				r.SegMin, r.SegMax = slices.Min(segs[mi]), slices.Max(segs[mi])
				if ref > 0 {
					r.Ratio = float64(r.Median) / float64(ref)
				}
				rows = append(rows, r)
			}
		}
	}
	return rows, nil
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sd(ds []time.Duration) time.Duration {
	if len(ds) < 2 {
		return 0
	}
	var mean float64
	for _, d := range ds {
		mean += float64(d)
	}
	mean /= float64(len(ds))
	var v float64
	for _, d := range ds {
		v += (float64(d) - mean) * (float64(d) - mean)
	}
	return time.Duration(math.Sqrt(v / float64(len(ds)-1)))
}

// WriteTable prints rows as a Markdown table.
func WriteTable(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| link | N | method | median | p90 | sd | segments | batches | ratio |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		seg := "-"
		if r.SegMin >= 0 {
			seg = strconv.Itoa(r.SegMin)
			if r.SegMax != r.SegMin {
				seg += "-" + strconv.Itoa(r.SegMax)
			}
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %d | %.1fx |\n", r.Link, r.N, r.Method, us(r.Median), us(r.P90), us(r.SD), seg, r.Batches, r.Ratio)
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%d us", d.Microseconds()) }
