package redact

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Learning: the HTTP client and the race engine hand the redactor every request they send and every
// response they read, before anyone else sees it, and it registers the secrets they carry: values of
// credential-named query parameters, headers and body fields (JSON or form), cookies, and anything
// shaped like a JWT. A token a setup's response returns, an admin key in a hook's body, a password
// of three characters: all are secrets from the moment they cross the wire.

// credentialStems are what a word of a name contains when the name's value is a credential:
// api_key, X-Admin-Key, client_secret, accessToken, passwd, session_id, X-Signature.
var credentialStems = []string{"token", "secret", "passw", "pwd", "key", "credential", "cookie", "session", "signature"}

// CredentialName reports whether a query parameter, header or field with this name holds a
// credential. Its words (split at punctuation and camelCase, lower-cased) are checked: one contains
// token, secret, passw(ord), pwd, key, credential, cookie, session or signature, or starts with auth
// (not author, authority); and none says the value only describes one or is public: type
// (token_type: "Bearer"), hint, url, uri, expir(es), public (public_key), the access-control-
// headers, or a JSON Web Key Set's "keys".
func CredentialName(name string) bool {
	words := nameWords(name)
	if len(words) == 1 && (words[0] == "keys" || words[0] == "jwks") {
		return false // a JSON Web Key Set ({"keys": [...]}) publishes public keys
	}
	credential := false
	for i, w := range words {
		switch {
		case w == "type" || w == "hint" || w == "url" || w == "uri" || w == "public" || strings.HasPrefix(w, "expir"),
			i == 0 && w == "access" && len(words) > 1 && words[1] == "control":
			return false
		case strings.HasPrefix(w, "auth") && w != "author" && w != "authors" && w != "authority":
			credential = true
		default:
			for _, stem := range credentialStems {
				if strings.Contains(w, stem) {
					credential = true
				}
			}
		}
	}
	return credential
}

// Descriptive reports whether a name says its value only describes a credential (expires_in,
// token_type, scope_hint, jwks_url): such a value, extracted or learned, is not a secret of the run.
func Descriptive(name string) bool {
	for _, w := range nameWords(name) {
		if w == "type" || w == "hint" || w == "url" || w == "uri" || strings.HasPrefix(w, "expir") {
			return true
		}
	}
	return false
}

// nameWords splits a name into lower-case words at anything but letters and digits, and where a
// lower-case letter or digit is followed by an upper-case one (accessToken: access, token).
func nameWords(name string) []string {
	var words []string
	var w strings.Builder
	flush := func() {
		if w.Len() > 0 {
			words = append(words, strings.ToLower(w.String()))
			w.Reset()
		}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		upper := c >= 'A' && c <= 'Z'
		alnum := upper || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum {
			flush()
			continue
		}
		if upper && i > 0 && (name[i-1] >= 'a' && name[i-1] <= 'z' || name[i-1] >= '0' && name[i-1] <= '9') {
			flush()
		}
		w.WriteByte(c)
	}
	flush()
	return words
}

// kindOf is the label kind of a value named name: [password:...] for a password field.
func kindOf(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.Contains(n, "passw"), strings.Contains(n, "pwd"):
		return "password"
	case strings.Contains(n, "secret"):
		return "secret"
	case strings.Contains(n, "cookie"), strings.Contains(n, "session"):
		return "cookie"
	case strings.Contains(n, "token"):
		return KindToken
	case strings.Contains(n, "key"):
		return "key"
	}
	return "credential"
}

// maxLearnBytes bounds what of a body is searched for secrets; bodies are capped before this anyway
// (limits.max_response_bytes), and the requests tocsin writes are small.
const maxLearnBytes = 4 << 20

// maxLearnDepth bounds how deep a JSON body is walked, and how many times a JSON document held in a
// string of another is opened.
const (
	maxLearnDepth  = 64
	maxNestedJSON  = 2
	maxJWTsPerBody = 1000
)

// learner registers what it finds through add: Redactor.Add, or a filter in front of it.
type learner struct{ add func(kind, value string) }

// LearnRequest registers the secrets of a request tocsin sends: credential-named query parameters,
// the credentials of the Authorization and Cookie headers, credential-named headers, and
// credential-named fields of its body.
func (r *Redactor) LearnRequest(u *url.URL, h http.Header, body []byte) {
	if r == nil {
		return
	}
	learner{r.Add}.request(u, h, body)
}

// LearnTemplate registers the secrets written in a request template of the config (a probe, a hook,
// a login step), as LearnRequest does for a request, before anything is sent: a credential-named
// query parameter of its path, header or body field. A value holding a {{variable}} is left out;
// the variable's value is registered when it is learned.
func (r *Redactor) LearnTemplate(path string, headers map[string]string, body string) {
	if r == nil {
		return
	}
	l := learner{func(kind, v string) {
		if !strings.Contains(v, "{{") {
			r.Add(kind, v)
		}
	}}
	h := http.Header{}
	for k, v := range headers {
		h.Add(k, v)
	}
	var u *url.URL
	if _, query, ok := strings.Cut(path, "?"); ok {
		query, _, _ = strings.Cut(query, "#")
		u = &url.URL{RawQuery: query}
	}
	l.request(u, h, []byte(body))
}

func (l learner) request(u *url.URL, h http.Header, body []byte) {
	if u != nil {
		l.query(u.RawQuery)
	}
	l.headers(h, "Cookie")
	l.body(h.Get("Content-Type"), body)
}

// headers registers every cookie of cookieHeader ("Cookie" in a request, "Set-Cookie" in a
// response) and the values of the credential-named headers of h.
func (l learner) headers(h http.Header, cookieHeader string) {
	for name, values := range h {
		if http.CanonicalHeaderKey(name) != cookieHeader {
			if CredentialName(name) {
				for _, v := range values {
					l.credential(kindOf(name), v)
				}
			}
			continue
		}
		only := http.Header{cookieHeader: values}
		cookies := (&http.Request{Header: only}).Cookies()
		if cookieHeader == "Set-Cookie" {
			cookies = (&http.Response{Header: only}).Cookies()
		}
		for _, c := range cookies {
			l.add("cookie", c.Value)
		}
	}
}

// LearnResponse registers the secrets of a response tocsin reads: Set-Cookie values,
// credential-named headers, credential-named fields of its body and JWTs anywhere in it. body may
// have been cut at its size limit: what parses of it is learned.
func (r *Redactor) LearnResponse(h http.Header, body []byte) {
	if r == nil {
		return
	}
	l := learner{r.Add}
	l.headers(h, "Set-Cookie")
	l.body(h.Get("Content-Type"), body)
}

// LearnJWTs registers every JWT in body, and nothing else of it.
func (r *Redactor) LearnJWTs(body []byte) {
	if r != nil && len(body) > 0 {
		learner{r.Add}.jwts(body[:min(len(body), maxLearnBytes)])
	}
}

// LearnBody registers the credential-named fields of a JSON or form body, and every JWT in it. A
// form body is one whose content type says so, or that does not look like JSON.
func (r *Redactor) LearnBody(contentType string, body []byte) {
	if r != nil {
		learner{r.Add}.body(contentType, body)
	}
}

// credential registers a credential's value; of "Scheme credential" with a known authentication
// scheme (Bearer, Basic, Token, ...) the credential alone, so that a header reads "Bearer
// [token:1a2b3c4d]" wherever it is echoed, labelled as the token it carries.
func (l learner) credential(kind, v string) {
	v = strings.TrimSpace(v)
	if scheme, cred, ok := strings.Cut(v, " "); ok && slices.Contains(authSchemes, strings.ToLower(scheme)) && strings.TrimSpace(cred) != "" {
		v = strings.TrimSpace(cred)
	}
	l.add(kind, v)
}

// authSchemes are the HTTP authentication schemes whose name a credential starts with, lower-case.
var authSchemes = []string{"bearer", "basic", "token", "digest", "dpop", "negotiate", "ntlm", "jwt", "apikey", "key"}

// query registers the values of credential-named parameters of a query or form body. A query that
// does not parse is learned as far as it does.
func (l learner) query(rawQuery string) {
	if rawQuery == "" {
		return
	}
	for _, pair := range strings.Split(rawQuery, "&") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if !CredentialName(name) {
			continue
		}
		l.add(kindOf(name), v) // as written, in case it does not unescape
		if value, err := url.QueryUnescape(v); err == nil {
			l.add(kindOf(name), value)
		}
	}
}

func (l learner) body(contentType string, body []byte) {
	if len(body) == 0 {
		return
	}
	body = body[:min(len(body), maxLearnBytes)]
	l.jwts(body)
	media, _, _ := mime.ParseMediaType(contentType)
	trimmed := bytes.TrimSpace(body)
	switch {
	case media == "application/x-www-form-urlencoded":
		l.query(string(trimmed))
	case len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '['):
		l.document(trimmed, 0)
	case media == "" || strings.HasPrefix(media, "text/plain"):
		if bytes.IndexByte(trimmed, '=') > 0 && bytes.IndexAny(trimmed, "{}\n") < 0 {
			l.query(string(trimmed))
		} else {
			l.document(trimmed, 0)
		}
	default:
		// An HTML page or a text with a JSON document inside (an error page quoting the request).
		l.document(trimmed, 0)
	}
}

// jwtShape matches a JSON Web Token: three base64url parts, the first a JSON header.
var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`)

func (l learner) jwts(body []byte) {
	for _, m := range jwtShape.FindAll(body, maxJWTsPerBody) {
		l.add(KindToken, string(m))
	}
}

// jsonFrame is an open object or array of the document a learner walks.
type jsonFrame struct {
	object  bool
	wantKey bool   // an object's next string is a key
	key     string // an object's current key
	secret  string // the kind of a credential-named field this container is the value of, or ""
}

// valueKind is the kind a value in f (under its current key) is registered as, or "".
func (f *jsonFrame) valueKind() string {
	if f.secret != "" {
		return f.secret
	}
	if f.object && CredentialName(f.key) {
		return kindOf(f.key)
	}
	return ""
}

// document walks the JSON document that starts at the first { or [ of body and registers every
// string under a credential-named field (a string, or the strings of an array or object it holds). It
// stops at the first syntax error, so a body cut at its size limit or followed by other text is
// learned as far as it goes; a string that itself holds a JSON document is opened too.
func (l learner) document(body []byte, nested int) {
	start := bytes.IndexAny(body, "{[")
	if start < 0 {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body[start:]))
	var stack []jsonFrame
	for {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if len(stack) >= maxLearnDepth {
					return
				}
				kind := ""
				if top != nil {
					kind = top.valueKind()
				}
				stack = append(stack, jsonFrame{object: v == '{', wantKey: v == '{', secret: kind})
			default:
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].wantKey = true
				}
			}
		case string:
			if top == nil {
				continue
			}
			if top.object && top.wantKey {
				top.key, top.wantKey = v, false
				continue
			}
			if kind := top.valueKind(); kind != "" {
				l.credential(kind, v)
			}
			if s := strings.TrimSpace(v); nested < maxNestedJSON && len(s) > 1 && (s[0] == '{' || s[0] == '[') {
				l.document([]byte(s), nested+1)
			}
			if top.object {
				top.wantKey = true
			}
		default: // numbers, true, false, null: not registered, a count or a flag is no one's secret
			if top != nil && top.object {
				top.wantKey = true
			}
		}
	}
}
