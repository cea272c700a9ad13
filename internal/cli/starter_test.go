package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/lab"
	"github.com/tocsin/tocsin/internal/surface"
)

// startFrom writes the starter config for a document and parses it back with every ${VAR} set.
func startFrom(t *testing.T, doc []byte) (string, *config.Config) {
	t.Helper()
	d, err := surface.ParseOpenAPI(doc)
	if err != nil {
		t.Fatal(err)
	}
	st := starter{doc: d, origin: "http://127.0.0.1:8787", source: "openapi.json"}
	text := st.yaml()
	cfg, err := config.Parse("tocsin.yaml", []byte(text), func(name string) (string, bool) { return "v-" + name, true })
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return text, cfg
}

// The lab's document: the main scheme's identities first, every identity naming its scheme, and
// the legacy and sso schemes logging in through their own logins (not the root's /login).
func TestStarterLab(t *testing.T) {
	text, cfg := startFrom(t, lab.OpenAPIFor("http://127.0.0.1:8787", "vulnerable"))
	want := []string{"oauth2-user", "oauth2-reader", "legacy-user", "sso-user"}
	if !slices.Equal(cfg.IdentityOrder, want) {
		t.Fatalf("identities %v, want %v\n%s", cfg.IdentityOrder, want, text)
	}
	for name, scheme := range map[string]string{"oauth2-user": "oauth2", "oauth2-reader": "oauth2", "legacy-user": "legacy", "sso-user": "sso"} {
		if got := cfg.Identities[name].Scheme; got != scheme {
			t.Errorf("%s: scheme %q, want %q", name, got, scheme)
		}
	}
	for name, path := range map[string]string{"legacy-user": "/legacy/login", "sso-user": "/sso/login"} {
		steps := cfg.Identities[name].Token.HTTP
		if len(steps) != 1 {
			t.Fatalf("%s: token source %+v, want one login step\n%s", name, cfg.Identities[name].Token, text)
		}
		s := steps[0]
		if s.Method != "POST" || !strings.HasSuffix(s.Path, path) || s.Extract["token"] != "token" || s.Extract["expires_in"] != "expires_in" {
			t.Errorf("%s: login %s %s extract %v, want POST %s with token and expires_in", name, s.Method, s.Path, s.Extract, path)
		}
		env := envName(name)
		if wantBody := `{"username": "v-` + env + `_USERNAME", "password": "v-` + env + `_PASSWORD"}`; s.Body != wantBody {
			t.Errorf("%s: body %s, want %s", name, s.Body, wantBody)
		}
	}
}

// The plan comments name, for a check that picks an identity per operation, each operation's.
func TestInitPlanPerOperation(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "lab.json")
	doc := lab.OpenAPIFor("http://127.0.0.1:8787", "vulnerable")
	if err := os.WriteFile(spec, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := surface.ParseOpenAPI(doc)
	if err != nil {
		t.Fatal(err)
	}
	st := starter{doc: d, origin: "http://127.0.0.1:8787", source: "lab.json"}
	plan, err := initPlan(context.Background(), st.yaml(), filepath.Join(dir, "tocsin.yaml"), spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"#   jwt/none-algorithm, each operation as an identity its security scheme takes:\n",
		"#     GET /legacy/whoami (legacyWhoami), as legacy-user: a GET that needs a token: a forged token must be refused there\n",
		"#     GET /sso/whoami (ssoWhoami), as sso-user: ",
		"#     GET /jwt/none/whoami (whoamiNone), as oauth2-user (oauth2-reader the other subject): ",
		"#   toctou/inflight-revocation, as oauth2-user (read back as oauth2-reader):\n",
	} {
		if !strings.Contains(plan, line) {
			t.Errorf("the plan lacks %q:\n%s", line, plan)
		}
	}
	if m := regexp.MustCompile(`(?m)^#   (auth/missing|jwt/[a-z-]+), as .*$`).FindString(plan); m != "" {
		t.Errorf("a per-operation check names one identity: %s", m)
	}
}

const browserDoc = `openapi: 3.0.3
info: {title: t, version: "1"}
servers: [{url: "http://127.0.0.1:8787"}]
components:
  securitySchemes:
    web:
      type: oauth2
      flows:
        authorizationCode:
          authorizationUrl: https://idp.example/authorize
          tokenUrl: https://idp.example/token
          scopes: {read: read}
    partner: {type: http, scheme: bearer}
    mobile: {type: http, scheme: bearer}
  schemas:
    Login:
      type: object
      properties: {email: {type: string}, password: {type: string}}
    Token:
      type: object
      properties: {access_token: {type: string}}
paths:
  /api/items:
    get: {operationId: listItems, security: [{web: [read]}], responses: {"200": {description: ok}}}
  /api/orders:
    get: {operationId: listOrders, security: [{web: [read]}], responses: {"200": {description: ok}}}
  /api/mobile/feed:
    get: {operationId: feed, security: [{mobile: []}], responses: {"200": {description: ok}}}
  /api/login:
    post:
      operationId: apiLogin
      security: []
      requestBody: {content: {application/json: {schema: {$ref: "#/components/schemas/Login"}}}}
      responses: {"200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Token"}}}}}
  /partner/orders:
    get: {operationId: partnerOrders, security: [{partner: []}], responses: {"200": {description: ok}}}
  /partner/session:
    post:
      operationId: partnerLogin
      security: []
      requestBody: {content: {application/json: {schema: {$ref: "#/components/schemas/Login"}}}}
      responses: {"201": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Token"}}}}}
  /login:
    post:
      operationId: login
      security: []
      requestBody: {content: {application/json: {schema: {$ref: "#/components/schemas/Login"}}}}
      responses: {"200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Token"}}}}}
`

// A login serves the scheme whose operations share its path prefix, only when no other scheme's
// operations share as much (/api/login is as near the web scheme's /api/items as the mobile
// scheme's /api/mobile/feed), never from the root; an authorization-code flow stays static, with
// the command that would refresh it.
func TestStarterLoginsAndBrowserFlow(t *testing.T) {
	text, cfg := startFrom(t, []byte(browserDoc))
	if want := []string{"web-user", "mobile-user", "partner-user"}; !slices.Equal(cfg.IdentityOrder, want) {
		t.Fatalf("identities %v, want %v\n%s", cfg.IdentityOrder, want, text)
	}
	partner := cfg.Identities["partner-user"].Token.HTTP
	if len(partner) != 1 || !strings.HasSuffix(partner[0].Path, "/partner/session") || partner[0].Extract["token"] != "access_token" ||
		partner[0].Body != `{"email": "v-PARTNER_USER_EMAIL", "password": "v-PARTNER_USER_PASSWORD"}` {
		t.Errorf("partner-user: %+v, want the login at /partner/session\n%s", cfg.Identities["partner-user"].Token, text)
	}
	if _, ok := partner[0].Extract["expires_in"]; ok {
		t.Error("partner-user: expires_in extracted, which the response does not declare")
	}
	for _, name := range []string{"web-user", "mobile-user"} {
		if cfg.Identities[name].Token.Static == "" {
			t.Errorf("%s: token %+v, want static", name, cfg.Identities[name].Token)
		}
	}
	if !strings.Contains(text, "cannot log in through a browser") || !strings.Contains(text, "https://idp.example/token") {
		t.Errorf("the authorization-code identity does not say why it is static, or where to refresh:\n%s", text)
	}
	// The command shown parses as the token source in static's place.
	cmd := regexp.MustCompile(`(?m)^    #   (command: .*)$`).FindStringSubmatch(text)
	if cmd == nil {
		t.Fatalf("no command shown:\n%s", text)
	}
	swapped := strings.Replace(text, "      static: ${WEB_USER_TOKEN}", "      "+cmd[1], 1)
	c, err := config.Parse("tocsin.yaml", []byte(swapped), func(name string) (string, bool) { return "v-" + name, true })
	if err != nil {
		t.Fatalf("the command shown does not parse: %v", err)
	}
	argv := c.Identities["web-user"].Token.Command
	if len(argv) != 3 || argv[0] != "sh" || !strings.Contains(argv[2], `refresh_token="$WEB_USER_REFRESH_TOKEN"`) {
		t.Errorf("command %q", argv)
	}
}
