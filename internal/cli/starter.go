package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/tocsin/tocsin/internal/surface"
)

// starter writes the config `tocsin init` proposes for one OpenAPI document.
type starter struct {
	doc        *surface.Document
	origin     string // the API's origin
	source     string // the document, as the config names it
	specOrigin string // the document URL's origin, "" for a file
	used       []string
	loginOf    map[string]*login // scheme -> its login, once logins has run
}

// env returns ${NAME} and remembers NAME for the summary.
func (st *starter) env(name string) string {
	if !slices.Contains(st.used, name) {
		st.used = append(st.used, name)
	}
	return "${" + name + "}"
}

// vars lists the environment variables the config names.
func (st *starter) vars() []string { return st.used }

// envName makes a scheme or identity name into an environment variable's prefix: oauth2 -> OAUTH2.
func envName(name string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(name) {
		if c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// quote writes s as a YAML double-quoted string (JSON's syntax is YAML's).
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// absolute resolves a URL the document may give relative to the API's origin.
func (st *starter) absolute(u string) string {
	if strings.HasPrefix(u, "/") {
		return st.origin + u
	}
	return u
}

// revocation is the document's RFC 7009 endpoint: a POST taking a form with a token field, on a path
// that says revoke or with a token_type_hint field.
func (st *starter) revocation() *surface.Operation {
	for _, op := range st.doc.Operations {
		b := op.Body
		if op.Method != "POST" || b == nil || !strings.Contains(b.ContentType, "form") {
			continue
		}
		if _, hasToken := b.Fields["token"]; hasToken {
			if _, hint := b.Fields["token_type_hint"]; hint || strings.Contains(strings.ToLower(op.Path), "revoke") {
				return op
			}
		}
	}
	return nil
}

// scopeAdmin is the call that sets a subject's scopes: a PUT, PATCH or POST on a path with a
// parameter (the subject) whose JSON body has a scopes list.
func (st *starter) scopeAdmin() *surface.Operation {
	for _, op := range st.doc.Operations {
		if op.Read() || op.Method == "DELETE" || op.Body == nil || op.Body.Fields["scopes"] != "array" || len(surface.PathParams(op.Path)) == 0 {
			continue
		}
		return op
	}
	return nil
}

// adminOps are the operations tocsin uses as hooks, not as probes.
func (st *starter) adminOps() []*surface.Operation {
	var out []*surface.Operation
	for _, op := range []*surface.Operation{st.revocation(), st.scopeAdmin()} {
		if op != nil {
			out = append(out, op)
		}
	}
	return out
}

// schemeUses counts the operations other than the hooks that one of whose security alternatives
// names the scheme.
func (st *starter) schemeUses(name string) int {
	admin := st.adminOps()
	n := 0
	for _, op := range st.doc.Operations {
		if !slices.Contains(admin, op) && needs(op, name) {
			n++
		}
	}
	return n
}

// needs reports whether one of op's security alternatives names the scheme.
func needs(op *surface.Operation, scheme string) bool {
	return slices.ContainsFunc(op.Security, func(req surface.Requirement) bool {
		return slices.ContainsFunc(req, func(ss surface.SchemeScopes) bool { return ss.Scheme == scheme })
	})
}

// identitySchemes are the security schemes the probes would authenticate with: those an operation
// other than the hooks requires, and not HTTP Basic (client authentication, not a bearer token).
// The scheme that secures the most operations comes first (its first identity is the owner for
// the authz checks and the identity under test of many others), then by that count, ties by name.
func (st *starter) identitySchemes() []*surface.Scheme {
	var out []*surface.Scheme
	for _, sc := range st.doc.Schemes {
		if sc.Type == "http" && sc.HTTPScheme != "bearer" || st.schemeUses(sc.Name) == 0 {
			continue
		}
		out = append(out, sc)
	}
	slices.SortStableFunc(out, func(a, b *surface.Scheme) int {
		if d := st.schemeUses(b.Name) - st.schemeUses(a.Name); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// login is a public operation that trades a username (or email) and a password for a token.
type login struct {
	op      *surface.Operation
	user    string // the body's field for the account: username or email
	token   string // the response's field with the token
	expires bool   // the response declares expires_in
}

// tokenFields are the response properties a login's token may be in, in the order tried.
var tokenFields = []string{"token", "access_token", "jwt", "id_token"}

// asLogin reads op as a login: a public POST whose JSON body has username (or email) and password
// properties and whose 200 or 201 response has a token-like property.
func asLogin(op *surface.Operation) (*login, bool) {
	b := op.Body
	if op.Method != "POST" || !op.Public() || b == nil || !strings.Contains(b.ContentType, "json") {
		return nil, false
	}
	if _, ok := b.Fields["password"]; !ok {
		return nil, false
	}
	l := &login{op: op}
	for _, f := range []string{"username", "email"} {
		if _, ok := b.Fields[f]; ok && l.user == "" {
			l.user = f
		}
	}
	for _, r := range op.Responses {
		if r.Status != "200" && r.Status != "201" || l.token != "" {
			continue
		}
		for _, f := range tokenFields {
			if slices.Contains(r.Fields, f) && l.token == "" {
				l.token, l.expires = f, slices.Contains(r.Fields, "expires_in")
			}
		}
	}
	return l, l.user != "" && l.token != ""
}

// segments splits a path into its segments, each parameter written {}.
func segments(p string) []string {
	return strings.FieldsFunc(surface.NormalizePath(p), func(r rune) bool { return r == '/' })
}

// shared counts the leading segments two paths have in common.
func shared(a, b []string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// logins gives each HTTP bearer or openIdConnect scheme the login its tokens come from: the login
// whose path shares the longest prefix with the scheme's operations (and, for openIdConnect, with
// its discovery document on the API's origin). The prefix must not be the root, and must be longer
// than the one it shares with any operation of another scheme, or which scheme the login serves is
// a guess. A login serves one scheme at most.
func (st *starter) logins() map[string]*login {
	if st.loginOf != nil {
		return st.loginOf
	}
	st.loginOf = map[string]*login{}
	schemes := st.identitySchemes()
	paths := map[string][][]string{}
	for _, sc := range schemes {
		for _, op := range st.doc.Operations {
			if needs(op, sc.Name) {
				paths[sc.Name] = append(paths[sc.Name], segments(op.Path))
			}
		}
		if sc.Type == "openIdConnect" {
			if u, err := url.Parse(st.absolute(sc.OpenIDConnectURL)); err == nil {
				if o, ok := originOf(u.String()); ok && o == st.origin {
					paths[sc.Name] = append(paths[sc.Name], segments(u.Path))
				}
			}
		}
	}
	type match struct {
		scheme string
		rank   int // the scheme's place in schemes
		login  *login
		prefix int
	}
	var matches []match
	for _, op := range st.doc.Operations {
		l, ok := asLogin(op)
		if !ok {
			continue
		}
		path := segments(op.Path)
		for rank, sc := range schemes {
			if !(sc.Type == "http" && sc.HTTPScheme == "bearer") && sc.Type != "openIdConnect" {
				continue
			}
			mine := 0
			for _, p := range paths[sc.Name] {
				mine = max(mine, shared(path, p))
			}
			other := 0
			for _, o := range st.doc.Operations {
				if !o.Public() && !needs(o, sc.Name) {
					other = max(other, shared(path, segments(o.Path)))
				}
			}
			if mine > 0 && mine > other {
				matches = append(matches, match{sc.Name, rank, l, mine})
			}
		}
	}
	slices.SortStableFunc(matches, func(a, b match) int {
		if a.prefix != b.prefix {
			return b.prefix - a.prefix
		}
		return a.rank - b.rank
	})
	taken := map[*surface.Operation]bool{}
	for _, m := range matches {
		if st.loginOf[m.scheme] == nil && !taken[m.login.op] {
			st.loginOf[m.scheme], taken[m.login.op] = m.login, true
		}
	}
	return st.loginOf
}

// writes returns what destructive should allow, and the one-shot candidates for single_use (each
// with the writes it needs): a DELETE with a GET on its path and a create gives the in-flight check
// its probe; a POST acting on a created resource may be a one-shot action, which only the user can
// say.
func (st *starter) writes() (destructive []string, oneShot map[string][]string) {
	admin := st.adminOps()
	allWrites := func(op *surface.Operation) bool {
		return !slices.Contains(admin, op) && op.Method != "PUT" && op.Method != "PATCH"
	}
	gen := surface.Probes(st.doc, surface.Policy{Destructive: allWrites})
	oneShot = map[string][]string{}
	for _, g := range gen {
		p := g.Probe
		if p == nil || g.Op.Read() || len(p.Setup) == 0 {
			continue
		}
		var needs []string
		for _, step := range append(slices.Clone(p.Setup), p.Teardown...) {
			if step.Method == "GET" {
				continue
			}
			for _, op := range st.doc.Operations {
				if op.Method == step.Method && surface.NormalizePath(op.Path) == surface.NormalizePath(step.Path) && op != g.Op {
					needs = append(needs, op.ID)
				}
			}
		}
		switch {
		case g.Op.Method == "DELETE" && len(p.Verify) > 0:
			for _, id := range append(needs, g.Op.ID) {
				if !slices.Contains(destructive, id) {
					destructive = append(destructive, id)
				}
			}
		case g.Op.Method == "POST" && len(surface.PathParams(g.Op.Path)) > 0:
			oneShot[g.Op.ID] = needs
		}
	}
	return destructive, oneShot
}

// downgradeScope picks the scope the downgrade removes: one only reads need (no write needs it), and
// no read that verifies a DELETE (the verifier must keep reading); the last such in the flow's list.
func (st *starter) downgradeScope(scopes []string) string {
	written, verified := map[string]bool{}, map[string]bool{}
	read := map[string]bool{}
	for _, op := range st.doc.Operations {
		for _, req := range op.Security {
			for _, sc := range req.Scopes() {
				switch {
				case !op.Read():
					written[sc] = true
				case slices.ContainsFunc(st.doc.Operations, func(o *surface.Operation) bool {
					return o.Method == "DELETE" && surface.NormalizePath(o.Path) == surface.NormalizePath(op.Path)
				}):
					verified[sc] = true
				default:
					read[sc] = true
				}
			}
		}
	}
	pick := ""
	for _, sc := range scopes {
		if read[sc] && !written[sc] && !verified[sc] {
			pick = sc
		}
	}
	return pick
}

// yaml renders the starter config.
func (st *starter) yaml() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	title := st.doc.Title
	if title == "" {
		title = "the API"
	}
	w("# tocsin scan configuration for %s, written by `tocsin init` from %s (%s).\n", title, st.source, st.doc.Source)
	w("# Set the ${VARIABLES} in the environment (secrets stay out of this file), check the config with\n")
	w("# `tocsin validate`, then run `tocsin scan`. examples/tocsin.yaml explains every field.\n\n")
	w("version: 1\n\ntarget:\n  origins:\n")
	origins := []string{st.origin}
	addOrigin := func(u string) {
		if o, ok := originOf(st.absolute(u)); ok && !slices.Contains(origins, o) {
			origins = append(origins, o)
		}
	}
	if st.specOrigin != "" {
		addOrigin(st.specOrigin)
	}
	for _, sc := range st.identitySchemes() {
		for _, f := range sc.Flows {
			addOrigin(f.TokenURL)
		}
	}
	for _, o := range origins {
		w("    - %s\n", o)
	}

	destructive, oneShot := st.writes()
	w("\n# Probes are made from the document's operations; every check that fits some operation runs.\n")
	w("openapi:\n  source: %s\n", quote(st.source))
	if len(destructive) > 0 {
		w("  # Writes tocsin may send, only ever on resources the scan creates itself: a DELETE with a\n")
		w("  # GET on its path is raced against a revocation (toctou/inflight-revocation), on an item\n")
		w("  # the create makes and the DELETE removes again.\n")
		w("  destructive: [%s]\n", strings.Join(quoteAll(destructive), ", "))
	} else {
		w("  # destructive: [operationId, ...]  # writes tocsin may send: none found that it could undo\n")
	}
	if len(oneShot) > 0 {
		w("  # One-shot actions (redeem a coupon, claim a reward) for race/limit-overrun: tocsin never\n")
		w("  # guesses them. Uncomment those that are, and add what they need to destructive:\n")
		ids := make([]string, 0, len(oneShot))
		for id := range oneShot {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			w("  # single_use: [%s]", quote(id))
			if needs := oneShot[id]; len(needs) > 0 {
				w("   # needs in destructive: %s", strings.Join(needs, ", "))
			}
			w("\n")
		}
	}

	w("\nidentities:\n")
	schemes := st.identitySchemes()
	if len(schemes) == 0 {
		w("  user:                               # the document declares no bearer scheme: how does the API authenticate?\n")
		w("    token:\n      static: %s\n", st.env("USER_TOKEN"))
	}
	for _, sc := range schemes {
		st.identities(&b, sc, len(schemes) > 1)
	}
	return b.String()
}

// identities writes the identities a scheme gives. Each names its scheme, so that it is tried only
// on the operations that scheme secures.
func (st *starter) identities(b *strings.Builder, sc *surface.Scheme, prefix bool) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	name := func(n string) string {
		if prefix {
			return sc.Name + "-" + n
		}
		return n
	}
	head := func(id, comment string) {
		w("  %s:%s# %s\n", id, pad(id, 36), comment)
		w("    scheme: %s\n", sc.Name)
	}
	var flow *surface.Flow
	for _, grant := range []string{"password", "client_credentials"} {
		for i := range sc.Flows {
			if sc.Flows[i].Grant == grant && flow == nil {
				flow = &sc.Flows[i]
			}
		}
	}
	if flow == nil {
		id := name("user")
		kind := fmt.Sprintf("security scheme %s (%s)", sc.Name, schemeKind(sc))
		if l := st.logins()[sc.Name]; l != nil {
			head(id, fmt.Sprintf("%s, logged in through %s (%s)", kind, l.op.Endpoint(), l.op.ID))
			body := fmt.Sprintf(`{%q: "%s", "password": "%s"}`, l.user, st.env(envName(id)+"_"+envName(l.user)), st.env(envName(id)+"_PASSWORD"))
			w("    token:\n      http:\n        method: %s\n        path: %s\n", l.op.Method, l.op.Path)
			w("        headers: {Content-Type: %s}\n", plain(l.op.Body.ContentType))
			w("        body: '%s'   # the values go in as written: no \" or \\ in them\n", body)
			w("        extract: {token: %s", l.token)
			if l.expires {
				w(", expires_in: expires_in")
			}
			w("}\n")
			return
		}
		var interactive *surface.Flow
		for i := range sc.Flows {
			if interactive == nil && (sc.Flows[i].Grant == "authorization_code" || sc.Flows[i].Grant == "implicit") {
				interactive = &sc.Flows[i]
			}
		}
		if interactive == nil {
			head(id, kind)
			w("    token:\n      static: %s               # or command: [./get-token.sh] printing a fresh token, which the revocation checks need\n", st.env(envName(id)+"_TOKEN"))
			return
		}
		head(id, fmt.Sprintf("security scheme %s (OAuth2 %s flow)", sc.Name, interactive.Grant))
		w("    # tocsin cannot log in through a browser. A static token is used as is; the revocation checks\n")
		w("    # need a source of fresh tokens instead (and a revoke hook): a command printing a new access\n")
		if interactive.TokenURL != "" {
			w("    # token, e.g. one that trades a refresh token at the flow's token URL:\n")
			curl := fmt.Sprintf(`curl -sf -d grant_type=refresh_token -d client_id="$%s_CLIENT_ID" --data-urlencode refresh_token="$%s_REFRESH_TOKEN" %s | jq -r .access_token`,
				envName(sc.Name), envName(id), st.absolute(interactive.TokenURL))
			w("    #   command: [\"sh\", \"-c\", %s]\n", quote(curl))
		} else {
			w("    # token each time it runs: command: [./get-token.sh]\n")
		}
		w("    token:\n      static: %s\n", st.env(envName(id)+"_TOKEN"))
		return
	}
	client := envName(sc.Name)
	clientID, clientSecret := st.env(client+"_CLIENT_ID"), st.env(client+"_CLIENT_SECRET")
	oauth := func(id string, scopes []string) {
		w("    token:\n      oauth2:\n        grant: %s\n        token_url: %s\n", flow.Grant, st.absolute(flow.TokenURL))
		w("        client_id: %s\n        client_secret: %s\n", clientID, clientSecret)
		if flow.Grant == "password" {
			w("        username: %s\n        password: %s\n", st.env(envName(id)+"_USERNAME"), st.env(envName(id)+"_PASSWORD"))
		}
		if len(scopes) > 0 {
			w("        scopes: [%s]\n", strings.Join(quoteAll(scopes), ", "))
		}
	}
	user := name("user")
	head(user, fmt.Sprintf("security scheme %s (OAuth2 %s flow)", sc.Name, flow.Grant))
	oauth(user, flow.Scopes)
	if rev := st.revocation(); rev != nil {
		w("    revoke:                           # %s (%s) takes a form with a token: RFC 7009\n", rev.Endpoint(), rev.ID)
		w("      rfc7009:\n        url: %s\n        client_id: %s\n        client_secret: %s\n", st.absolute(rev.Path), clientID, clientSecret)
	} else {
		w("    # revoke: the document describes no revocation endpoint; the revocation checks need one:\n")
		w("    #   rfc7009: {url: https://idp.example/oauth/revoke, client_id: ..., client_secret: ...}\n")
	}
	st.downgrade(b, user, flow)
	if flow.Grant != "password" {
		return
	}
	// A second account that stays valid reads back what the in-flight check deletes.
	var readScopes []string
	for _, op := range st.doc.Operations {
		for _, req := range op.Security {
			if op.Read() && slices.ContainsFunc(req, func(ss surface.SchemeScopes) bool { return ss.Scheme == sc.Name }) {
				readScopes = append(readScopes, req.Scopes()...)
			}
		}
	}
	slices.Sort(readScopes)
	reader := name("reader")
	head(reader, "a second account that stays valid: reads back what the in-flight check deletes")
	oauth(reader, slices.Compact(readScopes))
}

// downgrade writes the downgrade and restore hooks when the document has a call that sets a
// subject's scopes.
func (st *starter) downgrade(b *strings.Builder, user string, flow *surface.Flow) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	op := st.scopeAdmin()
	removed := st.downgradeScope(flow.Scopes)
	var header, value string
	if op != nil && len(op.Security) > 0 && len(op.Security[0]) > 0 {
		if sc := st.doc.Scheme(op.Security[0][0].Scheme); sc != nil {
			switch {
			case sc.Type == "http" && sc.HTTPScheme == "bearer":
				header, value = "Authorization", "Bearer "+st.env(envName(sc.Name)+"_TOKEN")
			case sc.Type == "apiKey" && sc.In == "header":
				header, value = sc.Param, st.env(envName(sc.Name)+"_KEY")
			}
		}
	}
	if op == nil || removed == "" || header == "" {
		w("    # downgrade and restore: the document has no call that sets a subject's scopes (with a bearer or\n")
		w("    # header key credential) or no scope that only reads need; toctou/scope-downgrade-ignored needs\n")
		w("    # both hooks and downgrade.removes naming the scopes the downgrade takes away.\n")
		return
	}
	subject := st.env(envName(user) + "_USERNAME")
	if flow.Grant != "password" {
		subject = st.env(envName(user) + "_SUBJECT")
	}
	path := op.Path
	if params := surface.PathParams(path); len(params) > 0 {
		path = strings.Replace(path, "{"+params[0]+"}", subject, 1)
	}
	kept := slices.DeleteFunc(slices.Clone(flow.Scopes), func(s string) bool { return s == removed })
	body := func(scopes []string) string {
		js, _ := json.Marshal(map[string][]string{"scopes": scopes})
		return string(js)
	}
	hook := func(scopes []string) {
		w("      http:\n        method: %s\n        url: %s\n", op.Method, st.absolute(path))
		w("        headers: {%s: %s, Content-Type: application/json}\n", quote(header), quote(value))
		w("        body: %s\n", quote(body(scopes)))
	}
	w("    downgrade:                        # %s (%s) sets a subject's scopes (the subject is taken to be the username)\n", op.Endpoint(), op.ID)
	w("      removes: [%s]                # a scope only reads need: the downgrade check replays them\n", quote(removed))
	hook(kept)
	w("    restore:\n")
	hook(flow.Scopes)
}

// plain writes s unquoted when YAML reads it back as the same string, else quoted.
func plain(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/+.-_", r))
	}) {
		return s
	}
	return quote(s)
}

// pad aligns a comment after an identity's name.
func pad(id string, width int) string {
	return strings.Repeat(" ", max(1, width-len(id)))
}

func schemeKind(sc *surface.Scheme) string {
	switch {
	case sc.Type == "apiKey":
		return "apiKey in " + sc.In + " " + sc.Param
	case sc.Type == "http":
		return "HTTP " + sc.HTTPScheme
	}
	return sc.Type
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = quote(x)
	}
	return out
}
