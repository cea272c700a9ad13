package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/probe"
	"github.com/tocsin/tocsin/internal/redact"
)

// RFC7009 configures token revocation (RFC 7009) with client authentication.
type RFC7009 struct {
	URL           string
	ClientID      string
	ClientSecret  string
	AuthStyle     string // "basic" (default) or "post", as for OAuth2
	TokenTypeHint string // e.g. "access_token"; optional
}

type rfc7009Hook struct {
	o RFC7009
	c *client.Client
	r *redact.Redactor
}

var _ Hook = (*rfc7009Hook)(nil)

// NewRFC7009 returns a hook that revokes a token at an RFC 7009 revocation endpoint.
func NewRFC7009(o RFC7009, c *client.Client, r *redact.Redactor) Hook {
	r = orNew(r)
	r.Add("client-secret", o.ClientSecret)
	return &rfc7009Hook{o: o, c: c, r: r}
}

func (h *rfc7009Hook) Kind() string { return "rfc7009" }

func (h *rfc7009Hook) Manual() string {
	parts := []string{"curl", "-sS", "-X", "POST", shellQuote(h.o.URL), "--data-urlencode", shellQuote("token={{token}}")}
	if h.o.TokenTypeHint != "" {
		parts = append(parts, "-d", shellQuote("token_type_hint="+h.o.TokenTypeHint))
	}
	if h.o.AuthStyle == "post" {
		parts = append(parts, "-d", shellQuote("client_id="+h.o.ClientID), "-d", shellQuote("client_secret="+h.o.ClientSecret))
	} else if h.o.ClientID != "" {
		parts = append(parts, "-u", shellQuote(h.o.ClientID+":"+h.o.ClientSecret))
	}
	return h.r.String(strings.Join(parts, " "))
}

// Run revokes token. Only 200 acknowledges: RFC 7009 section 2.2 has the server answer 200 once the
// token is revoked (or was invalid anyway); anything else may mean it is still live.
func (h *rfc7009Hook) Run(ctx context.Context, tok Token) error {
	token := tok.Value
	h.r.Add("token", token)
	where := "rfc7009 revocation at " + safeURL(h.o.URL)
	form := url.Values{"token": {token}}
	if h.o.TokenTypeHint != "" {
		form.Set("token_type_hint", h.o.TokenTypeHint)
	}
	basic := false
	switch h.o.AuthStyle {
	case "", "basic":
		basic = h.o.ClientID != ""
	case "post":
		if h.o.ClientID != "" {
			form.Set("client_id", h.o.ClientID)
		}
		if h.o.ClientSecret != "" {
			form.Set("client_secret", h.o.ClientSecret)
		}
	default:
		return fmt.Errorf("%s: unknown auth_style %q (want basic or post)", where, h.o.AuthStyle)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.o.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return h.r.Error(fmt.Errorf("%s: %w", where, err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		// RFC 6749 section 2.3.1: the client id and secret are form-encoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(h.o.ClientID), url.QueryEscape(h.o.ClientSecret))
	}
	resp, err := h.c.Do(ctx, req)
	if err != nil {
		return h.r.Error(fmt.Errorf("%s: %w", where, err))
	}
	if resp.Status == http.StatusOK {
		return nil
	}
	return h.r.Error(fmt.Errorf("%s: status %s: %s (hint: %s)", where, resp.StatusText(), responseExcerpt(h.r, resp), revocationHint(resp)))
}

func revocationHint(resp *client.Response) string {
	var body struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(resp.Body, &body) // the hint is best effort; the status and excerpt are shown anyway
	switch {
	case body.Error == "invalid_client" || resp.Status == http.StatusUnauthorized:
		return "check client_id, client_secret and auth_style"
	case body.Error == "unsupported_token_type":
		return "the server does not revoke this token type; check token_type_hint"
	case resp.Status == http.StatusServiceUnavailable:
		return "the server asked to retry later"
	case resp.Status >= 200 && resp.Status <= 299:
		return "RFC 7009 acknowledges with 200; for this server use an http revoke hook with expect"
	case resp.Status == http.StatusNotFound || resp.Status == http.StatusMethodNotAllowed:
		return "check the revocation url"
	}
	return "check the revocation url and client credentials"
}

// HTTPHook configures a hook that sends one request; {{token}} in URL, headers and body is the token,
// {{token.<field>}} its fields, and {{name}} one of Vars.
type HTTPHook struct {
	Method  string // default POST
	URL     string
	Headers map[string]string
	Body    string
	Expect  []int      // statuses that acknowledge; default any 2xx
	Vars    probe.Vars // the config's vars; the token's variables win over one of the same name
}

type httpHook struct {
	h HTTPHook
	c *client.Client
	r *redact.Redactor
}

var _ Hook = (*httpHook)(nil)

// NewHTTPHook returns a hook that sends h's request through c.
func NewHTTPHook(h HTTPHook, c *client.Client, r *redact.Redactor) Hook {
	h.Expect = slices.Clone(h.Expect)
	h.Vars = maps.Clone(h.Vars)
	return &httpHook{h: h, c: c, r: orNew(r)}
}

func (h *httpHook) Kind() string { return "http" }

func (h *httpHook) Manual() string {
	method := h.h.Method
	if method == "" {
		method = http.MethodPost
	}
	parts := []string{"curl", "-sS", "-X", method, shellQuote(h.fillVars(h.h.URL))}
	for _, name := range slices.Sorted(maps.Keys(h.h.Headers)) {
		parts = append(parts, "-H", shellQuote(name+": "+h.fillVars(h.h.Headers[name])))
	}
	if h.h.Body != "" {
		parts = append(parts, "--data-raw", shellQuote(h.fillVars(h.h.Body)))
	}
	return h.r.String(strings.Join(parts, " "))
}

// fillVars renders the vars in tmpl for Manual, leaving {{token}} and any other name as a
// placeholder (and tmpl as written should it not parse, which Run reports).
func (h *httpHook) fillVars(tmpl string) string {
	vars := maps.Clone(h.h.Vars)
	if vars == nil {
		vars = probe.Vars{}
	}
	for _, name := range probe.VarNames(tmpl) {
		if _, ok := vars[name]; !ok {
			vars[name] = "{{" + name + "}}"
		}
	}
	s, err := probe.Render(tmpl, vars)
	if err != nil {
		return tmpl
	}
	return s
}

func (h *httpHook) Run(ctx context.Context, tok Token) error {
	h.r.Add("token", tok.Value)
	method := h.h.Method
	if method == "" {
		method = http.MethodPost // a hook changes state
	}
	where := "http hook " + method + " " + templateURL(h.h.URL, h.r)
	vars := make(probe.Vars, len(h.h.Vars)+1+len(tok.Fields))
	maps.Copy(vars, h.h.Vars)
	maps.Copy(vars, tok.Vars())
	u, err := probe.RenderURL(h.h.URL, vars)
	if err != nil {
		return h.r.Error(fmt.Errorf("%s: url: %w", where, err))
	}
	body, err := probe.Render(h.h.Body, vars)
	if err != nil {
		return h.r.Error(fmt.Errorf("%s: body: %w", where, err))
	}
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return h.r.Error(fmt.Errorf("%s: %w", where, err))
	}
	// Sorted so that the outcome never depends on map order (say, "authorization" and "Authorization").
	for _, name := range slices.Sorted(maps.Keys(h.h.Headers)) {
		v, err := probe.Render(h.h.Headers[name], vars)
		if err != nil {
			return h.r.Error(fmt.Errorf("%s: header %s: %w", where, name, err))
		}
		if strings.EqualFold(name, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(name, v)
	}
	resp, err := h.c.Do(ctx, req)
	if err != nil {
		return h.r.Error(fmt.Errorf("%s: %w", where, err))
	}
	if acknowledged(resp.Status, h.h.Expect) {
		return nil
	}
	want := "a 2xx status"
	if len(h.h.Expect) > 0 {
		want = fmt.Sprint("one of ", h.h.Expect)
	}
	return h.r.Error(fmt.Errorf("%s: status %s; want %s: %s", where, resp.StatusText(), want, responseExcerpt(h.r, resp)))
}

func acknowledged(status int, expect []int) bool {
	if len(expect) == 0 {
		return status >= 200 && status <= 299
	}
	return slices.Contains(expect, status)
}

// commandHook runs a command; exit status 0 acknowledges.
type commandHook struct {
	argv    []string
	dir     string // where it runs; "" is tocsin's working directory
	r       *redact.Redactor
	timeout time.Duration
}

var _ Hook = (*commandHook)(nil)

// NewCommandHook returns a hook that runs argv (no shell) with {{token}} in its arguments replaced by
// the token, which is also in the environment as TOCSIN_TOKEN (safer: arguments show in ps).
func NewCommandHook(argv []string, r *redact.Redactor) Hook {
	return NewCommandHookIn("", argv, r)
}

// NewCommandHookIn is NewCommandHook running in dir (a config file's folder).
func NewCommandHookIn(dir string, argv []string, r *redact.Redactor) Hook {
	return &commandHook{argv: slices.Clone(argv), dir: dir, r: orNew(r), timeout: commandTimeout}
}

func (h *commandHook) Kind() string { return "command" }

func (h *commandHook) Manual() string {
	parts := make([]string, len(h.argv))
	for i, a := range h.argv {
		parts[i] = shellQuote(a)
	}
	return h.r.String(strings.Join(parts, " "))
}

// responseExcerpt is excerpt for a response body, which may have been cut at its size limit.
func responseExcerpt(r *redact.Redactor, resp *client.Response) string {
	if s := r.Excerpt(resp.Body, excerptBytes, resp.Truncated); s != "" {
		return s
	}
	return "(empty)"
}

// templateURL shows a URL template in a message as written, {{token}} and all (not percent-encoded),
// without what may hold a secret (redact.TemplateURL) and with registered secrets redacted.
func templateURL(raw string, r *redact.Redactor) string { return r.String(redact.TemplateURL(raw)) }

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (h *commandHook) Run(ctx context.Context, tok Token) error {
	token := tok.Value
	h.r.Add("token", token)
	name := commandName(h.argv)
	vars := tok.Vars()
	argv := make([]string, len(h.argv))
	for i, a := range h.argv {
		s, err := probe.Render(a, vars)
		if err != nil {
			return h.r.Error(fmt.Errorf("hook command %s: argument %d: %w", name, i, err))
		}
		argv[i] = s
	}
	out, err := runCommand(ctx, h.dir, argv, []string{"TOCSIN_TOKEN=" + token}, h.timeout)
	if err != nil {
		return h.r.Error(fmt.Errorf("hook command %s: %w; stderr: %s", name, err, excerpt(h.r, out.stderr)))
	}
	return nil
}
