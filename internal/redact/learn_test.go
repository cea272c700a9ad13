package redact

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestCredentialName(t *testing.T) {
	for _, name := range []string{"token", "access_token", "refreshToken", "api_key", "apiKey", "apikey", "X-Admin-Key",
		"client_secret", "password", "passwd", "PWD", "Authorization", "X-Auth-Token", "auth", "session_id", "Cookie",
		"credentials", "X-Signature", "private_key"} {
		if !CredentialName(name) {
			t.Errorf("%q is not taken for a credential", name)
		}
	}
	for _, name := range []string{"id", "username", "token_type", "tokenType", "token_type_hint", "expires_in", "token_url",
		"Access-Control-Allow-Credentials", "author", "Content-Type", "scope", "email", "name", "Keep-Alive", "keys", "public_key", "publicKey", "jwks"} {
		if CredentialName(name) {
			t.Errorf("%q is taken for a credential", name)
		}
	}
}

func TestLearnRequest(t *testing.T) {
	var r Redactor
	u, _ := url.Parse("http://api.test/reports?api_key=pk-QUERY&page=2&sig=a%2Bb")
	h := http.Header{
		"Authorization": {"Bearer tok-abc"},
		"X-Admin-Key":   {"ak1"},
		"Cookie":        {"session=s3ss; theme=dark"},
		"Content-Type":  {"application/json"},
		"Accept":        {"application/json"},
	}
	r.LearnRequest(u, h, []byte(`{"username":"bob","password":"pw1","admin":{"key":"k"},"n":7,"ok":true}`))
	want := []string{"ak1", "dark", "k", "pk-QUERY", "pw1", "s3ss", "tok-abc"} // every cookie may be a session
	if got := r.Secrets(); !slices.Equal(got, want) {
		t.Errorf("learned %q, want %q", got, want)
	}
	// A credential in a header is labelled as one; a token source says when it is a token.
	if r.Label("pw1") != "[password:"+Fingerprint("pw1")+"]" || r.Label("tok-abc") != "[credential:"+Fingerprint("tok-abc")+"]" {
		t.Errorf("labels: %s %s", r.Label("pw1"), r.Label("tok-abc"))
	}
	var form Redactor
	form.LearnRequest(nil, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, []byte("grant_type=password&username=bob&password=p%40ss&client_secret=cs"))
	if got, want := form.Secrets(), []string{"cs", "p%40ss", "p@ss"}; !slices.Equal(got, want) {
		t.Errorf("form: learned %q, want %q", got, want)
	}
}

func TestLearnResponse(t *testing.T) {
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	h := http.Header{
		"Set-Cookie":   {"session=abc123; Path=/; HttpOnly", "csrf=x9; Path=/"},
		"Content-Type": {"application/json"},
		"X-Auth-Token": {"hdr-tok"},
	}
	for name, body := range map[string]string{
		"json":            `{"id":"r1","receipt":"` + jwt + `","token_type":"Bearer","access_token":"at-1","nested":{"client_secret":"cs-2"}}`,
		"cut":             `{"id":"r1","receipt":"` + jwt + `","token_type":"Bearer","access_token":"at-1","nested":{"client_secret":"cs-2"},"more":"`,
		"after text":      `xxxx ` + jwt + ` {"token_type":"Bearer","access_token":"at-1","nested":{"client_secret":"cs-2"}}`,
		"json in a field": `{"body":"{\"access_token\":\"at-1\",\"client_secret\":\"cs-2\"}","note":"` + jwt + `"}`,
	} {
		var r Redactor
		r.LearnResponse(h, []byte(body))
		want := []string{"abc123", "at-1", "cs-2", jwt, "hdr-tok", "x9"}
		if got := r.Secrets(); !slices.Equal(got, want) {
			t.Errorf("%s: learned %q, want %q", name, got, want)
		}
	}
}

// Bodies come from the server under test: any input must be learned from without a panic, and
// whatever is learned must then be redacted from the body itself.
func FuzzLearnBody(f *testing.F) {
	for _, seed := range []string{
		`{"access_token":"at","nested":{"password":["a","b"]},"n":1}`,
		`[{"key":"v"},{"token":{"a":{"b":"c"}}}]`,
		`{"body":"{\"password\":\"pw1\"}"}`,
		`xx {"token":"t"`,
		`password=pw1&user=bob`,
		`eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.`,
		`{"a":` + strings.Repeat("[", 200),
		`{"token":"\ud800"}`,
		"",
	} {
		f.Add("application/json", seed)
		f.Add("", seed)
	}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		var r Redactor
		r.LearnBody(contentType, []byte(body))
		r.LearnResponse(http.Header{"Set-Cookie": {body}, "X-Token": {body}}, nil)
		out := r.String(body)
		for _, s := range r.Secrets() {
			if len(s) >= anywhereLen && strings.Contains(out, s) {
				t.Fatalf("learned %q but it is still in %q", s, out)
			}
		}
	})
}

// A template of the config is learned before anything is sent, its {{variables}} left for later.
func TestLearnTemplate(t *testing.T) {
	var r Redactor
	r.LearnTemplate("/reports?api_key=pk-lit&token={{token}}#x", map[string]string{"X-Admin-Key": "ak1", "Authorization": "Bearer {{token}}"},
		`{"admin_key":"adm-lit","token":"{{token}}","user":"bob"}`)
	if got, want := r.Secrets(), []string{"adm-lit", "ak1", "pk-lit"}; !slices.Equal(got, want) {
		t.Errorf("learned %q, want %q", got, want)
	}
}
