package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// exampleEnv supplies the two secrets examples/tocsin.yaml refers to.
func exampleEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"TOCSIN_LAB_CLIENT_SECRET": "lab-client-secret",
		"TOCSIN_LAB_ADMIN_KEY":     "lab-admin-key",
	}[name]
	return v, ok
}

func noEnv(string) (string, bool) { return "", false }

func readExample(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "tocsin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestExampleParsesAndValidates(t *testing.T) {
	cfg, err := Parse("tocsin.yaml", readExample(t), exampleEnv)
	if err != nil {
		t.Fatalf("examples/tocsin.yaml: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate again: %v", err)
	}
	if cfg.Version != 1 || !slices.Equal(cfg.Target.Origins, []string{"http://127.0.0.1:8787"}) {
		t.Errorf("version %d, origins %v", cfg.Version, cfg.Target.Origins)
	}
	wantLimits := Limits{RequestBudget: 2000, Rate: 200, Timeout: 5 * time.Second, MaxWindow: time.Minute, Precision: 5 * time.Millisecond, MaxResponseBytes: 1 << 20}
	if cfg.Limits != wantLimits {
		t.Errorf("limits %+v, want %+v", cfg.Limits, wantLimits)
	}
	if !slices.Equal(cfg.IdentityOrder, []string{"alice", "bob", "newcomer", "legacy", "sso"}) {
		t.Errorf("identity order %v", cfg.IdentityOrder)
	}
	alice := cfg.Identity("alice")
	o := alice.Token.OAuth2
	if o == nil || o.Grant != "password" || o.ClientSecret != "lab-client-secret" || o.Password != "alice-password" ||
		len(o.Scopes) != 4 || o.AuthStyle != "basic" {
		t.Errorf("alice oauth2 %+v", o)
	}
	if r := alice.Revoke.RFC7009; r == nil || r.URL != "http://127.0.0.1:8787/oauth/revoke" || r.TokenTypeHint != "access_token" {
		t.Errorf("alice revoke %+v", alice.Revoke)
	}
	dg := alice.Downgrade.HTTP
	if dg == nil || dg.Method != "PUT" || dg.Headers["Authorization"] != "Bearer lab-admin-key" || !slices.Equal(dg.Expect, []int{200, 204}) {
		t.Errorf("alice downgrade %+v", dg)
	}
	if alice.Restore == nil || alice.Restore.HTTP == nil || alice.Restore.HTTP.Expect != nil {
		t.Errorf("alice restore %+v", alice.Restore)
	}
	if sso := cfg.Identity("sso"); sso.JWKSURL != "http://127.0.0.1:8787/sso/jwks.json" || len(sso.Token.HTTP) != 1 {
		t.Errorf("sso %+v", sso)
	}
	if bob := cfg.Identity("bob"); bob.Token.OAuth2.AuthStyle != "basic" || bob.Revoke != nil {
		t.Errorf("bob %+v", bob)
	}
	if cfg.Vars["greeting"] != "hello" {
		t.Errorf("vars %v", cfg.Vars)
	}
	var names []string
	for _, p := range cfg.Probes {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"read-report", "read-item", "delete-item", "redeem-coupon", "order-with-referral", "claim-bonus",
		"read-daily-report", "whoami-none", "whoami-unverified", "whoami-embedded", "legacy-whoami", "legacy-session", "sso-whoami",
		"read-note", "read-team-note", "update-note", "delete-note", "list-accounts", "moderate-note", "update-profile"}) {
		t.Errorf("probe order %v", names)
	}
	// The authz probes: anchors shared between them, and the fields the authz checks read.
	un := cfg.Probe("update-note")
	if len(un.Setup) != 1 || un.Setup[0].Extract["note_id"] != "id" || un.List == nil || un.List.Path != "/notes" || un.List.Method != "GET" ||
		len(un.Verify) != 1 || !slices.Equal(un.Verify[0].Reject, []int{404}) || !cfg.Probe("read-item").Shared {
		t.Errorf("update-note %+v", un)
	}
	if la := cfg.Probe("list-accounts"); !la.Privileged || la.Shared {
		t.Errorf("list-accounts %+v", la)
	}
	if up := cfg.Probe("update-profile"); up.As != "newcomer" || up.Assign["tier"] != `"platinum"` {
		t.Errorf("update-profile %+v", up)
	}
	if i := slices.IndexFunc(cfg.Checks, func(c *Check) bool { return c.ID == CheckBOLA }); i < 0 || cfg.Checks[i].Identity != "bob" || cfg.Checks[i].Owner != "alice" {
		t.Errorf("authz/bola: at %d of %+v", i, cfg.Checks)
	}
	del := cfg.Probe("delete-item")
	if !del.Destructive || del.Method != "DELETE" || len(del.Setup) != 1 || del.Setup[0].Extract["item_id"] != "id" ||
		len(del.Verify) != 1 || !slices.Equal(del.Verify[0].Reject, []int{404}) {
		t.Errorf("delete-item %+v", del)
	}
	if ri := cfg.Probe("read-item"); len(ri.Setup) != 1 || ri.Setup[0].Body != `{"name": "tocsin-{{greeting}}-{{seq}}"}` || ri.Setup[0].Headers["Content-Type"] != "application/json" {
		t.Errorf("read-item setup %+v", ri.Setup)
	}
	if len(cfg.Checks) < 3 || cfg.Checks[0].ID != CheckRevokedTokenAccepted || cfg.Checks[1].ID != CheckScopeDowngrade ||
		!slices.Equal(cfg.Checks[1].Probes, []string{"read-report"}) ||
		cfg.Checks[2].ID != CheckInflightRevocation || cfg.Checks[2].Verifier != "bob" {
		t.Errorf("checks %+v", cfg.Checks)
	}
}

func TestExampleWithoutEnvNamesEachVariable(t *testing.T) {
	_, err := Parse("tocsin.yaml", readExample(t), noEnv)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *Error, got %v", err)
	}
	// Three client secrets and two admin headers.
	if len(ce.Problems) != 5 {
		t.Fatalf("want 5 problems, got %d:\n%v", len(ce.Problems), err)
	}
	first := ce.Problems[0]
	if first.Line != 72 || first.Field != "identities.alice.token.oauth2.client_secret" ||
		first.Msg != "environment variable TOCSIN_LAB_CLIENT_SECRET is not set" {
		t.Errorf("first problem %+v", first)
	}
}

func TestLoad(t *testing.T) {
	t.Setenv("TOCSIN_LAB_CLIENT_SECRET", "x-secret")
	t.Setenv("TOCSIN_LAB_ADMIN_KEY", "x-admin")
	path := filepath.Join("..", "..", "examples", "tocsin.yaml")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Identity("bob").Token.OAuth2.ClientSecret != "x-secret" {
		t.Error("Load did not read the environment")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":1: version: unsupported version 2") {
		t.Errorf("Load names the file in problems: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(base), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{RequestBudget: DefaultRequestBudget, Rate: DefaultRate, Timeout: DefaultTimeout, MaxWindow: DefaultMaxWindow, Precision: DefaultPrecision, MaxResponseBytes: DefaultMaxResponseBytes}
	if cfg.Limits != want {
		t.Errorf("limits %+v, want %+v", cfg.Limits, want)
	}
	if got := cfg.Probe("read").Method; got != "GET" {
		t.Errorf("probe method default %q", got)
	}
	if got := cfg.Identity("alice").Token.OAuth2.AuthStyle; got != "basic" {
		t.Errorf("oauth2 auth_style default %q", got)
	}
	if got := cfg.Identity("alice").Revoke.RFC7009.AuthStyle; got != "basic" {
		t.Errorf("rfc7009 auth_style default %q", got)
	}
}

func TestExpand(t *testing.T) {
	env := func(name string) (string, bool) {
		v, ok := map[string]string{"A": "alpha", "B_2": "beta", "EMPTY": ""}[name]
		return v, ok
	}
	for _, tc := range []struct {
		in, want, problem string
	}{
		{"plain", "plain", ""},
		{"${A}", "alpha", ""},
		{"x-${A}-${B_2}-y", "x-alpha-beta-y", ""},
		{"${EMPTY}", "", "environment variable EMPTY is set but empty"},
		{"$${A}", "${A}", ""},
		{"$$${A}", "$${A}", ""}, // "$", then the escape "$${"
		{"cost: $5 {{token}}", "cost: $5 {{token}}", ""},
		{"${MISSING}", "", "environment variable MISSING is not set"},
		{"${A", "${A", "unterminated ${"},
		{"${}", "", `"" is not an environment variable name`},
		{"${1X}", "", `"1X" is not an environment variable name`},
	} {
		d := newDecoder("t.yaml", env)
		got := d.expand(tc.in, "f", 3)
		if tc.problem == "" {
			if got != tc.want || len(d.problems.list) != 0 {
				t.Errorf("expand(%q) = %q, problems %v; want %q", tc.in, got, d.problems.list, tc.want)
			}
			continue
		}
		if len(d.problems.list) != 1 || d.problems.list[0].Msg != tc.problem || d.problems.list[0].Line != 3 {
			t.Errorf("expand(%q): problems %+v, want %q", tc.in, d.problems.list, tc.problem)
		}
	}
}

func TestScalarsKeepTheirText(t *testing.T) {
	y := strings.Replace(base, "client_secret: s3cret", "client_secret: 0123", 1)
	y = strings.Replace(y, "static: bob-token", "static: true", 1)
	cfg, err := Parse("t.yaml", []byte(y), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Identity("alice").Token.OAuth2.ClientSecret; got != "0123" {
		t.Errorf("client_secret %q, want 0123 as written", got)
	}
	if got := cfg.Identity("bob").Token.Static; got != "true" {
		t.Errorf("static %q", got)
	}
}

func TestEnvInNumbersAndDurations(t *testing.T) {
	env := func(name string) (string, bool) {
		v, ok := map[string]string{"BUDGET": "50", "RATE": "2.5", "TIMEOUT": "750ms"}[name]
		return v, ok
	}
	y := base + "limits:\n  request_budget: ${BUDGET}\n  rate: ${RATE}\n  timeout: ${TIMEOUT}\n  max_window: 1m30s\n  max_response_bytes: 4096\n"
	cfg, err := Parse("t.yaml", []byte(y), env)
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{RequestBudget: 50, Rate: 2.5, Timeout: 750 * time.Millisecond, MaxWindow: 90 * time.Second, Precision: DefaultPrecision, MaxResponseBytes: 4096}
	if cfg.Limits != want {
		t.Errorf("limits %+v, want %+v", cfg.Limits, want)
	}
}

func TestAnchorsAndAliases(t *testing.T) {
	y := `version: 1
target:
  origins: [https://api.example.com]
identities:
  alice:
    token:
      oauth2: &idp
        grant: client_credentials
        token_url: https://api.example.com/oauth/token
        client_id: scanner
        client_secret: s3cret
    revoke:
      command: ["./revoke.sh", "{{token}}"]
  carol:
    token:
      oauth2: *idp
probes:
  read: {path: /items}
checks:
  toctou/revoked-token-accepted: {identity: alice, verifier: carol, probes: [read]}
`
	cfg, err := Parse("t.yaml", []byte(y), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Identity("carol").Token.OAuth2; got == nil || got.ClientSecret != "s3cret" {
		t.Errorf("carol's aliased oauth2: %+v", got)
	}
	if got := cfg.Checks[0]; got.Verifier != "carol" {
		t.Errorf("flow-style check %+v", got)
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{Problems: []Problem{
		{File: "tocsin.yaml", Line: 42, Field: "identities.alice.revoke", Msg: "missing url", Hint: "the RFC 7009 revocation endpoint, e.g. https://idp.example/oauth/revoke"},
		{File: "tocsin.yaml", Field: "checks", Msg: "no checks"},
		{Msg: "bare"},
	}}
	want := "tocsin.yaml:42: identities.alice.revoke: missing url (hint: the RFC 7009 revocation endpoint, e.g. https://idp.example/oauth/revoke)\n" +
		"tocsin.yaml: checks: no checks\n" +
		"bare"
	if got := e.Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestValidateReportsEveryProblemInLineOrder(t *testing.T) {
	y := strings.Replace(base, "version: 1", "version: 3", 1)
	y = strings.Replace(y, "path: /items", "path: items", 1)
	y = strings.Replace(y, "identity: alice", "identity: alicia", 1)
	_, err := Parse("t.yaml", []byte(y), noEnv)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *Error, got %v", err)
	}
	var fields []string
	for i, p := range ce.Problems {
		fields = append(fields, p.Field)
		if i > 0 && p.Line < ce.Problems[i-1].Line {
			t.Errorf("problems out of line order: %v", err)
		}
	}
	want := []string{"version", "probes.read.path", "checks.toctou/revoked-token-accepted.identity"}
	if !slices.Equal(fields, want) {
		t.Errorf("fields %v, want %v\n%v", fields, want, err)
	}
	if n := strings.Count(err.Error(), "\n"); n != 2 {
		t.Errorf("want one problem per line:\n%v", err)
	}
}

func TestValidateConfigBuiltInCode(t *testing.T) {
	cfg := &Config{
		Version: 1,
		Target:  Target{Origins: []string{"https://api.example.com"}},
		Identities: map[string]*Identity{
			"alice": {Name: "alice", Token: TokenSource{Command: []string{"./token.sh"}}, Revoke: &Hook{Command: []string{"./revoke.sh", "{{token}}"}}},
		},
		Probes: []*Probe{{Name: "read", Path: "/items"}},
		Checks: []*Check{{ID: CheckRevokedTokenAccepted, Identity: "alice", Probes: []string{"read"}}},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := cfg.IdentityNames(); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("IdentityNames %v", got)
	}
	cfg.Probes[0].Setup = []*Probe{{Name: "s", Method: "POST", Path: "/items", Setup: []*Probe{{Name: "ss", Method: "GET", Path: "/x"}}}}
	err := cfg.Validate()
	if err == nil || err.Error() != "probes.read.setup.setup: a setup cannot have its own setup (hint: steps are plain requests; make it a step of the top-level probe's setup)" {
		t.Errorf("got %v", err)
	}
}

// An origin's query, fragment or user info may carry a key; no message repeats them (issue 12:
// `origin "http://127.0.0.1:18799?key=QueryKeyS3cret" has a query or fragment`).
func TestOriginMessagesHideSecrets(t *testing.T) {
	for _, origin := range []string{
		"http://127.0.0.1:18799?key=QueryKeyS3cret",
		"http://127.0.0.1:18799#token=S3cret",
		"http://127.0.0.1:18799/api?key=S3cret",
		"ftp://127.0.0.1?key=S3cret",
		"http://alice:S3cret@127.0.0.1",
		"http://[::1?key=S3cret",
		"http://?key=S3cret",
	} {
		y := strings.Replace(base, "  origins: [https://api.example.com]", "  origins: [\""+origin+"\"]", 1)
		_, err := Parse("t.yaml", []byte(y), noEnv)
		if err == nil {
			t.Errorf("%s: no error", origin)
			continue
		}
		if strings.Contains(err.Error(), "S3cret") {
			t.Errorf("%s: the message repeats the secret:\n%v", origin, err)
		}
	}
}

// Reports point at a probe's key in the file (code scanning shows the finding on that line).
func TestKeySpan(t *testing.T) {
	cfg, err := Parse("tocsin.yaml", readExample(t), exampleEnv)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(readExample(t)), "\n")
	got, ok := cfg.Key("probes.read-item")
	if !ok || got.Line == 0 || got.Column != 3 || got.EndColumn != 3+len("read-item") ||
		strings.TrimSpace(lines[got.Line-1]) != "read-item:" {
		t.Errorf("probes.read-item at %+v (found %v), want column 3 to 12 of the line that names it", got, ok)
	}
	cfg, err = Parse("t.yaml", []byte("version: 1\ntarget: {origins: [\"http://127.0.0.1:9\"]}\nprobes:\n  \"quoted probe\": {path: /y}\n"), nil)
	if cfg == nil {
		t.Fatal(err)
	}
	if got, ok := cfg.Key(`probes.quoted probe`); !ok || got.EndColumn-got.Column != len(`"quoted probe"`) {
		t.Errorf("quoted key at %+v (found %v), want its quotes included", got, ok)
	}
	if _, ok := cfg.Key("probes.nope"); ok {
		t.Error("a probe not in the file has a position")
	}
}

// Every value from the environment is a secret of the run, but those of fields that shape the scan
// and those an origin holds: the port of an origin, a method.
func TestEnvSecrets(t *testing.T) {
	env := map[string]string{"PORT": "18080", "KEY": "pk-QUERY-SECRET", "ADMIN": "ak1", "M": "POST", "TIMEOUT": "2s",
		"PW": "pw1", "TENANT": "acme", "SEL": "data.id", "WHO": "alice"}
	y := `version: 1
target:
  origins: ["http://127.0.0.1:${PORT}"]
limits:
  timeout: ${TIMEOUT}
identities:
  alice:
    token:
      http:
        - method: ${M}
          path: /login
          body: '{"password":"${PW}"}'
          extract: {token: token}
    revoke:
      http:
        method: POST
        url: http://127.0.0.1:${PORT}/revoke
        headers: {X-Admin: "${ADMIN}"}
vars:
  tenant: ${TENANT}
probes:
  summary:
    path: /reports/summary?api_key=${KEY}
    setup:
      method: POST
      path: /things
      extract: {id: "${SEL}"}
checks:
  toctou/revoked-token-accepted:
    identity: ${WHO}
    probes: [summary]
`
	cfg, err := Parse("t.yaml", []byte(y), func(n string) (string, bool) { v, ok := env[n]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.EnvSecrets()
	slices.Sort(got)
	if want := []string{"acme", "ak1", "pk-QUERY-SECRET", "pw1"}; !slices.Equal(got, want) {
		t.Errorf("EnvSecrets() = %q, want %q", got, want)
	}
	if len(cfg.FromEnv) != 10 {
		t.Errorf("FromEnv has %d values, want 10: %+v", len(cfg.FromEnv), cfg.FromEnv)
	}
}
