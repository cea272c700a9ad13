package guard

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/tocsin/tocsin/internal/redistest"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func sign(t testing.TB, method jwt.SigningMethod, claims jwt.MapClaims) string {
	t.Helper()
	key := any(testKey)
	if method == jwt.SigningMethodNone {
		key = jwt.UnsafeAllowNoneSignatureType
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWTVerify(t *testing.T) {
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	good := jwt.MapClaims{"iss": "idp", "sub": "alice", "jti": "j1", "exp": exp.Unix(), "scope": "items:read items:write"}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range good {
			c[k] = v
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	v := &JWT{Key: testKey, Algorithms: []string{"HS256"}, Issuer: "idp"}
	gr, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, good))
	if err != nil {
		t.Fatal(err)
	}
	if gr.ID != "j1" || gr.Subject != "alice" || strings.Join(gr.Scopes, ",") != "items:read,items:write" || !gr.Expires.Equal(exp) {
		t.Fatalf("grant = %+v", gr)
	}
	gr, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, with("scope", nil)))
	if err != nil || len(gr.Scopes) != 0 {
		t.Fatalf("no scope: %+v, %v", gr, err)
	}
	scp := with("scope", nil)
	scp["scp"] = []string{"a", "b"}
	if gr, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, scp)); err != nil || strings.Join(gr.Scopes, ",") != "a,b" {
		t.Fatalf("scp: %+v, %v", gr, err)
	}

	bad := map[string]string{
		"alg none":       sign(t, jwt.SigningMethodNone, good),
		"alg not pinned": sign(t, jwt.SigningMethodHS384, good),
		"no exp":         sign(t, jwt.SigningMethodHS256, with("exp", nil)),
		"expired":        sign(t, jwt.SigningMethodHS256, with("exp", time.Now().Add(-time.Minute).Unix())),
		"no jti":         sign(t, jwt.SigningMethodHS256, with("jti", nil)),
		"no sub":         sign(t, jwt.SigningMethodHS256, with("sub", nil)),
		"other issuer":   sign(t, jwt.SigningMethodHS256, with("iss", "evil")),
		"tampered":       sign(t, jwt.SigningMethodHS256, good) + "x",
		"not a JWT":      "hello",
	}
	for name, tok := range bad {
		if gr, err := v.Verify(context.Background(), tok); err == nil {
			t.Errorf("%s: Verify = %+v, nil; want an error", name, gr)
		}
	}
	if _, err := (&JWT{Key: testKey}).Verify(context.Background(), sign(t, jwt.SigningMethodHS256, good)); err == nil ||
		!strings.Contains(err.Error(), "Algorithms") {
		t.Errorf("no Algorithms: err = %v; want one naming Algorithms", err)
	}
}

func TestIntrospection(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	answer := `{"active":true,"sub":"alice","jti":"j1","exp":` + strconv.FormatInt(exp, 10) + `,"scope":"a b"}`
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok || id != "rs" || secret != "s3cret" || r.PostFormValue("token") != "tok" || r.Method != http.MethodPost {
			http.Error(w, "bad client", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(status)
		w.Write([]byte(answer))
	}))
	defer srv.Close()
	in := &Introspection{URL: srv.URL, ClientID: "rs", ClientSecret: "s3cret"}
	gr, err := in.Verify(context.Background(), "tok")
	if err != nil || gr.ID != "j1" || gr.Subject != "alice" || len(gr.Scopes) != 2 || gr.Expires.Unix() != exp {
		t.Fatalf("Verify = %+v, %v", gr, err)
	}
	for _, a := range []string{`{"active":false}`, `{"active":true,"sub":"alice","exp":1}`, `{"active":true,"jti":"j","sub":"a"}`, `not json`} {
		answer = a
		if _, err := in.Verify(context.Background(), "tok"); err == nil || errors.Is(err, ErrUnavailable) {
			t.Errorf("answer %s: err = %v; want a refusal", a, err)
		}
	}
	status = http.StatusInternalServerError
	if _, err := in.Verify(context.Background(), "tok"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("server error: err = %v; want %v", err, ErrUnavailable)
	}
	in.ClientSecret = "wrong"
	status = http.StatusOK
	if _, err := in.Verify(context.Background(), "tok"); err == nil || !strings.Contains(err.Error(), "ClientSecret") {
		t.Errorf("wrong secret: err = %v; want a hint about the client credentials", err)
	}
}

// countingVerifier counts the calls that reach the real verifier.
type countingVerifier struct {
	Verifier
	calls atomic.Int64
}

func (c *countingVerifier) Verify(ctx context.Context, token string) (Grant, error) {
	c.calls.Add(1)
	return c.Verifier.Verify(ctx, token)
}

func TestBearerCachesButNeverAllows(t *testing.T) {
	g, now := newTestGuard(t)
	*now = time.Now()
	v := &countingVerifier{Verifier: &JWT{Key: testKey, Algorithms: []string{"HS256"}}}
	bearer := g.Bearer(v)
	tok := sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "jti": "j1", "exp": now.Add(time.Minute).Unix()})
	mustGrant(t, g, Grant{ID: "j1", Subject: "alice", Scopes: []string{"s"}})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)

	for range 3 {
		if id, err := bearer(req); id != "j1" || err != nil {
			t.Fatalf("bearer = %q, %v", id, err)
		}
	}
	if n := v.calls.Load(); n != 1 {
		t.Fatalf("verifier called %d times for one token; want 1 (cached)", n)
	}
	// A cached token still goes through Do's check: revoking the grant refuses it.
	srv := g.Middleware("s", bearer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	if err := g.Revoke(context.Background(), "j1"); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("cached token of a revoked grant: status %d; want 401", rec.Code)
	}
	if _, err := bearer(req); !errors.Is(err, ErrRevoked) {
		t.Fatalf("bearer after revoke = %v; want %v from the cache", err, ErrRevoked)
	}
	// Expiry is checked on every request, cached or not.
	*now = now.Add(time.Minute)
	g.cache.flush(false)
	g.cache.remember(sha256.Sum256([]byte(tok)), Grant{ID: "j2", Subject: "alice", Expires: *now})
	if _, err := bearer(req); !errors.Is(err, ErrExpired) {
		t.Fatalf("bearer with an expired cached token = %v; want %v", err, ErrExpired)
	}
	for _, h := range []string{"", "Basic abc", "Bearer "} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", h)
		if _, err := bearer(r); err == nil {
			t.Errorf("Authorization %q: want an error", h)
		}
	}
}

func TestRedisSpreadsRevocations(t *testing.T) {
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	gs, _, _ := pgReplicas(t, 2, WithRedis(rdb))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening := make(chan error, 1)
	go func() { listening <- gs[1].Listen(ctx) }()
	mustGrant(t, gs[0], Grant{ID: "a1", Subject: "alice", Scopes: []string{"s"}})

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Published before the subscription is up, a revocation may be lost; resend until seen.
	waitFor("the other replica's cache knows a1 is revoked", func() bool {
		gs[0].publishRevoked(ctx, "a1")
		return gs[1].cache.isRevoked("a1")
	})
	if err := gs[0].Revoke(ctx, "a1"); err != nil {
		t.Fatal(err)
	}

	// Redis drops: the listener empties the cache and stops using it...
	rs.Stop()
	waitFor("the cache is emptied and disabled", func() bool {
		gs[1].cache.mu.Lock()
		defer gs[1].cache.mu.Unlock()
		return gs[1].cache.disabled && len(gs[1].cache.revoked) == 0
	})
	// ...while the store still refuses the grant: Redis was never the last word.
	if err := gs[1].Do(ctx, "a1", "s", func(context.Context) error { return nil }); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Do with Redis down = %v; want %v", err, ErrRevoked)
	}
	// Redis is back: the listener resubscribes and the cache is used again.
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor("the cache is enabled again", func() bool {
		gs[1].cache.mu.Lock()
		defer gs[1].cache.mu.Unlock()
		return !gs[1].cache.disabled
	})
	cancel()
	if err := <-listening; !errors.Is(err, context.Canceled) {
		t.Fatalf("Listen = %v; want it to end with the context", err)
	}
	if err := New().Listen(ctx); err == nil || !strings.Contains(err.Error(), "WithRedis") {
		t.Fatalf("Listen without Redis = %v; want a hint to use WithRedis", err)
	}
}

func FuzzParseIntrospection(f *testing.F) {
	f.Add(`{"active":true,"sub":"alice","jti":"j1","exp":2000000000,"scope":"a b"}`)
	f.Add(`{"active":false}`)
	f.Add(`{"active":true,"sub":"","jti":"j","exp":-1}`)
	f.Fuzz(func(t *testing.T, s string) {
		gr, err := parseIntrospection(strings.NewReader(s))
		if err == nil && (gr.ID == "" || gr.Subject == "" || gr.Expires.IsZero()) {
			t.Fatalf("accepted an answer that names no grant: %+v", gr)
		}
	})
}

func FuzzJWTVerify(f *testing.F) {
	f.Add(sign(f, jwt.SigningMethodHS256, jwt.MapClaims{"sub": "a", "jti": "j", "exp": 4000000000}))
	f.Add(sign(f, jwt.SigningMethodNone, jwt.MapClaims{"sub": "a", "jti": "j", "exp": 4000000000}))
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")
	v := &JWT{Key: testKey, Algorithms: []string{"HS256"}}
	f.Fuzz(func(t *testing.T, tok string) {
		gr, err := v.Verify(context.Background(), tok)
		if err == nil && (gr.ID == "" || gr.Subject == "" || gr.Expires.IsZero()) {
			t.Fatalf("accepted a token that names no grant or has no expiry: %+v", gr)
		}
	})
}
