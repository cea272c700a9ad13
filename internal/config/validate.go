package config

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/probe"
	"github.com/tocsin/tocsin/internal/redact"
)

// Upper bounds on limits: beyond these a value is a typo, or a scan that would hurt the target.
const (
	maxRequestBudget    = 1_000_000
	maxRate             = 10_000
	maxTimeout          = 5 * time.Minute
	maxMaxWindow        = time.Hour
	minPrecision        = 500 * time.Microsecond
	maxMaxResponseBytes = 1 << 30
)

var (
	probeMethods  = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	unsafeMethods = []string{"POST", "PUT", "PATCH", "DELETE"}
	grants        = []string{"password", "client_credentials"}
	authStyles    = []string{"basic", "post"}
	tokenHints    = []string{"access_token", "refresh_token"}
	defaultAccept = "200-299"
	defaultReject = []int{401, 403}
)

type validator struct {
	c       *Config
	ps      problems
	origins map[string]bool // canonical allowed origins
}

// Validate reports every problem with c at once, as an *Error; nil when there is none.
func (c *Config) Validate() error {
	v := &validator{c: c, ps: problems{file: c.file}, origins: make(map[string]bool)}
	v.version()
	v.target()
	v.limits()
	v.identities()
	v.surfaces()
	v.vars()
	v.probes()
	v.checks()
	return v.ps.err()
}

// IdentityNames returns the identity names in file order, followed by any others in c.Identities
// (a config built in code may leave IdentityOrder short) in sorted order.
func (c *Config) IdentityNames() []string {
	names := make([]string, 0, len(c.Identities))
	seen := make(map[string]bool)
	for _, n := range c.IdentityOrder {
		if _, ok := c.Identities[n]; ok && !seen[n] {
			names = append(names, n)
			seen[n] = true
		}
	}
	for _, n := range slices.Sorted(maps.Keys(c.Identities)) {
		if !seen[n] {
			names = append(names, n)
		}
	}
	return names
}

func (v *validator) add(field, msg, hint string) {
	v.ps.add(v.c.lineOf(field), field, msg, hint)
}

// addNear reports a problem with field on the line of near when field itself is not in the file:
// a missing "destructive" is best shown beside the method that needs it.
func (v *validator) addNear(field, near, msg, hint string) {
	line := v.c.lineOf(field)
	if !v.c.written(field) && v.c.written(near) {
		line = v.c.lineOf(near)
	}
	v.ps.add(line, field, msg, hint)
}

func (v *validator) version() {
	switch {
	case v.c.Version == 1:
	case v.c.Version == 0 && !v.c.written("version"):
		v.add("version", "missing version", "add `version: 1` at the top of the file")
	default:
		v.add("version", fmt.Sprintf("unsupported version %d", v.c.Version), "this tocsin reads version: 1")
	}
}

func (v *validator) target() {
	if len(v.c.Target.Origins) == 0 {
		v.add("target.origins", "no origins", "list every scheme://host[:port] the scan may contact, e.g. origins: [https://api.example.com]")
		return
	}
	for i, raw := range v.c.Target.Origins {
		field := fmt.Sprintf("target.origins[%d]", i)
		canon, msg := parseOrigin(raw)
		if msg != "" {
			v.add(field, msg, "write scheme://host[:port] only, e.g. https://api.example.com; paths belong in probes")
			continue
		}
		v.origins[canon] = true
	}
}

// parseOrigin checks that raw is scheme://host[:port] (a trailing "/" is tolerated) and returns it in
// canonical form, or a message saying what is wrong. The message never repeats credentials, a query
// or a fragment, which may hold secrets (an API key in ?key=...).
func parseOrigin(raw string) (canonical, msg string) {
	u, err := url.Parse(raw)
	shown := truncate(redact.URL(raw), 80)
	switch {
	case raw == "":
		return "", "empty origin"
	case err != nil:
		return "", fmt.Sprintf("%q is not a URL", shown)
	case u.User != nil:
		return "", "origin must not contain credentials"
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Sprintf("origin %q must use http or https", shown)
	case u.Host == "":
		return "", fmt.Sprintf("origin %q has no host", shown)
	case u.Path != "" && u.Path != "/" || u.RawPath != "":
		return "", fmt.Sprintf("origin %q has a path", shown)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Sprintf("origin %q is followed by a query or fragment (not shown: it may hold a secret)", shown)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), ""
}

// splitOrigin splits an absolute URL (which may hold {{var}} templates after its host) into its
// origin, scheme://host[:port], and the rest. ok is false when raw has no scheme://.
func splitOrigin(raw string) (origin, rest string, ok bool) {
	i := strings.Index(raw, "://")
	if i <= 0 || strings.ContainsAny(raw[:i], "/?#{") {
		return "", "", false
	}
	after := raw[i+3:]
	j := strings.IndexAny(after, "/?#")
	if j < 0 {
		j = len(after)
	}
	return raw[:i+3+len(after[:j])], after[j:], true
}

// checkURL reports a URL that is not absolute http(s) or not on an allowed origin. Only the origin is
// quoted in messages: the rest may carry secrets.
func (v *validator) checkURL(field, raw, example string) {
	if strings.ContainsAny(raw, " \t\r\n") {
		v.add(field, "URL contains whitespace", "percent-encode it, e.g. %20")
		return
	}
	origin, _, ok := splitOrigin(raw)
	if !ok {
		v.add(field, "not an absolute http(s) URL", "write the full URL, e.g. "+example)
		return
	}
	if strings.Contains(origin, "{{") {
		v.add(field, "the URL's origin contains a {{variable}}", "write the scheme and host literally: tocsin checks them against target.origins")
		return
	}
	canon, msg := parseOrigin(origin)
	if msg != "" {
		v.add(field, msg, "write the full URL, e.g. "+example)
		return
	}
	if len(v.origins) > 0 && !v.origins[canon] {
		v.add(field, fmt.Sprintf("origin %s is not allowed", canon), "add "+canon+" to target.origins")
	}
}

func (v *validator) limits() {
	l := v.c.Limits
	if l.RequestBudget <= 0 {
		v.add("limits.request_budget", "must be positive", fmt.Sprintf("e.g. %d (the default)", DefaultRequestBudget))
	} else if l.RequestBudget > maxRequestBudget {
		v.add("limits.request_budget", fmt.Sprintf("%d requests is too many", l.RequestBudget), fmt.Sprintf("at most %d", maxRequestBudget))
	}
	if l.Rate <= 0 {
		v.add("limits.rate", "must be positive", fmt.Sprintf("requests per second, e.g. %d (the default)", DefaultRate))
	} else if l.Rate > maxRate {
		v.add("limits.rate", fmt.Sprintf("%g requests per second is too fast", l.Rate), fmt.Sprintf("at most %d", maxRate))
	}
	v.durationLimit("limits.timeout", l.Timeout, maxTimeout, DefaultTimeout)
	v.durationLimit("limits.max_window", l.MaxWindow, maxMaxWindow, DefaultMaxWindow)
	switch {
	case l.Precision <= 0:
		v.add("limits.precision", "must be positive", fmt.Sprintf("e.g. %s (the default)", DefaultPrecision))
	case l.Precision < minPrecision:
		v.add("limits.precision", fmt.Sprintf("%s is finer than a replay's own round trip can show", l.Precision), fmt.Sprintf("at least %s", minPrecision))
	case l.Precision > l.MaxWindow && l.MaxWindow > 0:
		v.add("limits.precision", fmt.Sprintf("%s is longer than limits.max_window (%s)", l.Precision, l.MaxWindow), "a few milliseconds, e.g. "+DefaultPrecision.String()+" (the default)")
	}
	if l.MaxResponseBytes <= 0 {
		v.add("limits.max_response_bytes", "must be positive", fmt.Sprintf("e.g. %d (1 MiB, the default)", DefaultMaxResponseBytes))
	} else if l.MaxResponseBytes > maxMaxResponseBytes {
		v.add("limits.max_response_bytes", fmt.Sprintf("%d bytes is too many", l.MaxResponseBytes), fmt.Sprintf("at most %d (1 GiB)", maxMaxResponseBytes))
	}
}

func (v *validator) durationLimit(field string, d, most, def time.Duration) {
	if d <= 0 {
		v.add(field, "must be positive", fmt.Sprintf("e.g. %s (the default)", def))
	} else if d > most {
		v.add(field, fmt.Sprintf("%s is too long", d), fmt.Sprintf("at most %s", most))
	}
}

func (v *validator) identities() {
	for _, name := range v.c.IdentityNames() {
		id := v.c.Identities[name]
		field := "identities." + name
		if id == nil {
			v.add(field, "empty identity", "give it a token source")
			continue
		}
		if name == "" {
			v.add(field, "empty identity name", "")
		}
		if name == Anonymous {
			v.add(field, `"anonymous" is reserved for sending no credential`, "rename the identity")
		}
		if id.Fresh != FreshPerScan && id.Fresh != FreshPerExperiment {
			v.add(field+".fresh", fmt.Sprintf("unknown fresh %q", truncate(id.Fresh, 40)), "use per-scan (the default) or per-experiment")
		}
		v.tokenSource(field+".token", &id.Token)
		if len(id.Teardown) > 0 {
			known := append([]string{"token"}, probe.UniqueNames...)
			known = append(known, slices.Sorted(maps.Keys(v.c.Vars))...)
			v.chain(field, "teardown", id.Teardown, teardownStep, known)
		}
		if id.JWKSURL != "" {
			v.checkURL(field+".jwks_url", id.JWKSURL, "https://idp.example/.well-known/jwks.json")
		}
		if id.Scheme != "" && v.c.OpenAPI == nil {
			v.add(field+".scheme", "a security scheme names one of the openapi: document's components.securitySchemes, and the config has no openapi:", "add openapi: source: the API's document, or remove scheme")
		}
		if id.Revoke != nil {
			v.hook(field+".revoke", id.Revoke, revokeHook)
		}
		if id.Downgrade != nil {
			v.hook(field+".downgrade", id.Downgrade, downgradeHook)
			if id.Restore == nil {
				v.add(field+".downgrade", "downgrade without restore", "add restore, so that the scan gives the privilege back when it is done")
			}
		}
		if id.Restore != nil {
			v.hook(field+".restore", id.Restore, restoreHook)
		}
	}
}

func (t *TokenSource) kinds() []string {
	var kinds []string
	if t.Static != "" {
		kinds = append(kinds, "static")
	}
	if t.Command != nil {
		kinds = append(kinds, "command")
	}
	if t.OAuth2 != nil {
		kinds = append(kinds, "oauth2")
	}
	if t.HTTP != nil {
		kinds = append(kinds, "http")
	}
	return kinds
}

func (v *validator) tokenSource(field string, t *TokenSource) {
	kinds := t.kinds()
	staticWritten := v.c.written(field + ".static")
	if staticWritten && t.Static == "" {
		v.add(field+".static", "the static token is empty", "set it, e.g. static: ${ALICE_TOKEN}, and check that the variable is not empty")
		kinds = append(kinds, "static")
	}
	switch len(kinds) {
	case 0:
		v.add(field, "missing token source", "set one of static, command, oauth2 or http under token")
		return
	case 1:
	default:
		v.add(field, "more than one token source ("+strings.Join(kinds, ", ")+")", "keep exactly one of static, command, oauth2, http")
	}
	if t.HTTP != nil {
		if len(t.HTTP) == 0 {
			v.add(field+".http", "empty login", "give the login request: method, path, body and extract: {token: <selector>}")
		}
		known := append(slices.Clone(probe.UniqueNames), slices.Sorted(maps.Keys(v.c.Vars))...)
		known = v.chain(field, "http", t.HTTP, loginStep, known)
		if n := len(t.HTTP); n > 0 && t.HTTP[n-1] != nil {
			if _, ok := t.HTTP[n-1].Extract["token"]; !ok {
				v.add(field+".http", "the login extracts no token", "add extract: {token: <selector>} to the last step, e.g. token: access_token")
			}
		}
	}
	if t.Command != nil {
		v.argv(field+".command", t.Command, `["./get-token.sh", "alice"]`, func(field, arg string) {
			v.templates(field, arg, []string{"identity"}, "here only {{identity}} is known")
		})
	}
	if o := t.OAuth2; o != nil {
		v.oauth2(field+".oauth2", o)
	}
}

func (v *validator) oauth2(field string, o *OAuth2) {
	switch {
	case o.Grant == "":
		v.add(field, "missing grant", "grant: password or grant: client_credentials")
	case !slices.Contains(grants, o.Grant):
		v.add(field+".grant", fmt.Sprintf("unsupported grant %q", truncate(o.Grant, 40)), "use password or client_credentials")
	}
	if o.TokenURL == "" {
		v.add(field, "missing token_url", "the token endpoint, e.g. https://idp.example/oauth/token")
	} else {
		v.checkURL(field+".token_url", o.TokenURL, "https://idp.example/oauth/token")
	}
	if o.ClientID == "" && o.Grant == "client_credentials" {
		v.add(field, "missing client_id", "the client_credentials grant authenticates as a client: set client_id (and client_secret)")
	}
	if o.Grant == "client_credentials" && o.ClientSecret == "" {
		v.add(field, "missing client_secret", "client_credentials needs it; keep it out of the file with client_secret: ${CLIENT_SECRET}")
	}
	v.authStyle(field+".auth_style", o.AuthStyle)
	if o.Grant == "password" {
		if o.Username == "" {
			v.add(field, "missing username", "the password grant needs username and password")
		}
		if o.Password == "" {
			v.add(field, "missing password", "the password grant needs username and password; e.g. password: ${ALICE_PASSWORD}")
		}
	}
	for i, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			v.add(fmt.Sprintf("%s.scopes[%d]", field, i), "a scope must be one non-empty word", "list scopes separately, e.g. scopes: [items:read, items:write]")
		}
	}
}

func (v *validator) authStyle(field, style string) {
	if style != "" && !slices.Contains(authStyles, style) {
		v.add(field, fmt.Sprintf("unknown auth_style %q", truncate(style, 40)), "use basic (HTTP Basic) or post (in the form body)")
	}
}

// hookRole is what a hook does, which decides what it may be and which variables it knows.
type hookRole int

const (
	revokeHook    hookRole = iota // revokes the token it is given; may be rfc7009
	downgradeHook                 // sent with the token under test (internal/check/stale.go)
	restoreHook                   // sent with no token (internal/check/restore.go)
)

// hook checks a revoke, downgrade or restore hook.
func (v *validator) hook(field string, h *Hook, role hookRole) {
	var kinds []string
	if h.RFC7009 != nil {
		kinds = append(kinds, "rfc7009")
	}
	if h.HTTP != nil {
		kinds = append(kinds, "http")
	}
	if h.Command != nil {
		kinds = append(kinds, "command")
	}
	revoke := role == revokeHook
	want := "http or command"
	if revoke {
		want = "rfc7009, http or command"
	}
	switch {
	case len(kinds) == 0:
		v.add(field, "empty hook", "set exactly one of "+want)
		return
	case len(kinds) > 1:
		v.add(field, "more than one hook ("+strings.Join(kinds, ", ")+")", "keep exactly one of "+want)
	}
	if r := h.RFC7009; r != nil {
		if !revoke {
			v.add(field+".rfc7009", "rfc7009 can only revoke", "use http or command to "+lastSegment(field))
		} else {
			v.rfc7009(field+".rfc7009", r)
		}
	}
	vars := slices.Sorted(maps.Keys(v.c.Vars))
	var token []string // "token" stands for {{token}} and its fields; a restore has no token
	if role != restoreHook {
		token = []string{"token"}
	}
	if h.HTTP != nil {
		hint := "a hook knows {{token}}, the token's fields ({{token.id}}) and the vars"
		if role == restoreHook {
			hint = "a restore acts on the identity, not on one token, and knows only the vars (none is defined): " +
				"name the identity as written, with a ${VAR} or with a var under vars"
			if len(vars) > 0 {
				hint = "a restore acts on the identity, not on one token, and knows only the vars ({{" + strings.Join(vars, "}}, {{") +
					"}}): name the identity with one of them, as written or with a ${VAR}"
			}
		}
		v.httpHook(field+".http", h.HTTP, v.hookTemplates(role, append(token, vars...), hint))
	}
	if h.Command != nil {
		example, hint := `["./revoke.sh", "{{token}}"]`, "here only {{token}} is known"
		if role == restoreHook {
			example = `["./restore.sh", "alice"]`
			hint = "a restore acts on the identity, not on one token, and its arguments know no {{variable}}: " +
				"name the identity as written or with a ${VAR}, e.g. " + example
		}
		v.argv(field+".command", h.Command, example, v.hookTemplates(role, token, hint))
	}
}

// hookTemplates returns the check of a hook's templates, which know known and whose problems say
// hint. A restore runs with no token: there {{token}} would be empty and {{token.id}} unknown when
// the restore is sent, after the downgrade it undoes, so each gets a problem of its own.
func (v *validator) hookTemplates(role hookRole, known []string, hint string) func(field, s string) {
	if role != restoreHook {
		return func(field, s string) { v.templates(field, s, known, hint) }
	}
	return func(field, s string) {
		refs, bad := templateRefs(s)
		refs = slices.DeleteFunc(refs, func(r string) bool {
			if r != "token" && !strings.HasPrefix(r, "token.") {
				return false
			}
			v.add(field, fmt.Sprintf("{{%s}} in a restore, which runs with no token", r), hint)
			return true
		})
		v.refs(field, refs, bad, known, hint)
	}
}

func lastSegment(field string) string {
	return field[strings.LastIndexByte(field, '.')+1:]
}

func (v *validator) rfc7009(field string, r *RFC7009) {
	if r.URL == "" {
		v.add(field, "missing url", "the RFC 7009 revocation endpoint, e.g. https://idp.example/oauth/revoke")
	} else {
		v.checkURL(field+".url", r.URL, "https://idp.example/oauth/revoke")
	}
	// No client_id: the endpoint has no client authentication (RFC 7009 lets a server accept that), and
	// the request goes without one; an endpoint that wants it answers 401, which the hook reports.
	v.authStyle(field+".auth_style", r.AuthStyle)
	if r.TokenTypeHint != "" && !slices.Contains(tokenHints, r.TokenTypeHint) {
		v.add(field+".token_type_hint", fmt.Sprintf("unknown token_type_hint %q", truncate(r.TokenTypeHint, 40)), "use access_token or refresh_token, or leave it out")
	}
}

// httpHook checks an http hook; templates checks its URL, body and header values.
func (v *validator) httpHook(field string, h *HTTPHook, templates func(field, s string)) {
	switch {
	case h.Method == "":
		v.add(field, "missing method", "e.g. method: POST")
	case !slices.Contains(probeMethods, h.Method):
		v.add(field+".method", fmt.Sprintf("unknown method %q", truncate(h.Method, 20)), "use one of "+strings.Join(probeMethods, ", "))
	}
	if h.URL == "" {
		v.add(field, "missing url", "the endpoint to call, e.g. https://idp.example/admin/logout")
	} else {
		v.checkURL(field+".url", h.URL, "https://idp.example/admin/logout")
	}
	v.headers(field+".headers", h.Headers)
	v.statuses(field+".expect", h.Expect)
	templates(field+".url", h.URL)
	templates(field+".body", h.Body)
	for _, k := range slices.Sorted(maps.Keys(h.Headers)) {
		templates(field+".headers."+k, h.Headers[k])
	}
}

// argv checks a command; templates checks each argument.
func (v *validator) argv(field string, argv []string, example string, templates func(field, arg string)) {
	if len(argv) == 0 {
		v.add(field, "empty command", "give the argv as a list, e.g. "+example)
		return
	}
	if argv[0] == "" {
		v.add(field+"[0]", "empty program name", "give the argv as a list, e.g. "+example)
	}
	for i, arg := range argv {
		templates(fmt.Sprintf("%s[%d]", field, i), arg)
	}
}

func (v *validator) headers(field string, h map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if !validHeaderName(k) {
			v.add(field+"."+k, fmt.Sprintf("%q is not a valid header name", truncate(k, 40)), "use letters, digits and - as in Content-Type")
		}
		if strings.ContainsAny(h[k], "\r\n\x00") {
			v.add(field+"."+k, "header value contains a line break", "put the value on one line")
		}
	}
}

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (v *validator) statuses(field string, codes []int) {
	for i, code := range codes {
		if code < 100 || code > 599 {
			v.add(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("%d is not an HTTP status", code), "use statuses from 100 to 599")
		}
	}
}

// templates reports {{var}} references in s that are not in known, and malformed ones.
func (v *validator) templates(field, s string, known []string, hint string) {
	refs, bad := templateRefs(s)
	v.refs(field, refs, bad, known, hint)
}

// refs reports the malformed references bad, and the names in refs that are not in known.
func (v *validator) refs(field string, refs, bad, known []string, hint string) {
	for _, b := range bad {
		v.add(field, b, "write a reference as {{name}}")
	}
	for _, r := range refs {
		// {{token.<field>}} names a field the token source gives, known only when it runs.
		if !slices.Contains(known, r) && !(strings.HasPrefix(r, "token.") && slices.Contains(known, "token")) {
			v.add(field, fmt.Sprintf("unknown variable {{%s}}", r), hint)
		}
	}
}

// templateRefs returns the names referenced as {{name}} in s, in order, and a message for each
// malformed reference. Spaces inside the braces are ignored: {{ token }} is {{token}}.
func templateRefs(s string) (names, bad []string) {
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			return names, bad
		}
		s = s[i+2:]
		j := strings.Index(s, "}}")
		if j < 0 {
			return names, append(bad, "unterminated {{")
		}
		name := strings.TrimSpace(s[:j])
		s = s[j+2:]
		if !validVarName(name) {
			bad = append(bad, fmt.Sprintf("{{%s}} is not a variable reference", truncate(name, 40)))
			continue
		}
		names = append(names, name)
	}
}

// validVarName reports whether name can be a template variable: letters, digits, '_', '-' and '.',
// the same rule the probe package renders by.
func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', c == '-', c == '.', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}

func (v *validator) vars() {
	for _, k := range slices.Sorted(maps.Keys(v.c.Vars)) {
		switch {
		case k == "token":
			v.add("vars.token", "token is reserved for the identity's token", "rename the variable")
		case !validVarName(k):
			v.add("vars."+k, fmt.Sprintf("%q is not a valid variable name", truncate(k, 40)), "use letters, digits, _, - and .")
		}
	}
}

type probeRole int

const (
	mainProbe probeRole = iota
	setupStep
	verifyStep
	teardownStep
	loginStep
	listStep
)

var roleNames = map[probeRole]string{setupStep: "setup", verifyStep: "verify", teardownStep: "teardown", loginStep: "login", listStep: "list"}

func (v *validator) probes() {
	seen := make(map[string]bool)
	for i, p := range v.c.Probes {
		if p == nil {
			v.add(fmt.Sprintf("probes[%d]", i), "empty probe", "")
			continue
		}
		field := "probes." + p.Name
		if p.Name == "" {
			v.add(field, "probe without a name", "")
		}
		if seen[p.Name] {
			v.add(field, "duplicate probe name", "give each probe its own name")
		}
		seen[p.Name] = true
		v.oneProbe(field, p)
	}
}

// oneProbe checks a top-level probe and its chains.
func (v *validator) oneProbe(field string, p *Probe) {
	base := append([]string{"token"}, probe.UniqueNames...)
	base = append(base, slices.Sorted(maps.Keys(v.c.Vars))...)
	withSetup := v.chain(field, "setup", p.Setup, setupStep, base)
	if p.List != nil {
		// The list sees what the setup made (a selector may pick it out); its extract, when
		// there is no setup, names the owner's object the probe acts on.
		v.probe(field+".list", p.List, listStep, withSetup)
		withSetup = append(withSetup, slices.Sorted(maps.Keys(p.List.Extract))...)
	}
	v.probe(field, p, mainProbe, withSetup)
	for _, name := range slices.Sorted(maps.Keys(p.Assign)) {
		if name == "" || strings.ContainsAny(name, " \t\r\n\"") {
			v.add(field+".assign."+name, fmt.Sprintf("%q is not a property name", truncate(name, 40)), "name a top-level property of the JSON body, e.g. role")
		}
	}
	afterProbe := append(slices.Clone(withSetup), slices.Sorted(maps.Keys(p.Extract))...)
	v.chain(field, "verify", p.Verify, verifyStep, afterProbe)
	v.chain(field, "teardown", p.Teardown, teardownStep, afterProbe)
	if v.c.written(field+".copies") && (p.Copies < 2 || p.Copies > MaxCopies) {
		v.add(field+".copies", fmt.Sprintf("%d copies", p.Copies), fmt.Sprintf("a race needs 2 to %d synchronised copies (default %d); more than one TCP segment carries is split, and the report says so", MaxCopies, DefaultCopies))
	}
}

// chain checks the steps of one chain of the probe at field and returns the variables known after
// it: known plus what its steps extract, each step seeing what the earlier ones extracted.
func (v *validator) chain(field, kind string, steps []*Probe, role probeRole, known []string) []string {
	known = slices.Clone(known)
	for i, step := range steps {
		f := field + "." + kind
		if len(steps) > 1 || v.c.written(f+"[0]") {
			f = fmt.Sprintf("%s[%d]", f, i)
		}
		if step == nil {
			v.add(f, "empty step", "give the step a method and a path")
			continue
		}
		v.probe(f, step, role, known)
		known = append(known, slices.Sorted(maps.Keys(step.Extract))...)
	}
	return known
}

func (v *validator) probe(field string, p *Probe, role probeRole, known []string) {
	switch {
	case p.Method == "":
		v.add(field, "missing method", "e.g. method: GET")
	case !slices.Contains(probeMethods, p.Method):
		v.add(field+".method", fmt.Sprintf("unknown method %q", truncate(p.Method, 20)), "use one of "+strings.Join(probeMethods, ", "))
	}
	v.probePath(field, p.Path)
	v.headers(field+".headers", p.Headers)
	v.statuses(field+".accept", p.Accept)
	v.statuses(field+".reject", p.Reject)
	v.disjoint(field, p.Accept, p.Reject)
	for _, name := range slices.Sorted(maps.Keys(p.Extract)) {
		sel := p.Extract[name]
		f := field + ".extract." + name
		switch {
		case name == "token" && role != loginStep:
			v.add(f, "token is reserved for the identity's token", "extract into another name")
		case slices.Contains(probe.UniqueNames, name):
			v.add(f, name+" is reserved for a unique value", "extract into another name")
		case !validVarName(name):
			v.add(f, fmt.Sprintf("%q is not a valid variable name", truncate(name, 40)), "use letters, digits, _, - and .")
		}
		if sel == "" {
			v.add(f, "empty selector", "a path into the JSON response, e.g. id, data.items.0.id or items.#(used==false).id")
		}
		// A selector may name a variable, to pick the element that matches it: #(code=="{{code}}").
		v.templates(f, sel, known, "a selector sees the variables known to its request")
	}
	if p.As != "" && p.As != Anonymous {
		if _, ok := v.c.Identities[p.As]; !ok {
			v.add(field+".as", fmt.Sprintf("no identity named %q", p.As), suggestName(p.As, append(v.c.IdentityNames(), Anonymous), "identities"))
		}
	}

	isUnsafe := slices.Contains(unsafeMethods, p.Method)
	switch role {
	case mainProbe:
		if p.As == Anonymous {
			v.add(field+".as", "a probe runs as the identity under test, not anonymous", "name the identity this probe tests (it overrides the check's identity), or leave as out")
		}
		if isUnsafe && !p.Destructive {
			v.addNear(field+".destructive", field+".method", p.Method+" probe not marked destructive",
				"set destructive: true and give it a setup that creates the resource (tocsin only changes resources it created)")
		}
		if isUnsafe && len(p.Setup) == 0 && !v.freshIdentity(p.As) {
			v.add(field, p.Method+" probe without a setup",
				"add a setup that creates the resource it acts on, or run it as an identity with fresh: per-experiment (tocsin only changes what it created)")
		}
	default:
		if role == verifyStep && p.Method != "" && p.Method != "GET" && p.Method != "HEAD" {
			v.add(field+".method", "verify must read, not "+p.Method, "use GET (or HEAD) to read the resource back")
		}
		if role == listStep && p.Method != "" && p.Method != "GET" {
			v.add(field+".method", "a list must read, not "+p.Method, "use GET, e.g. GET /notes, the request that lists what the identity sending it may see")
		}
		for kind, chain := range map[string][]*Probe{"setup": p.Setup, "verify": p.Verify, "teardown": p.Teardown} {
			if len(chain) > 0 {
				v.add(field+"."+kind, "a "+roleNames[role]+" cannot have its own "+kind, "steps are plain requests; make it a step of the top-level probe's "+kind)
			}
		}
	}

	hint := "define it under vars, or extract it in an earlier step; known here: " + strings.Join(known, ", ")
	if role != mainProbe {
		hint = "a " + roleNames[role] + " step sees the vars, unique values and what earlier steps extracted; known here: " + strings.Join(known, ", ")
	}
	v.templates(field+".path", p.Path, known, hint)
	v.templates(field+".body", p.Body, known, hint)
	for _, k := range slices.Sorted(maps.Keys(p.Headers)) {
		v.templates(field+".headers."+k, p.Headers[k], known, hint)
	}
}

// freshIdentity reports whether name is an identity minted per experiment: an account tocsin made
// is a resource tocsin created.
func (v *validator) freshIdentity(name string) bool {
	id := v.c.Identities[name]
	return id != nil && id.Fresh == FreshPerExperiment
}

func (v *validator) probePath(field, path string) {
	switch {
	case path == "":
		v.add(field, "missing path", "e.g. path: /items/{{item_id}}, or an absolute URL on an allowed origin")
	case strings.HasPrefix(path, "//"):
		v.add(field+".path", "a path starting with // names another host", "start the path with a single /, or write an absolute URL on an allowed origin")
	case strings.HasPrefix(path, "/"):
		if strings.ContainsAny(path, " \t\r\n") {
			v.add(field+".path", "path contains whitespace", "percent-encode it, e.g. %20")
		}
	default:
		if _, _, ok := splitOrigin(path); !ok {
			v.add(field+".path", "path must start with / or be an absolute URL", "e.g. /items/{{item_id}} or https://api.example.com/items/{{item_id}}")
			return
		}
		v.checkURL(field+".path", path, "https://api.example.com/items")
	}
}

// disjoint reports statuses that are both accepted and rejected, counting the defaults.
func (v *validator) disjoint(field string, accept, reject []int) {
	acceptNote, rejectNote := "", ""
	isAccepted := func(code int) bool { return slices.Contains(accept, code) }
	if len(accept) == 0 {
		acceptNote = " (accept defaults to " + defaultAccept + ")"
		isAccepted = func(code int) bool { return code >= 200 && code <= 299 }
	}
	if len(reject) == 0 {
		reject, rejectNote = defaultReject, " (reject defaults to 401, 403)"
	}
	for _, code := range reject {
		if isAccepted(code) {
			v.addNear(field+".reject", field+".accept", fmt.Sprintf("status %d is both accepted and rejected%s%s", code, acceptNote, rejectNote),
				"a status may be in accept or reject, not both")
			return
		}
	}
}

func (v *validator) checks() {
	if len(v.c.Checks) == 0 {
		if !v.c.HasSurface() {
			v.add("checks", "no checks", "add at least one of: "+strings.Join(KnownChecks, ", ")+"; or give openapi: (or har:) and every check that fits its operations runs")
		}
		return
	}
	probeNames := make([]string, 0, len(v.c.Probes))
	for _, p := range v.c.Probes {
		if p != nil {
			probeNames = append(probeNames, p.Name)
		}
	}
	identityNames := v.c.IdentityNames()
	seen := make(map[string]bool)
	for i, ch := range v.c.Checks {
		if ch == nil {
			v.add(fmt.Sprintf("checks[%d]", i), "empty check", "")
			continue
		}
		field := "checks." + ch.ID
		if seen[ch.ID] {
			v.add(field, "duplicate check", "list each check once")
		}
		seen[ch.ID] = true
		if !slices.Contains(KnownChecks, ch.ID) {
			v.add(field, fmt.Sprintf("unknown check %q", ch.ID), suggestName(ch.ID, KnownChecks, "known checks"))
		}
		id := v.c.Identities[ch.Identity]
		switch {
		case ch.Identity == "":
			v.add(field, "missing identity", "name the identity under test, one of: "+strings.Join(identityNames, ", "))
		case id == nil:
			v.add(field+".identity", fmt.Sprintf("no identity named %q", ch.Identity), suggestName(ch.Identity, identityNames, "identities"))
		}
		v.checkOwner(field, ch, identityNames)
		if ch.Verifier != "" && ch.Verifier != Anonymous {
			switch {
			case v.c.Identities[ch.Verifier] == nil:
				v.add(field+".verifier", fmt.Sprintf("no identity named %q", ch.Verifier), suggestName(ch.Verifier, identityNames, "identities"))
			case ch.Verifier == ch.Identity:
				v.add(field+".verifier", "the verifier is the identity under test", "name a second identity that stays valid while the first is revoked")
			}
		}
		switch {
		case len(ch.Probes) > 0:
		case !v.c.HasSurface():
			v.add(field, "no probes", "list the probes the check sends, e.g. probes: [read-item]; or give openapi: (or har:) and the check picks them among its operations")
		}
		for j, name := range ch.Probes {
			if v.c.Probe(name) == nil {
				v.add(fmt.Sprintf("%s.probes[%d]", field, j), fmt.Sprintf("no probe named %q", name), suggestName(name, probeNames, "probes"))
			}
		}
		v.checkNeeds(field, ch, id)
	}
}

// ownerChecks are the authz checks between two identities; they name the second one as owner.
var ownerChecks = []string{CheckBOLA, CheckBFLA}

// checkOwner reports an owner where no check reads it, and a missing or wrong one where one does.
func (v *validator) checkOwner(field string, ch *Check, identityNames []string) {
	needs := slices.Contains(ownerChecks, ch.ID)
	switch {
	case ch.Owner == "" && needs:
		v.add(field, "missing owner", fmt.Sprintf("name the identity entitled to what %s tries as %s: the owner of the objects (authz/bola) or the privileged identity (authz/bfla), e.g. owner: alice", ch.ID, orName(ch.Identity)))
	case ch.Owner == "":
	case !needs && ch.ID != CheckMassAssignment:
		v.add(field+".owner", ch.ID+" has no owner", "owner is for the authz checks; remove it")
	case ch.Owner == Anonymous:
		v.add(field+".owner", "the owner cannot be anonymous", "name an identity that owns objects or holds the privilege")
	case v.c.Identities[ch.Owner] == nil:
		v.add(field+".owner", fmt.Sprintf("no identity named %q", ch.Owner), suggestName(ch.Owner, identityNames, "identities"))
	case ch.Owner == ch.Identity:
		v.add(field+".owner", "the owner is the identity under test", "name a second identity: the check tries as identity what only owner may do")
	}
	if needs && ch.Verifier != "" {
		v.add(field+".verifier", ch.ID+" reads back as the owner", "remove verifier; owner reads the object back")
	}
}

func orName(name string) string {
	if name == "" {
		return "the identity under test"
	}
	return name
}

// checkNeeds reports what a known check needs of its identities, verifier and probes. A probe's
// `as:` names the identity under test for that probe instead of the check's.
func (v *validator) checkNeeds(field string, ch *Check, id *Identity) {
	v.identityNeeds(field, ch, ch.Identity, id)
	for _, name := range ch.Probes {
		if p := v.c.Probe(name); p != nil && p.As != "" && p.As != ch.Identity && v.c.Identities[p.As] != nil {
			v.identityNeeds(field, ch, p.As, v.c.Identities[p.As])
		}
	}
	v.probeNeeds(field, ch)
	v.authzNeeds(field, ch)
}

// authzNeeds reports what the authz checks need of their identities and probes. Each experiment
// keeps one token per identity and removes what it created as that identity, so neither may be an
// identity minted per experiment, whose every token is another account (authz/mass-assignment
// excepted: it acts only as the identity under test, on that identity's account).
func (v *validator) authzNeeds(field string, ch *Check) {
	if !slices.Contains(AuthzChecks, ch.ID) {
		return
	}
	if slices.Contains(ownerChecks, ch.ID) {
		for _, who := range []struct{ field, name string }{{"identity", ch.Identity}, {"owner", ch.Owner}} {
			if v.freshIdentity(who.name) {
				v.add(field+"."+who.field, fmt.Sprintf("identity %q is minted per experiment, so each of its tokens is another account", who.name),
					fmt.Sprintf("%s compares what two identities may do with their own objects: name identities that stay the same account (fresh: per-scan)", ch.ID))
			}
		}
	}
	for j, name := range ch.Probes {
		p := v.c.Probe(name)
		if p == nil {
			continue
		}
		f := fmt.Sprintf("%s.probes[%d]", field, j)
		hint := "under probes." + name
		switch ch.ID {
		case CheckBOLA:
			if p.Shared {
				continue // nothing is sent: the config says every identity may see it
			}
			if len(p.Setup) == 0 && (p.List == nil || len(p.List.Extract) == 0) {
				v.add(f, fmt.Sprintf("probe %q names no object of the owner's for %s", name, ch.ID),
					"add a setup that creates the object (it runs as the owner), or a list with an extract that picks the owner's object out of the owner's list, "+hint)
			}
			if p.Destructive && (len(p.Setup) == 0 || len(p.Verify) == 0) {
				v.add(f, fmt.Sprintf("probe %q changes an object: %s needs a setup that creates it and a verify that reads it back", name, ch.ID),
					"a write is proven by the owner reading the object back changed or gone: add setup and verify "+hint)
			}
		case CheckBFLA:
			if !p.Privileged {
				v.add(f, fmt.Sprintf("probe %q is not marked privileged", name),
					"authz/bfla sends operations that need a privilege the identity under test lacks: set privileged: true "+hint)
			}
			if p.Destructive && len(p.Verify) == 0 {
				v.add(f, fmt.Sprintf("probe %q changes something: %s needs a verify that reads it back", name, ch.ID),
					"a privileged write is proven by the owner reading its effect back: add verify "+hint)
			}
		case CheckMassAssignment:
			if !p.Destructive || p.Body == "" || len(p.Verify) == 0 {
				v.add(f, fmt.Sprintf("probe %q needs a JSON body, destructive: true and a verify for %s", name, ch.ID),
					"name a create or update request (POST, PUT or PATCH with a JSON object body) and a verify that reads the object or the identity back, "+hint)
			}
		}
	}
}

func (v *validator) identityNeeds(field string, ch *Check, name string, id *Identity) {
	revokes := ch.ID == CheckRevokedTokenAccepted || ch.ID == CheckInflightRevocation
	changes := revokes || ch.ID == CheckScopeDowngrade
	idField := "identities." + name
	if id != nil {
		if revokes && id.Revoke == nil {
			v.add(field+".identity", fmt.Sprintf("identity %q has no revoke, which %s needs", name, ch.ID),
				"add revoke (rfc7009, http or command) to "+idField)
		}
		if ch.ID == CheckScopeDowngrade && (id.Downgrade == nil || id.Restore == nil) {
			v.add(field+".identity", fmt.Sprintf("identity %q needs downgrade and restore for %s", name, ch.ID),
				"add downgrade and restore (http or command) to "+idField)
		}
		if changes && id.Token.Static != "" && id.Token.Command == nil && id.Token.OAuth2 == nil && id.Token.HTTP == nil {
			v.add(field+".identity", fmt.Sprintf("identity %q has a static token, but %s spends a fresh token on each experiment", name, ch.ID),
				"give "+idField+" an oauth2, command or http token source")
		}
	}
}

func (v *validator) probeNeeds(field string, ch *Check) {
	if slices.Contains(JWTChecks, ch.ID) {
		// Forged tokens go to reads: a forged write would act on the API as whoever the token names.
		for j, name := range ch.Probes {
			if p := v.c.Probe(name); p != nil && p.Destructive {
				v.add(fmt.Sprintf("%s.probes[%d]", field, j), fmt.Sprintf("probe %q is destructive; %s sends forged tokens to read probes only", name, ch.ID),
					"name a read (GET) that the identity's token may call and that refuses a request without a token")
			}
		}
		if ch.Verifier == Anonymous {
			v.add(field+".verifier", "anonymous has no subject to claim", "name a second identity whose subject forged tokens claim, e.g. verifier: bob, or leave it out")
		}
		return
	}
	if ch.ID == CheckAuthMissing {
		// A write sent without valid credentials may succeed: only on what the scan created.
		for j, name := range ch.Probes {
			if p := v.c.Probe(name); p != nil && p.Destructive && len(p.Setup) == 0 {
				v.add(fmt.Sprintf("%s.probes[%d]", field, j), fmt.Sprintf("probe %q is destructive and has no setup, so %s could act on something the scan did not create", name, ch.ID),
					"give probes."+name+" a setup that creates what it acts on")
			}
		}
		return
	}
	if ch.ID == CheckLimitOverrun {
		// The check spends the probe on resources its setup creates: one for the sequential baseline,
		// one for the race.
		for j, name := range ch.Probes {
			if p := v.c.Probe(name); p != nil && (!p.Destructive || len(p.Setup) == 0 && !v.freshIdentity(p.As)) {
				v.add(fmt.Sprintf("%s.probes[%d]", field, j), fmt.Sprintf("probe %q needs destructive: true and a setup for %s", name, ch.ID),
					"name a one-shot action (e.g. redeem a coupon) with a setup that creates a fresh resource for it, under probes."+name)
			}
		}
		return
	}
	if ch.ID != CheckInflightRevocation {
		return
	}
	if ch.Verifier == "" && (len(ch.Probes) > 0 || !v.c.HasSurface()) {
		v.add(field, "missing verifier", "name a second identity that stays valid and reads the resource back, e.g. verifier: bob, or verifier: anonymous for a public read")
	}
	for j, name := range ch.Probes {
		p := v.c.Probe(name)
		if p != nil && (len(p.Setup) == 0 || len(p.Verify) == 0) {
			v.add(fmt.Sprintf("%s.probes[%d]", field, j), fmt.Sprintf("probe %q needs a setup and a verify for %s", name, ch.ID),
				"add setup (creates the resource) and verify (reads it back) to probes."+name)
		}
	}
}

// suggestName proposes the nearest of names, or lists them.
func suggestName(name string, names []string, what string) string {
	if len(names) == 0 {
		return "none are defined"
	}
	best, bestDist := "", -1
	for _, n := range names {
		if d := editDistance(name, n); bestDist < 0 || d < bestDist {
			best, bestDist = n, d
		}
	}
	if bestDist <= max(2, len(name)/3) {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return what + ": " + strings.Join(names, ", ")
}
