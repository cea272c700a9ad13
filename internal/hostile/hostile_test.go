package hostile

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

func TestModes(t *testing.T) {
	s := Start(t, Options{Paths: map[string]Mode{
		"/create": Create, "/once": OneShot, "/redirect": RedirectOffOrigin, "/slow": TooManyRequests,
		"/echo": Echo, "/fail": EchoError, "/reset": Reset, "/stall": StallAfterHeaders,
		"/headers": EndlessHeaders, "/body": EndlessBody,
	}, Limit: 4 << 20})
	c := &http.Client{
		Timeout:       2 * time.Second,
		Transport:     &http.Transport{MaxResponseHeaderBytes: 64 << 10},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	status := func(path string) int {
		resp, _, err := get(t, c, s.URL()+path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return resp.StatusCode
	}
	if _, body, _ := get(t, c, s.URL()+"/create"); string(body) != `{"id":"r1"}` {
		t.Errorf("create: %s", body)
	}
	if _, body, _ := get(t, c, s.URL()+"/create"); string(body) != `{"id":"r2"}` {
		t.Errorf("create again: %s", body)
	}
	if a, b := status("/once"), status("/once"); a != 200 || b != 409 {
		t.Errorf("one-shot: %d then %d", a, b)
	}
	resp, _, err := get(t, c, s.URL()+"/redirect")
	if err != nil || resp.StatusCode != 302 || resp.Header.Get("Location") != s.DecoyURL()+"/redirect?"+DecoyQuery {
		t.Errorf("redirect: %v %v", resp, err)
	}
	if resp, _, _ := get(t, c, s.URL()+"/slow"); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "86400" {
		t.Errorf("429: %v", resp)
	}
	req, _ := http.NewRequest("POST", s.URL()+"/fail?key=q1", strings.NewReader("hook-body"))
	req.Header.Set("X-Admin-Key", "admin-1")
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Method, Query, Body string
		Headers             http.Header
	}
	if err := json.NewDecoder(r.Body).Decode(&e); err != nil || r.StatusCode != 500 || e.Method != "POST" || e.Query != "key=q1" || e.Body != "hook-body" || e.Headers.Get("X-Admin-Key") != "admin-1" {
		t.Errorf("echo-error: %d %+v %v", r.StatusCode, e, err)
	}
	r.Body.Close()
	if status("/echo") != 200 {
		t.Error("echo")
	}
	if _, _, err := get(t, c, s.URL()+"/reset"); err == nil {
		t.Error("reset: got a response")
	}
	start := time.Now()
	if _, _, err := get(t, c, s.URL()+"/stall"); err == nil || time.Since(start) < time.Second {
		t.Errorf("stall: err %v after %v", err, time.Since(start))
	}
	if _, _, err := get(t, c, s.URL()+"/headers"); err == nil || !strings.Contains(err.Error(), "header") {
		t.Errorf("endless headers: %v", err)
	}
	if _, body, err := get(t, c, s.URL()+"/body"); len(body) != 1<<20 || err != nil {
		t.Errorf("endless body: %d bytes, %v", len(body), err)
	}
	if s.DecoyConnections() != 0 {
		t.Errorf("the decoy got %d connections", s.DecoyConnections())
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.DecoyURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	for deadline := time.Now().Add(2 * time.Second); s.DecoyConnections() != 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if s.DecoyConnections() != 1 {
		t.Errorf("the decoy counted %d connections, want 1", s.DecoyConnections())
	}
}

// The echo-secrets body puts the secret at every offset around the mark, one per request.
func TestEchoSecretsOffsets(t *testing.T) {
	const secret = "tok-0123456789"
	s := Start(t, Options{Default: EchoSecrets, Secrets: []string{secret}, Around: 50})
	seen := map[int]bool{}
	for range len(secret) + 1 {
		_, body, err := get(t, http.DefaultClient, s.URL()+"/x")
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.Index(string(body), secret)] = true
	}
	for off := 50 - len(secret); off <= 50; off++ {
		if !seen[off] {
			t.Errorf("no response had the secret at offset %d (got %v)", off, seen)
		}
	}
	if s.Requests("/x") != len(secret)+1 {
		t.Errorf("counted %d requests", s.Requests("/x"))
	}
}

// Close ends the connections a mode holds open, so a test never waits on its own server.
func TestCloseEndsHeldConnections(t *testing.T) {
	s := Start(t, Options{Default: StallAfterHeaders})
	errc := make(chan error, 1)
	go func() {
		_, _, err := get(t, http.DefaultClient, s.URL()+"/")
		errc <- err
	}()
	for s.Requests("/") == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	s.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("a stalled body read to the end")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a held connection outlived Close")
	}
}

// Login mints tokens and cookies that Guarded accepts, CreateWithJWT hands out ids with a JWT, and
// EchoSecrets puts each of them across the mark in turn.
func TestMintedSecrets(t *testing.T) {
	s := Start(t, Options{Paths: map[string]Mode{"/login": Login, "/items": CreateWithJWT, "/guarded": Guarded, "/echo": EchoSecrets}})
	resp, body, err := get(t, http.DefaultClient, s.URL()+"/login")
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	if err := json.Unmarshal(body, &login); err != nil || strings.Count(login.Token, ".") != 2 || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %s (cookies %v)", body, resp.Cookies())
	}
	resp, body, _ = get(t, http.DefaultClient, s.URL()+"/items")
	var item struct{ ID, Receipt string }
	if err := json.Unmarshal(body, &item); err != nil || resp.StatusCode != 201 || item.ID != "r1" || strings.Count(item.Receipt, ".") != 2 {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	minted := s.Minted()
	if len(minted) != 5 || minted[0] != login.Token || minted[2] != "r1" || minted[3] != item.Receipt {
		t.Errorf("minted %q", minted)
	}
	for token, want := range map[string]int{login.Token: 200, item.Receipt: 401, "": 401} {
		req, _ := http.NewRequest("GET", s.URL()+"/guarded", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != want {
			t.Errorf("guarded with %q: %d, want %d", token, r.StatusCode, want)
		}
	}
	for i, want := range minted {
		_, body, _ := get(t, http.DefaultClient, s.URL()+"/echo")
		if at := strings.Index(string(body), want); at != 200-len(want) {
			t.Errorf("request %d: %q at %d, want it to end at the mark", i+1, want, at)
		}
	}
}
