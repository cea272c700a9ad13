package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/hostile"
	"github.com/tocsin/tocsin/internal/redact"
)

// newServer starts an httptest server on 127.0.0.1 (httptest's default) and counts the requests
// that reach it.
func newServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func ok(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }

func newClient(t *testing.T, o Options) *Client {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func get(t *testing.T, c *Client, url string) (*Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.Do(context.Background(), req)
}

func TestNewValidatesOrigins(t *testing.T) {
	for _, origins := range [][]string{
		nil,
		{"ftp://127.0.0.1"},
		{"http://"},
		{"http://127.0.0.1/api"},
		{"http://user:pw@127.0.0.1"},
		{"http://127.0.0.1?x=1"},
	} {
		if _, err := New(Options{Origins: origins}); err == nil {
			t.Errorf("New(%q): want an error", origins)
		}
	}
	// A query, fragment or user info may hold a key: no message repeats them.
	for _, origin := range []string{"http://127.0.0.1?key=S3cret", "http://127.0.0.1#S3cret", "http://u:S3cret@127.0.0.1", "http://[::1?key=S3cret", "ftp://h/?key=S3cret"} {
		if _, err := New(Options{Origins: []string{origin}}); err == nil || strings.Contains(err.Error(), "S3cret") {
			t.Errorf("New(%q): err = %v, want one that does not repeat the secret", origin, err)
		}
	}
	if _, err := New(Options{Origins: []string{"http://127.0.0.1:1"}, Budget: -1}); err == nil {
		t.Error("negative budget: want an error")
	}
}

func TestOriginNormalisation(t *testing.T) {
	for _, tc := range []struct {
		allowed, url string
		want         bool
	}{
		{"http://API.example.com", "http://api.example.com:80/x", true},
		{"https://api.example.com:443/", "HTTPS://Api.Example.Com/x?q=1", true},
		{"http://api.example.com", "https://api.example.com/", false},
		{"http://api.example.com", "http://api.example.com:8080/", false},
		{"http://api.example.com", "http://api.example.com.evil.test/", false},
		{"http://[::1]:8080", "http://[::1]:8080/x", true},
	} {
		g, err := parseOrigin(tc.allowed)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		got, _ := originOf(req.URL)
		if (got == g) != tc.want {
			t.Errorf("allowed %s, url %s: got origin %s vs %s, want match=%v", tc.allowed, tc.url, got, g, tc.want)
		}
	}
}

func TestRefusesOtherOriginWithoutTraffic(t *testing.T) {
	allowed, _ := newServer(t, ok)
	other, otherHits := newServer(t, ok)
	c := newClient(t, Options{Origins: []string{allowed.URL}})

	_, err := get(t, c, other.URL+"/secret?token=hunter2")
	if !errors.Is(err, ErrOrigin) {
		t.Fatalf("err = %v, want ErrOrigin", err)
	}
	if otherHits.Load() != 0 {
		t.Fatalf("the other server got %d requests, want 0", otherHits.Load())
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the query: %v", err)
	}
	if !strings.Contains(err.Error(), "GET "+other.URL+"/secret") {
		t.Errorf("error %q does not name the method and URL", err)
	}
	if c.Sent() != 0 {
		t.Errorf("Sent() = %d, want 0: a refused request is not spent", c.Sent())
	}
}

func TestRedirects(t *testing.T) {
	other, otherHits := newServer(t, ok)
	var srv *httptest.Server
	srv, _ = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/off":
			http.Redirect(w, r, other.URL+"/stolen", http.StatusFound)
		case "/hop":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop?sig=LoopS3cret", http.StatusFound)
		case "/bad-location":
			w.Header().Set("Location", "/a%zz?key=LocationS3cret")
			w.WriteHeader(http.StatusFound)
		case "/final":
			if r.Header.Get("Authorization") != "Bearer t0ken" {
				http.Error(w, "no auth", http.StatusUnauthorized)
				return
			}
			io.WriteString(w, "final")
		}
	})
	c := newClient(t, Options{Origins: []string{srv.URL}})

	t.Run("off-origin not followed", func(t *testing.T) {
		resp, err := get(t, c, srv.URL+"/off")
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusFound || resp.Header.Get("Location") != other.URL+"/stolen" {
			t.Errorf("got %d Location %q, want the 302 itself", resp.Status, resp.Header.Get("Location"))
		}
		if otherHits.Load() != 0 {
			t.Errorf("the other origin got %d requests, want 0", otherHits.Load())
		}
		if resp.Redirect != other.URL+"/stolen" || !strings.Contains(resp.StatusText(), "302, a redirect to "+other.URL+"/stolen") {
			t.Errorf("Redirect %q, StatusText %q: want where it pointed", resp.Redirect, resp.StatusText())
		}
	})
	t.Run("off-origin Location named without its query", func(t *testing.T) {
		h := hostile.Start(t, hostile.Options{Default: hostile.RedirectOffOrigin})
		c := newClient(t, Options{Origins: []string{h.URL()}})
		resp, err := get(t, c, h.URL()+"/login")
		if err != nil {
			t.Fatal(err)
		}
		if resp.Redirect != h.DecoyURL()+"/login" || strings.Contains(resp.StatusText(), hostile.DecoyQuery) {
			t.Errorf("Redirect %q, StatusText %q: want the decoy's URL without its query", resp.Redirect, resp.StatusText())
		}
		if h.DecoyConnections() != 0 {
			t.Errorf("the decoy got %d connections", h.DecoyConnections())
		}
	})
	t.Run("Location that is not a URL", func(t *testing.T) {
		_, err := get(t, c, srv.URL+"/bad-location")
		if err == nil || !strings.Contains(err.Error(), `a redirect to a Location that is not a URL: "/a%zz"`) || strings.Contains(err.Error(), "S3cret") {
			t.Errorf("err = %v, want the Location without its query", err)
		}
	})
	t.Run("same-origin followed", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/hop", nil)
		req.Header.Set("Authorization", "Bearer t0ken")
		before := c.Sent()
		resp, err := c.Do(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusOK || string(resp.Body) != "final" {
			t.Errorf("got %d %q, want 200 final", resp.Status, resp.Body)
		}
		if n := c.Sent() - before; n != 2 {
			t.Errorf("spent %d requests, want 2: each hop counts", n)
		}
	})
	t.Run("loop stops", func(t *testing.T) {
		before := c.Sent()
		_, err := get(t, c, srv.URL+"/loop")
		if err == nil || !strings.Contains(err.Error(), "stopped after 5 redirects, the last to "+srv.URL+"/loop") || strings.Contains(err.Error(), "S3cret") {
			t.Fatalf("err = %v, want a too-many-redirects error naming the last Location without its query", err)
		}
		if n := c.Sent() - before; n != maxRedirects+1 {
			t.Errorf("spent %d requests, want %d", n, maxRedirects+1)
		}
	})
}

func TestBudget(t *testing.T) {
	srv, hits := newServer(t, ok)
	c := newClient(t, Options{Origins: []string{srv.URL}, Budget: 3})
	for i := range 3 {
		if _, err := get(t, c, srv.URL); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	_, err := get(t, c, srv.URL)
	if !errors.Is(err, ErrBudget) {
		t.Fatalf("err = %v, want ErrBudget", err)
	}
	if hits.Load() != 3 || c.Sent() != 3 {
		t.Errorf("server saw %d, Sent() = %d, want 3 and 3", hits.Load(), c.Sent())
	}
}

func TestBudgetConcurrent(t *testing.T) {
	srv, hits := newServer(t, ok)
	c := newClient(t, Options{Origins: []string{srv.URL}, Budget: 20, Rate: 10000})
	var wg sync.WaitGroup
	var refused atomic.Int64
	for range 50 {
		wg.Go(func() {
			if _, err := get(t, c, srv.URL); errors.Is(err, ErrBudget) {
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	if hits.Load() != 20 || refused.Load() != 30 {
		t.Errorf("server saw %d, refused %d, want 20 and 30", hits.Load(), refused.Load())
	}
}

func TestRateLimit(t *testing.T) {
	srv, _ := newServer(t, ok)
	// 20 requests at 20/s with a burst of 10: the last 10 wait 50 ms each, about 500 ms in all.
	c := newClient(t, Options{Origins: []string{srv.URL}, Rate: 20})
	start := time.Now()
	for range 20 {
		if _, err := get(t, c, srv.URL); err != nil {
			t.Fatal(err)
		}
	}
	if elapsed := time.Since(start); elapsed < 350*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("20 requests at 20/s took %s, want about 500ms", elapsed)
	}
}

func TestRateLimitHonoursContext(t *testing.T) {
	srv, hits := newServer(t, ok)
	c := newClient(t, Options{Origins: []string{srv.URL}, Rate: 0.1})
	for range rateBurst {
		if _, err := get(t, c, srv.URL); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	start := time.Now()
	if _, err := c.Do(ctx, req); err == nil {
		t.Fatal("want an error: the next token is 10 s away")
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("gave up after %s, want promptly", elapsed)
	}
	if hits.Load() != rateBurst || c.Sent() != rateBurst {
		t.Errorf("server saw %d, Sent() = %d, want %d: a request that never left is not spent", hits.Load(), c.Sent(), rateBurst)
	}
}

func TestBodyCap(t *testing.T) {
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 100))
	})
	c := newClient(t, Options{Origins: []string{srv.URL}, MaxResponseBytes: 10})
	resp, err := get(t, c, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Body) != 10 || !resp.Truncated {
		t.Errorf("got %d bytes, truncated %v, want 10 and true", len(resp.Body), resp.Truncated)
	}

	c = newClient(t, Options{Origins: []string{srv.URL}, MaxResponseBytes: 100})
	resp, err = get(t, c, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Body) != 100 || resp.Truncated {
		t.Errorf("got %d bytes, truncated %v, want 100 and false: a body exactly at the cap is whole", len(resp.Body), resp.Truncated)
	}
}

// Headers stop at MaxHeaderBytes, as in the race engine. The server stops at 4 MiB, under net/http's
// own client default of 10 MiB, and holds the connection: without the cap the read waits there for
// the timeout.
func TestHeaderCap(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{Default: hostile.EndlessHeaders, Limit: 4 << 20})
	c := newClient(t, Options{Origins: []string{srv.URL()}, Timeout: 5 * time.Second})
	start := time.Now()
	_, err := get(t, c, srv.URL()+"/")
	if err == nil || !strings.Contains(err.Error(), "1048576") {
		t.Errorf("err = %v, want the header cap", err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("took %v, as if read until the timeout", d)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c := newClient(t, Options{Origins: []string{srv.URL}, Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := get(t, c, srv.URL+"/slow?token=hunter2")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("timed out after %s, want about 100ms", elapsed)
	}
	if msg := err.Error(); !strings.Contains(msg, "GET "+srv.URL+"/slow:") || strings.Contains(msg, "hunter2") {
		t.Errorf("error %q: want method and URL without the query", msg)
	}
}

func TestTimeoutCoversBody(t *testing.T) {
	release := make(chan struct{})
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c := newClient(t, Options{Origins: []string{srv.URL}, Timeout: 100 * time.Millisecond})
	if _, err := get(t, c, srv.URL); err == nil {
		t.Fatal("want an error: the body never ends")
	}
}

func TestConnectionReuseAndStamps(t *testing.T) {
	var newConns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond) // so that Received is measurably after Sent
		// Longer than the transport's small-body optimisation, so reuse depends on Do draining it.
		io.WriteString(w, strings.Repeat("y", 64<<10))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	// The cap is below the body size: Do must still drain the rest for the connection to be reused.
	c := newClient(t, Options{Origins: []string{srv.URL}, MaxResponseBytes: 1000})
	for range 10 {
		before := time.Now()
		resp, err := get(t, c, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		if resp.Sent.Before(before) || resp.Received.Before(resp.Sent.Add(5*time.Millisecond)) || resp.Received.After(after) {
			t.Errorf("stamps out of order: before %v sent %v received %v after %v", before, resp.Sent, resp.Received, after)
		}
	}
	if n := newConns.Load(); n != 1 {
		t.Errorf("10 sequential requests opened %d connections, want 1", n)
	}
}

func TestHTTPClientSameRules(t *testing.T) {
	allowed, hits := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/off" {
			http.Redirect(w, r, "http://127.0.0.2:1/elsewhere", http.StatusFound)
			return
		}
		io.WriteString(w, "ok")
	})
	other, otherHits := newServer(t, ok)
	c := newClient(t, Options{Origins: []string{allowed.URL}, Budget: 3})
	hc := c.HTTPClient()

	if _, err := hc.Get(other.URL); !errors.Is(err, ErrOrigin) {
		t.Errorf("other origin: err = %v, want ErrOrigin", err)
	}
	if otherHits.Load() != 0 {
		t.Errorf("the other server got %d requests", otherHits.Load())
	}
	resp, err := hc.Get(allowed.URL + "/off")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("off-origin redirect: status %d, want the 302 itself", resp.StatusCode)
	}
	for range 2 {
		resp, err := hc.Get(allowed.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if _, err := hc.Get(allowed.URL); !errors.Is(err, ErrBudget) {
		t.Errorf("err = %v, want ErrBudget: HTTPClient spends the same budget", err)
	}
	if hits.Load() != 3 || c.Sent() != 3 {
		t.Errorf("server saw %d, Sent() = %d, want 3 and 3", hits.Load(), c.Sent())
	}
}

func TestReadyWaitsForTheRateLimitWithoutSpending(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c, err := New(Options{Origins: []string{srv.URL}, Rate: 50})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Drain the burst, then ask for 4 back-to-back requests: at 50/s that takes about 80 ms.
	for c.guard.limiter.Tokens() >= 1 {
		c.guard.limiter.Allow()
	}
	start := time.Now()
	if err := c.Ready(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 60*time.Millisecond {
		t.Errorf("Ready returned after %v, want about 80ms", waited)
	}
	if c.Sent() != 0 {
		t.Errorf("Ready spent %d requests of the budget", c.Sent())
	}
	for i := range 4 {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		before := time.Now()
		if _, err := c.Do(ctx, req); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(before); d > 15*time.Millisecond {
			t.Errorf("request %d after Ready waited %v for the limiter", i, d)
		}
	}
}

// SetLog sees every request: answered (with its status, never the query), and refused before sending.
func TestSetLogSeesEveryRequest(t *testing.T) {
	srv, _ := newServer(t, ok)
	c := newClient(t, Options{Origins: []string{srv.URL}})
	var mu sync.Mutex
	var got []Logged
	c.SetLog(func(l Logged) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, l)
	})
	if _, err := get(t, c, srv.URL+"/items?token=secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, c, "http://127.0.0.2:1/elsewhere"); err == nil {
		t.Fatal("a request off the allowed origins went through")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("logged %+v, want 2 entries", got)
	}
	if got[0].Status != 200 || got[0].URL != srv.URL+"/items" || got[0].Err != nil {
		t.Errorf("answered request logged as %+v", got[0])
	}
	if !errors.Is(got[1].Err, ErrOrigin) || got[1].Status != 0 {
		t.Errorf("refused request logged as %+v", got[1])
	}
}

// Reach connects without sending a request, and refuses an origin the config does not name.
func TestReachSendsNothing(t *testing.T) {
	srv, hits := newServer(t, ok)
	c := newClient(t, Options{Origins: []string{srv.URL}})
	if _, err := c.Reach(context.Background(), srv.URL); err != nil {
		t.Fatalf("Reach %s: %v", srv.URL, err)
	}
	if _, err := c.Reach(context.Background(), "http://127.0.0.2:1"); !errors.Is(err, ErrOrigin) {
		t.Errorf("Reach off the allowed origins: %v, want ErrOrigin", err)
	}
	if n := hits.Load(); n != 0 || c.Sent() != 0 {
		t.Errorf("Reach sent %d requests (client counted %d); want none", n, c.Sent())
	}
}

// The client teaches its redactor the secrets of everything it sends and reads, before the caller
// sees the response: Do and the HTTPClient it hands to libraries alike.
func TestLearnsSecretsOfTraffic(t *testing.T) {
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "sess-" + r.URL.Path[1:]})
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"7","access_token":"at-%s"}`, r.URL.Path[1:])
	})
	red := &redact.Redactor{}
	c := newClient(t, Options{Origins: []string{srv.URL}, Redactor: red})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/do?api_key=qk1&page=2", strings.NewReader(`{"password":"pw1"}`))
	req.Header.Set("X-Admin-Key", "ak1")
	if _, err := c.Do(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	resp, err := c.HTTPClient().Get(srv.URL + "/lib")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	want := []string{"ak1", "at-do", "at-lib", "pw1", "qk1", "sess-do", "sess-lib"}
	if got := red.Secrets(); !slices.Equal(got, want) {
		t.Errorf("learned %q, want %q", got, want)
	}
	if c.Redactor() != red {
		t.Error("Redactor() is not the one given")
	}
}
