package identity

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/hostile"
	"github.com/tocsin/tocsin/internal/redact"
)

const revokedToken = "access-token-to-revoke"

func TestRFC7009(t *testing.T) {
	for _, style := range []string{"", "basic", "post"} {
		t.Run(style, func(t *testing.T) {
			idp := newFakeIdP(t)
			c := newClientFor(t, idp.srv.URL)
			hook := NewRFC7009(RFC7009{URL: idp.srv.URL + "/revoke", ClientID: clientID, ClientSecret: clientSecret,
				AuthStyle: style, TokenTypeHint: "access_token"}, c, nil)
			if hook.Kind() != "rfc7009" {
				t.Errorf("Kind %q", hook.Kind())
			}
			if err := hook.Run(context.Background(), Token{Value: revokedToken}); err != nil {
				t.Fatal(err)
			}
			want := style
			if want == "" {
				want = "basic"
			}
			idp.mu.Lock()
			revoked, hints := idp.revoked, idp.hints
			idp.mu.Unlock()
			if !slices.Equal(revoked, []string{revokedToken}) || !slices.Equal(hints, []string{"access_token"}) || idp.lastStyle() != want {
				t.Errorf("IdP revoked %q with hints %q via %q, want the token, access_token, %q", revoked, hints, idp.lastStyle(), want)
			}
		})
	}
}

func TestRFC7009Errors(t *testing.T) {
	idp := newFakeIdP(t)
	c := newClientFor(t, idp.srv.URL)
	r := secretsRegistered()

	err := NewRFC7009(RFC7009{URL: idp.srv.URL + "/revoke", ClientID: clientID, ClientSecret: "wrong-secret-xyz"}, c, r).Run(context.Background(), Token{Value: revokedToken})
	if err == nil || !strings.Contains(err.Error(), "status 401") || !strings.Contains(err.Error(), "check client_id, client_secret and auth_style") {
		t.Errorf("err = %v, want status 401 with a hint", err)
	}

	idp.mu.Lock()
	idp.revokeErr = http.StatusInternalServerError // the IdP echoes the token back
	idp.mu.Unlock()
	err = NewRFC7009(RFC7009{URL: idp.srv.URL + "/revoke", ClientID: clientID, ClientSecret: clientSecret}, c, r).Run(context.Background(), Token{Value: revokedToken})
	if err == nil || !strings.Contains(err.Error(), "status 500") || !strings.Contains(err.Error(), "could not revoke [token:") {
		t.Errorf("err = %v, want status 500 and a redacted excerpt", err)
	}
	for _, secret := range []string{revokedToken, clientSecret, "wrong-secret-xyz"} {
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error %q leaks %q", err, secret)
		}
	}

	// RFC 7009 acknowledges with 200 only; a 204 is reported, not taken on trust.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	err = NewRFC7009(RFC7009{URL: srv.URL}, newClientFor(t, srv.URL), nil).Run(context.Background(), Token{Value: revokedToken})
	if err == nil || !strings.Contains(err.Error(), "status 204") {
		t.Errorf("err = %v, want status 204 refused", err)
	}
	err = NewRFC7009(RFC7009{URL: idp.srv.URL + "/revoke"}, newClientFor(t, srv.URL), nil).Run(context.Background(), Token{Value: revokedToken})
	if !errors.Is(err, client.ErrOrigin) {
		t.Errorf("err = %v, want ErrOrigin", err)
	}
}

// seenRequest is what the fake hook endpoint received.
type seenRequest struct{ method, path, query, auth, body string }

func hookServer(t *testing.T, status int, reply string) (*httptest.Server, *client.Client, func() seenRequest) {
	t.Helper()
	var mu sync.Mutex
	var seen seenRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = seenRequest{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), string(b)}
		mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	return srv, newClientFor(t, srv.URL), func() seenRequest { mu.Lock(); defer mu.Unlock(); return seen }
}

func TestHTTPHook(t *testing.T) {
	const token = "tok+/=value"
	srv, c, seen := hookServer(t, 204, "")
	hook := NewHTTPHook(HTTPHook{
		URL:     srv.URL + "/sessions/{{token}}?t={{ token }}",
		Headers: map[string]string{"Authorization": "Bearer {{token}}"},
		Body:    `{"token": "{{token}}"}`,
	}, c, nil)
	if hook.Kind() != "http" {
		t.Errorf("Kind %q", hook.Kind())
	}
	if err := hook.Run(context.Background(), Token{Value: token}); err != nil {
		t.Fatal(err)
	}
	want := seenRequest{"POST", "/sessions/tok+%2F=value", "t=tok%2B%2F%3Dvalue", "Bearer " + token, `{"token": "` + token + `"}`}
	if got := seen(); got != want {
		t.Errorf("server saw %+v\nwant %+v", got, want)
	}
}

// The manual for a hook that failed (a restore to run by hand) fills in the vars, which a person
// cannot look up in the report, and leaves {{token}} as the placeholder it is.
func TestHTTPHookManualFillsVars(t *testing.T) {
	hook := NewHTTPHook(HTTPHook{
		Method: "PUT",
		URL:    "https://idp.example/subjects/{{ subject }}/scopes",
		Body:   `{"subject": "{{subject}}", "token": "{{token}}", "id": "{{token.id}}"}`,
		Vars:   map[string]string{"subject": "alice-42"},
	}, nil, nil)
	want := `curl -sS -X PUT https://idp.example/subjects/alice-42/scopes --data-raw '{"subject": "alice-42", "token": "{{token}}", "id": "{{token.id}}"}'`
	if got := hook.Manual(); got != want {
		t.Errorf("Manual:\n%s\nwant\n%s", got, want)
	}
}

// A URL template in a message shows its {{variables}} as written, and no literal query value, user
// info or registered secret.
func TestTemplateURL(t *testing.T) {
	r := &redact.Redactor{}
	r.Add("token", "s3cr3t-value")
	for raw, want := range map[string]string{
		"https://idp.example/tokens/{{token.id}}":                 "https://idp.example/tokens/{{token.id}}",
		"https://u:pw@idp.example/x?key=literal&t={{token}}#frag": "https://idp.example/x?key=...&t={{token}}",
		"https://idp.example/s3cr3t-value/revoke":                 "https://idp.example/[token:" + redact.Fingerprint("s3cr3t-value") + "]/revoke",
		"https://idp.example/x?a={{b}}{{c}}":                      "https://idp.example/x?a=...",
	} {
		if got := templateURL(raw, r); got != want {
			t.Errorf("templateURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestHTTPHookExpect(t *testing.T) {
	r := secretsRegistered()
	srv, c, _ := hookServer(t, 202, "still active: "+revokedToken)
	if err := NewHTTPHook(HTTPHook{Method: "DELETE", URL: srv.URL + "/x"}, c, r).Run(context.Background(), Token{Value: revokedToken}); err != nil {
		t.Errorf("202 with no expect: %v, want acknowledged", err)
	}
	err := NewHTTPHook(HTTPHook{Method: "DELETE", URL: srv.URL + "/x?token={{token}}", Expect: []int{200, 204}}, c, r).Run(context.Background(), Token{Value: revokedToken})
	if err == nil {
		t.Fatal("202 with expect [200 204]: want an error")
	}
	msg := err.Error()
	// The URL is shown as the template it was written as, not percent-encoded.
	for _, w := range []string{"http hook DELETE " + srv.URL + "/x?token={{token}}:", "status 202; want one of [200 204]", "still active: [token:"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
	if strings.Contains(msg, revokedToken) {
		t.Errorf("error %q leaks the token", msg)
	}
	if err := NewHTTPHook(HTTPHook{URL: srv.URL + "/{{nope}}"}, c, r).Run(context.Background(), Token{Value: revokedToken}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("err = %v, want the unknown variable named", err)
	}
}

func TestCommandHook(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	// The hook gets the token both as a rendered argument and in TOCSIN_TOKEN.
	argv := script(t, `[ "$1" = "$TOCSIN_TOKEN" ] || exit 9; printf '%s' "$1" > "$2"`, "{{token}}", out)
	hook := NewCommandHook(argv, nil)
	if hook.Kind() != "command" {
		t.Errorf("Kind %q", hook.Kind())
	}
	if err := hook.Run(context.Background(), Token{Value: revokedToken}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != revokedToken {
		t.Errorf("the command saw %q, want %q", b, revokedToken)
	}

	r := &redact.Redactor{}
	err := NewCommandHook(script(t, `echo "cannot revoke $TOCSIN_TOKEN" >&2; exit 2`), r).Run(context.Background(), Token{Value: revokedToken})
	if err == nil || !strings.Contains(err.Error(), "exit status 2") || !strings.Contains(err.Error(), "cannot revoke [token:") {
		t.Errorf("err = %v, want exit status 2 and a redacted stderr excerpt", err)
	}
	if err != nil && strings.Contains(err.Error(), revokedToken) {
		t.Errorf("error %q leaks the token", err)
	}
}

// A hook or token endpoint that redirects off the allowed origins is not followed, and the error says
// where it pointed, without the query.
func TestRedirectOffOriginNamed(t *testing.T) {
	h := hostile.Start(t, hostile.Options{Default: hostile.RedirectOffOrigin})
	c := newClientFor(t, h.URL())
	want := "status 302, a redirect to " + h.DecoyURL() + "/logout, not followed"
	for name, run := range map[string]func() error{
		"http": func() error {
			return NewHTTPHook(HTTPHook{URL: h.URL() + "/logout"}, c, nil).Run(context.Background(), Token{Value: revokedToken})
		},
		"rfc7009": func() error {
			return NewRFC7009(RFC7009{URL: h.URL() + "/logout", ClientID: "c"}, c, nil).Run(context.Background(), Token{Value: revokedToken})
		},
		"oauth2": func() error {
			_, err := NewOAuth2(OAuth2{Grant: "client_credentials", TokenURL: h.URL() + "/logout", ClientID: "c", ClientSecret: "s"}, c.HTTPClient(), nil).Token(context.Background())
			return err
		},
	} {
		err := run()
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), hostile.DecoyQuery) {
			t.Errorf("%s: err = %v, want %q without the query", name, err, want)
		}
	}
	if h.DecoyConnections() != 0 {
		t.Errorf("the decoy got %d connections", h.DecoyConnections())
	}
}
