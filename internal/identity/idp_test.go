package identity

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/redact"
)

const (
	clientID     = "tocsin-scanner"
	clientSecret = "client-s3cret-value"
	username     = "alice"
	password     = "alice-pa55word"
)

// fakeIdP is an OAuth 2.0 token endpoint and RFC 7009 revocation endpoint on 127.0.0.1. It records how
// clients authenticated, so tests can tell basic from post, and echoes secrets into its error messages
// the way careless servers do, so tests can check redaction.
type fakeIdP struct {
	srv *httptest.Server

	mu        sync.Mutex
	issued    int
	styles    []string // "basic" or "post", per request
	revoked   []string
	hints     []string
	revokeErr int // when non-zero, /revoke answers this status with the token echoed
}

func newFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	idp := &fakeIdP{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", idp.token)
	mux.HandleFunc("POST /revoke", idp.revoke)
	idp.srv = httptest.NewServer(mux)
	t.Cleanup(idp.srv.Close)
	return idp
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// clientAuth returns the client credentials and how they were sent.
func (idp *fakeIdP) clientAuth(r *http.Request) (id, secret, style string) {
	if u, p, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
		style = "basic"
	} else {
		id, secret, style = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), "post"
	}
	idp.mu.Lock()
	idp.styles = append(idp.styles, style)
	idp.mu.Unlock()
	return id, secret, style
}

func (idp *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, _ := idp.clientAuth(r)
	if id != clientID || secret != clientSecret {
		writeJSON(w, 401, map[string]string{"error": "invalid_client", "error_description": "unknown client secret " + secret})
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "password":
		if r.PostForm.Get("username") != username || r.PostForm.Get("password") != password {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "wrong password " + r.PostForm.Get("password")})
			return
		}
	case "client_credentials":
	default:
		writeJSON(w, 400, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	if r.PostForm.Get("scope") != "items:read items:write" {
		writeJSON(w, 400, map[string]string{"error": "invalid_scope"})
		return
	}
	idp.mu.Lock()
	idp.issued++
	tok := fmt.Sprintf("access-token-%03d", idp.issued)
	idp.mu.Unlock()
	writeJSON(w, 200, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 300})
}

func (idp *fakeIdP) revoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, _ := idp.clientAuth(r)
	if id != clientID || secret != clientSecret {
		writeJSON(w, 401, map[string]string{"error": "invalid_client"})
		return
	}
	idp.mu.Lock()
	defer idp.mu.Unlock()
	if idp.revokeErr != 0 {
		writeJSON(w, idp.revokeErr, map[string]string{"error": "server_error", "error_description": "could not revoke " + r.PostForm.Get("token")})
		return
	}
	idp.revoked = append(idp.revoked, r.PostForm.Get("token"))
	idp.hints = append(idp.hints, r.PostForm.Get("token_type_hint"))
	w.WriteHeader(200)
}

func (idp *fakeIdP) lastStyle() string {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	if len(idp.styles) == 0 {
		return ""
	}
	return idp.styles[len(idp.styles)-1]
}

func newClientFor(t *testing.T, origins ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Origins: origins})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// secretsRegistered returns a redactor that knows the config's secrets, as target.Build leaves it.
func secretsRegistered() *redact.Redactor {
	r := &redact.Redactor{}
	r.Add("client-secret", clientSecret)
	r.Add("password", password)
	return r
}
