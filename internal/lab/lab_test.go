package lab

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const allAliceScopes = "items:read items:write items:delete reports:read"

// harness drives one lab over HTTP, as the scanner would.
type harness struct {
	t   *testing.T
	lab *Lab
}

func startLab(t *testing.T, opts Options) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := Start(ctx, "127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return &harness{t: t, lab: l}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %s", r.status, r.body)
	}
	return m
}

// do sends one request; auth is the whole Authorization header value, or empty.
func (h *harness) do(method, path, auth, contentType, body string) response {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h.lab.URL()+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func (h *harness) clientBasic() string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(clientID, h.lab.Env()["TOCSIN_LAB_CLIENT_SECRET"])
	return req.Header.Get("Authorization")
}

// postForm posts a form with HTTP Basic client authentication.
func (h *harness) postForm(path string, form url.Values) response {
	h.t.Helper()
	return h.do("POST", path, h.clientBasic(), "application/x-www-form-urlencoded", form.Encode())
}

func (h *harness) token(user, scope string) string {
	h.t.Helper()
	r := h.postForm("/oauth/token", url.Values{
		"grant_type": {"password"}, "username": {user}, "password": {user + "-password"}, "scope": {scope},
	})
	if r.status != 200 {
		h.t.Fatalf("token for %s: %d %s", user, r.status, r.body)
	}
	return r.json(h.t)["access_token"].(string)
}

func (h *harness) api(method, path, token, body string) response {
	h.t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	return h.do(method, path, "Bearer "+token, ct, body)
}

func (h *harness) createItem(token string) string {
	h.t.Helper()
	r := h.api("POST", "/items", token, `{"name": "thing"}`)
	if r.status != 201 {
		h.t.Fatalf("create item: %d %s", r.status, r.body)
	}
	return r.json(h.t)["id"].(string)
}

func (h *harness) revoke(token string) int {
	h.t.Helper()
	return h.postForm("/oauth/revoke", url.Values{"token": {token}, "token_type_hint": {"access_token"}}).status
}

func (h *harness) setScopes(subject, scopes string) int {
	h.t.Helper()
	body, _ := json.Marshal(map[string][]string{"scopes": strings.Fields(scopes)})
	return h.do("PUT", "/idp/subjects/"+subject+"/scopes", "Bearer "+h.lab.Env()["TOCSIN_LAB_ADMIN_KEY"], "application/json", string(body)).status
}

// eventually polls call until it returns want, failing after limit. It returns when that happened.
func eventually(t *testing.T, limit time.Duration, want int, call func() int) time.Time {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := call()
		if got == want {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d after %v; want %d", got, limit, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartRefuses(t *testing.T) {
	ctx := context.Background()
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:80", "127.0.0.1"} {
		l, err := Start(ctx, addr, Options{Flavor: Vulnerable})
		if err == nil {
			l.Close()
			t.Errorf("Start(%q) succeeded; want a refusal", addr)
		}
	}
	if _, err := Start(ctx, "127.0.0.1:0", Options{Flavor: "secure"}); err == nil || !strings.Contains(err.Error(), "flavor") {
		t.Errorf("Start with an unknown flavor = %v; want a flavor error", err)
	}
}

func TestHealthzAndClose(t *testing.T) {
	h := startLab(t, Options{Flavor: Fixed})
	if r := h.do("GET", "/healthz", "", "", ""); r.status != 200 || r.json(t)["flavor"] != Fixed {
		t.Fatalf("healthz: %d %s", r.status, r.body)
	}
	if !strings.HasPrefix(h.lab.URL(), "http://127.0.0.1:") {
		t.Errorf("URL = %q", h.lab.URL())
	}
	if err := h.lab.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(h.lab.URL() + "/healthz"); err == nil {
		t.Error("lab still answers after Close")
	}
}

func TestTokenIssue(t *testing.T) {
	h := startLab(t, Options{Flavor: Vulnerable, TokenLifetime: time.Minute})
	secret := h.lab.Env()["TOCSIN_LAB_CLIENT_SECRET"]

	t.Run("password, basic auth", func(t *testing.T) {
		r := h.postForm("/oauth/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password"}})
		body := r.json(t)
		if r.status != 200 || body["token_type"] != "Bearer" || body["expires_in"] != 60.0 || body["scope"] != allAliceScopes {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Error("token response may be cached")
		}
		var c tokenClaims
		if _, _, err := jwt.NewParser().ParseUnverified(body["access_token"].(string), &c); err != nil {
			t.Fatal(err)
		}
		if c.Subject != "alice" || c.ID == "" || c.Scope != allAliceScopes || c.ClientID != clientID || c.IssuedAt == nil || c.ExpiresAt == nil {
			t.Errorf("claims = %+v", c)
		}
	})
	t.Run("password, client_secret_post, scope narrowed to allowed", func(t *testing.T) {
		form := url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"bob-password"},
			"scope": {"items:read items:delete"}, "client_id": {clientID}, "client_secret": {secret}}
		r := h.do("POST", "/oauth/token", "", "application/x-www-form-urlencoded", form.Encode())
		if r.status != 200 || r.json(t)["scope"] != "items:read" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("client_credentials", func(t *testing.T) {
		r := h.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}})
		if r.status != 200 || r.json(t)["scope"] != "items:read reports:read" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})

	errs := []struct {
		name   string
		auth   string
		form   url.Values
		status int
		code   string
	}{
		{"no client auth", "", url.Values{"grant_type": {"client_credentials"}}, 401, "invalid_client"},
		{"wrong secret", "Basic " + basic(clientID, "nope"), url.Values{"grant_type": {"client_credentials"}}, 401, "invalid_client"},
		{"two auth methods", h.clientBasic(), url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}, 400, "invalid_request"},
		{"wrong password", h.clientBasic(), url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"bob-password"}}, 400, "invalid_grant"},
		{"unknown user", h.clientBasic(), url.Values{"grant_type": {"password"}, "username": {"eve"}, "password": {"x"}}, 400, "invalid_grant"},
		{"unsupported grant", h.clientBasic(), url.Values{"grant_type": {"authorization_code"}}, 400, "unsupported_grant_type"},
		{"no grant", h.clientBasic(), url.Values{}, 400, "invalid_request"},
		{"no allowed scope", h.clientBasic(), url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"bob-password"}, "scope": {"reports:read"}}, 400, "invalid_scope"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do("POST", "/oauth/token", tt.auth, "application/x-www-form-urlencoded", tt.form.Encode())
			if r.status != tt.status || r.json(t)["error"] != tt.code {
				t.Fatalf("%d %s; want %d %s", r.status, r.body, tt.status, tt.code)
			}
		})
	}
}

func basic(id, secret string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(id, secret)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

func TestIntrospectAndRevoke(t *testing.T) {
	for _, flavor := range []string{Vulnerable, Fixed} {
		t.Run(flavor, func(t *testing.T) {
			h := startLab(t, Options{Flavor: flavor})
			token := h.token("alice", "items:read reports:read")
			r := h.postForm("/oauth/introspect", url.Values{"token": {token}})
			in := r.json(t)
			if r.status != 200 || in["active"] != true || in["sub"] != "alice" || in["scope"] != "items:read reports:read" ||
				in["client_id"] != clientID || in["token_type"] != "Bearer" || in["jti"] == nil || in["exp"] == nil || in["iat"] == nil {
				t.Fatalf("introspect: %d %s", r.status, r.body)
			}
			for _, bad := range []string{"garbage", token[:len(token)-2] + "xx"} {
				if r := h.postForm("/oauth/introspect", url.Values{"token": {bad}}); r.status != 200 || string(r.body) != "{\"active\":false}\n" {
					t.Errorf("introspect bad token: %d %s", r.status, r.body)
				}
			}
			if r := h.do("POST", "/oauth/introspect", "", "application/x-www-form-urlencoded", "token="+token); r.status != 401 {
				t.Errorf("introspect without client auth: %d", r.status)
			}

			if r := h.do("POST", "/oauth/revoke", "", "application/x-www-form-urlencoded", "token="+token); r.status != 401 || r.json(t)["error"] != "invalid_client" {
				t.Errorf("revoke without client auth: %d %s", r.status, r.body)
			}
			if got := h.revoke("not-a-token"); got != 200 {
				t.Errorf("revoke unknown token: %d; want 200 (RFC 7009)", got)
			}
			if got := h.revoke(token); got != 200 {
				t.Fatalf("revoke: %d", got)
			}
			if r := h.postForm("/oauth/introspect", url.Values{"token": {token}}); r.json(t)["active"] != false {
				t.Errorf("revoked token introspects as %s", r.body)
			}
		})
	}
}

func TestExpiredTokenInactive(t *testing.T) {
	// JWT expiry has whole seconds, so a 2s lifetime leaves the token at least 1s to be used.
	h := startLab(t, Options{Flavor: Fixed, TokenLifetime: 2 * time.Second})
	token := h.token("alice", "items:read")
	item := h.createItemAs(t, "bob")
	if r := h.api("GET", "/items/"+item, token, ""); r.status != 200 {
		t.Fatalf("fresh token: %d", r.status)
	}
	eventually(t, 5*time.Second, 401, func() int { return h.api("GET", "/items/"+item, token, "").status })
	if r := h.postForm("/oauth/introspect", url.Values{"token": {token}}); r.json(t)["active"] != false {
		t.Errorf("expired token introspects as %s", r.body)
	}
}

func (h *harness) createItemAs(t *testing.T, user string) string {
	return h.createItem(h.token(user, "items:write"))
}

func TestAPI(t *testing.T) {
	for _, flavor := range []string{Vulnerable, Fixed} {
		t.Run(flavor, func(t *testing.T) {
			h := startLab(t, Options{Flavor: flavor, ActionGap: -1})
			alice := h.token("alice", "")
			bob := h.token("bob", "")

			id := h.createItem(alice)
			if r := h.api("GET", "/items/"+id, bob, ""); r.status != 200 || r.json(t)["owner"] != "alice" {
				t.Fatalf("get: %d %s", r.status, r.body)
			}
			if r := h.api("GET", "/reports/summary", alice, ""); r.status != 200 || r.json(t)["items"] != 1.0 {
				t.Fatalf("summary: %d %s", r.status, r.body)
			}
			if r := h.api("POST", "/items", alice, `{"name": ""}`); r.status != 400 {
				t.Errorf("empty name: %d", r.status)
			}

			r := h.do("GET", "/items/"+id, "", "", "")
			if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "Bearer") || r.json(t)["error"] != "invalid_token" {
				t.Errorf("no token: %d %q %s", r.status, r.header.Get("WWW-Authenticate"), r.body)
			}
			if r := h.api("GET", "/items/"+id, "forged.token.here", ""); r.status != 401 {
				t.Errorf("forged token: %d", r.status)
			}
			r = h.api("DELETE", "/items/"+id, bob, "")
			if r.status != 403 || !strings.Contains(r.header.Get("WWW-Authenticate"), "insufficient_scope") || r.json(t)["error"] != "insufficient_scope" {
				t.Errorf("bob deletes: %d %q %s", r.status, r.header.Get("WWW-Authenticate"), r.body)
			}
			if r := h.api("GET", "/reports/summary", bob, ""); r.status != 403 {
				t.Errorf("bob reads report: %d", r.status)
			}

			if r := h.api("DELETE", "/items/"+id, alice, ""); r.status != 204 {
				t.Fatalf("delete: %d %s", r.status, r.body)
			}
			if r := h.api("GET", "/items/"+id, bob, ""); r.status != 404 {
				t.Errorf("get deleted: %d", r.status)
			}
			if r := h.api("DELETE", "/items/"+id, alice, ""); r.status != 404 {
				t.Errorf("delete deleted: %d", r.status)
			}
		})
	}
}

func TestAdminEndpoint(t *testing.T) {
	h := startLab(t, Options{Flavor: Vulnerable})
	key := h.lab.Env()["TOCSIN_LAB_ADMIN_KEY"]
	body := `{"scopes": ["items:read"]}`
	for _, auth := range []string{"", "Bearer wrong", "Basic " + basic("admin", key), "Bearer " + h.lab.Env()["TOCSIN_LAB_CLIENT_SECRET"]} {
		if r := h.do("PUT", "/idp/subjects/alice/scopes", auth, "application/json", body); r.status != 401 {
			t.Errorf("PUT with %q: %d; want 401", auth, r.status)
		}
		if r := h.do("GET", "/idp/subjects/alice/scopes", auth, "", ""); r.status != 401 {
			t.Errorf("GET with %q: %d; want 401", auth, r.status)
		}
	}
	admin := "Bearer " + key
	if r := h.do("GET", "/idp/subjects/alice/scopes", admin, "", ""); r.status != 200 || !strings.Contains(string(r.body), `"reports:read"`) {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
	if r := h.do("PUT", "/idp/subjects/mallory/scopes", admin, "application/json", body); r.status != 404 {
		t.Errorf("unknown subject: %d", r.status)
	}
	if r := h.do("PUT", "/idp/subjects/alice/scopes", admin, "application/json", `{"scopes": ["root"]}`); r.status != 400 {
		t.Errorf("unknown scope: %d", r.status)
	}
	if got := h.setScopes("alice", "items:read"); got != 204 {
		t.Fatalf("PUT: %d", got)
	}
	if r := h.do("GET", "/idp/subjects/alice/scopes", admin, "", ""); string(r.body) != `{"subject":"alice","scopes":["items:read"]}`+"\n" {
		t.Errorf("after PUT: %s", r.body)
	}
	// New tokens carry only what the subject may use now.
	r := h.postForm("/oauth/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password"}})
	if r.json(t)["scope"] != "items:read" {
		t.Errorf("token after downgrade: %s", r.body)
	}
}

func TestVulnerableAcceptsRevokedTokenUntilTTL(t *testing.T) {
	const ttl = time.Second
	h := startLab(t, Options{Flavor: Vulnerable, IntrospectionTTL: ttl, PermissionTTL: -1})
	token := h.token("alice", "")
	filled := time.Now() // the first request below fills the cache no earlier than this
	id := h.createItem(token)
	if got := h.revoke(token); got != 200 {
		t.Fatalf("revoke: %d", got)
	}
	if r := h.api("GET", "/items/"+id, token, ""); r.status != 200 {
		t.Fatalf("revoked token inside the TTL: %d; want 200 (the cached introspection)", r.status)
	}
	rejected := eventually(t, ttl+5*time.Second, 401, func() int { return h.api("GET", "/items/"+id, token, "").status })
	if rejected.Before(filled.Add(ttl)) {
		t.Errorf("rejected %v after the fill; the TTL is %v", rejected.Sub(filled), ttl)
	}
}

func TestVulnerableHonoursDowngradeLate(t *testing.T) {
	const ttl = time.Second
	h := startLab(t, Options{Flavor: Vulnerable, IntrospectionTTL: -1, PermissionTTL: ttl})
	token := h.token("alice", "")
	filled := time.Now()
	if r := h.api("GET", "/reports/summary", token, ""); r.status != 200 {
		t.Fatalf("report: %d", r.status)
	}
	if got := h.setScopes("alice", "items:read items:write items:delete"); got != 204 {
		t.Fatalf("downgrade: %d", got)
	}
	if r := h.api("GET", "/reports/summary", token, ""); r.status != 200 {
		t.Fatalf("report right after the downgrade: %d; want 200 (the cached permissions)", r.status)
	}
	rejected := eventually(t, ttl+5*time.Second, 403, func() int { return h.api("GET", "/reports/summary", token, "").status })
	if rejected.Before(filled.Add(ttl)) {
		t.Errorf("enforced %v after the fill; the TTL is %v", rejected.Sub(filled), ttl)
	}
	if got := h.setScopes("alice", allAliceScopes); got != 204 {
		t.Fatalf("restore: %d", got)
	}
	eventually(t, ttl+5*time.Second, 200, func() int { return h.api("GET", "/reports/summary", token, "").status })
}

func TestFixedRefusesRevokedTokenAtOnce(t *testing.T) {
	h := startLab(t, Options{Flavor: Fixed})
	token := h.token("alice", "")
	id := h.createItem(token)
	if r := h.api("GET", "/items/"+id, token, ""); r.status != 200 {
		t.Fatalf("before revoke: %d", r.status)
	}
	if got := h.revoke(token); got != 200 {
		t.Fatalf("revoke: %d", got)
	}
	if r := h.api("GET", "/items/"+id, token, ""); r.status != 401 || r.json(t)["error_description"] != "guard: grant revoked" {
		t.Fatalf("right after revoke: %d %s; want 401", r.status, r.body)
	}
}

func TestFixedEnforcesDowngradeAtOnce(t *testing.T) {
	h := startLab(t, Options{Flavor: Fixed})
	token := h.token("alice", "")
	id := h.createItem(token)
	if r := h.api("GET", "/reports/summary", token, ""); r.status != 200 {
		t.Fatalf("before downgrade: %d", r.status)
	}
	if got := h.setScopes("alice", "items:read items:write items:delete"); got != 204 {
		t.Fatalf("downgrade: %d", got)
	}
	if r := h.api("GET", "/reports/summary", token, ""); r.status != 403 {
		t.Fatalf("right after downgrade: %d; want 403", r.status)
	}
	if r := h.api("GET", "/items/"+id, token, ""); r.status != 200 {
		t.Errorf("downgrade removed more than reports:read: GET item %d", r.status)
	}
	if got := h.setScopes("alice", allAliceScopes); got != 204 {
		t.Fatalf("restore: %d", got)
	}
	if r := h.api("GET", "/reports/summary", token, ""); r.status != 200 {
		t.Fatalf("right after restore: %d; want 200", r.status)
	}
}

// gapGate lets a test hold a DELETE inside its check-to-use gap.
type gapGate struct {
	entered chan struct{} // a DELETE is in the gap
	proceed chan struct{} // close to let it go on
}

func newGapGate() *gapGate {
	return &gapGate{entered: make(chan struct{}, 1), proceed: make(chan struct{})}
}

func (g *gapGate) hook(ctx context.Context) {
	select {
	case g.entered <- struct{}{}:
	case <-ctx.Done():
		return
	}
	select {
	case <-g.proceed:
	case <-ctx.Done():
	}
}

func (g *gapGate) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("DELETE never reached its gap")
	}
}

// The seed's flaw, with no cache at all: a DELETE authorized before the revocation commits after
// the revocation was acknowledged.
func TestVulnerableDeleteCommitsAfterRevocation(t *testing.T) {
	gate := newGapGate()
	h := startLab(t, Options{Flavor: Vulnerable, IntrospectionTTL: -1, PermissionTTL: -1, ActionGap: time.Millisecond, onGap: gate.hook})
	token := h.token("alice", "")
	id := h.createItem(token)

	deleted := make(chan int, 1)
	go func() { deleted <- h.api("DELETE", "/items/"+id, token, "").status }()
	gate.waitEntered(t)
	if got := h.revoke(token); got != 200 {
		t.Fatalf("revoke: %d", got)
	}
	if _, ok := h.lab.api.load(id); !ok {
		t.Fatal("item gone before the revocation was acknowledged; the test proves nothing")
	}
	close(gate.proceed)
	if got := <-deleted; got != 204 {
		t.Fatalf("DELETE: %d; want 204 (the flaw)", got)
	}
	if _, ok := h.lab.api.load(id); ok {
		t.Fatal("item still there")
	}
}

// The fix: a revocation that arrives during the gap is acknowledged only after the DELETE finished,
// and a DELETE that starts after it is refused.
func TestFixedRevocationWaitsForDelete(t *testing.T) {
	gate := newGapGate()
	h := startLab(t, Options{Flavor: Fixed, ActionGap: 50 * time.Millisecond, onGap: gate.hook})
	token := h.token("alice", "")
	var c tokenClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil {
		t.Fatal(err)
	}
	id := h.createItem(token)
	other := h.createItem(token)

	deleted := make(chan int, 1)
	go func() { deleted <- h.api("DELETE", "/items/"+id, token, "").status }()
	gate.waitEntered(t)

	revoked := make(chan int, 1)
	go func() { revoked <- h.revoke(token) }()
	// Wait until the revocation reached the guard (new actions refused), still inside the gap.
	deadline := time.Now().Add(10 * time.Second)
	for h.lab.guard.Do(context.Background(), c.ID, "", func(context.Context) error { return nil }) == nil {
		if time.Now().After(deadline) {
			t.Fatal("revocation never reached the guard")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case got := <-revoked:
		t.Fatalf("revocation acknowledged (%d) while the DELETE it should wait for was in its gap", got)
	default:
	}
	close(gate.proceed)

	if got := <-revoked; got != 200 {
		t.Fatalf("revoke: %d", got)
	}
	if _, ok := h.lab.api.load(id); ok {
		t.Fatal("revocation acknowledged before the in-flight DELETE committed")
	}
	if got := <-deleted; got != 204 {
		t.Fatalf("in-flight DELETE: %d; want 204 (authorized before the revocation)", got)
	}
	if r := h.api("DELETE", "/items/"+other, token, ""); r.status != 401 {
		t.Fatalf("DELETE after the revocation: %d; want 401", r.status)
	}
	if _, ok := h.lab.api.load(other); !ok {
		t.Fatal("DELETE after the revocation deleted the item")
	}
}

func TestEnvAndUsage(t *testing.T) {
	h := startLab(t, Options{Flavor: Vulnerable})
	env := h.lab.Env()
	secret, key := env["TOCSIN_LAB_CLIENT_SECRET"], env["TOCSIN_LAB_ADMIN_KEY"]
	if len(secret) < 20 || len(key) < 20 || secret == key {
		t.Fatalf("weak or shared secrets: %q %q", secret, key)
	}
	other := startLab(t, Options{Flavor: Vulnerable})
	if other.lab.Env()["TOCSIN_LAB_CLIENT_SECRET"] == secret {
		t.Error("two labs share a client secret")
	}
	usage := h.lab.Usage()
	for _, want := range []string{h.lab.URL() + "/oauth/token", h.lab.URL() + "/oauth/revoke", h.lab.URL() + "/idp/subjects/alice/scopes", secret, key, "grant_type=password"} {
		if !strings.Contains(usage, want) {
			t.Errorf("Usage lacks %q:\n%s", want, usage)
		}
	}
}
