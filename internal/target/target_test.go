package target

import (
	"context"
	"encoding/base64"
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
	"time"

	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/redact"
)

func exampleConfig(t *testing.T) *config.Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "tocsin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOCSIN_LAB_CLIENT_SECRET": "lab-client-secret", "TOCSIN_LAB_ADMIN_KEY": "lab-admin-key"}
	cfg, err := config.Parse("tocsin.yaml", data, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestBuildExample(t *testing.T) {
	r := &redact.Redactor{}
	tg, err := Build(context.Background(), exampleConfig(t), r)
	if err != nil {
		t.Fatal(err)
	}
	if tg.Client == nil || tg.Redactor != r || tg.MaxWindow != time.Minute || !slices.Equal(tg.Origins, []string{"http://127.0.0.1:8787"}) {
		t.Errorf("target %+v", tg)
	}
	alice := tg.Identities["alice"]
	if alice == nil || alice.Name != "alice" || alice.Source == nil || !alice.Source.Fresh() ||
		alice.Revoke == nil || alice.Revoke.Kind() != "rfc7009" || alice.Downgrade == nil || alice.Restore == nil {
		t.Fatalf("alice %+v", alice)
	}
	if sso := tg.Identities["sso"]; sso == nil || sso.JWKSURL != "http://127.0.0.1:8787/sso/jwks.json" {
		t.Errorf("sso %+v", sso)
	}
	if bob := tg.Identities["bob"]; bob == nil || bob.Revoke != nil || bob.Downgrade != nil {
		t.Errorf("bob %+v", bob)
	}
	read := tg.Probes["read-report"]
	if read.URL != "http://127.0.0.1:8787/reports/summary" || read.Endpoint() != "GET /reports/summary" ||
		!slices.Equal(read.Accept, []int{200}) || !slices.Equal(read.Reject, []int{401, 403}) {
		t.Errorf("read-report %+v", read)
	}
	item := tg.Probes["read-item"]
	if item.URL != "http://127.0.0.1:8787/items/{{item_id}}" || len(item.Accept) != 100 || item.Accept[0] != 200 ||
		!slices.Equal(item.Reject, []int{401, 403}) {
		t.Errorf("read-item %+v", item)
	}
	if len(item.Setup) != 1 || item.Setup[0].Method != "POST" || item.Setup[0].URL != "http://127.0.0.1:8787/items" || item.Setup[0].Extract["item_id"] != "id" ||
		!slices.Equal(item.Setup[0].Accept, []int{201}) {
		t.Errorf("read-item setup %+v", item.Setup)
	}
	del := tg.Probes["delete-item"]
	if !del.Destructive || len(del.Verify) != 1 || !slices.Equal(del.Verify[0].Reject, []int{404}) || len(del.Setup) != 1 {
		t.Errorf("delete-item %+v", del)
	}
	if !slices.Equal(tg.CheckOrder, []string{config.CheckRevokedTokenAccepted, config.CheckScopeDowngrade, config.CheckInflightRevocation, config.CheckLimitOverrun,
		config.CheckAuthMissing, config.CheckJWTNone, config.CheckJWTSignature, config.CheckJWTEmbeddedKey, config.CheckJWTWeakSecret, config.CheckJWTConfusion, config.CheckJWTExpired,
		config.CheckBOLA, config.CheckBFLA, config.CheckMassAssignment}) {
		t.Errorf("check order %v", tg.CheckOrder)
	}
	if p := tg.Checks[config.CheckRevokedTokenAccepted]; p.Identity != "alice" || !slices.Equal(p.Probes, []string{"read-item"}) {
		t.Errorf("plan %+v", p)
	}
	if p := tg.Checks[config.CheckInflightRevocation]; p.Identity != "alice" || p.Verifier != "bob" || !slices.Equal(p.Probes, []string{"delete-item"}) {
		t.Errorf("in-flight plan %+v", p)
	}
	if p := tg.Checks[config.CheckBFLA]; p.Identity != "bob" || p.Owner != "alice" || !tg.Probes["list-accounts"].Privileged {
		t.Errorf("bfla plan %+v", p)
	}
	if l := tg.Probes["read-note"].List; l == nil || l.URL != "http://127.0.0.1:8787/notes" || !slices.Equal(l.Reject, []int{401, 403}) {
		t.Errorf("read-note list %+v", l)
	}
	if tg.Vars["greeting"] != "hello" {
		t.Errorf("vars %v", tg.Vars)
	}
}

func TestBuildRegistersSecrets(t *testing.T) {
	r := &redact.Redactor{}
	if _, err := Build(context.Background(), exampleConfig(t), r); err != nil {
		t.Fatal(err)
	}
	basic := base64.StdEncoding.EncodeToString([]byte("tocsin-scanner:lab-client-secret"))
	for _, secret := range []string{"lab-client-secret", "alice-password", "bob-password", "Bearer lab-admin-key", "lab-admin-key", basic} {
		if got := r.String("x " + secret + " y"); strings.Contains(got, secret) {
			t.Errorf("%q not redacted: %q", secret, got)
		}
	}
	if got := r.String("alice tocsin-scanner"); got != "alice tocsin-scanner" {
		t.Errorf("non-secrets redacted: %q", got)
	}
}

func TestBuildStaticAndCommand(t *testing.T) {
	cfg := &config.Config{
		Version: 1,
		Target:  config.Target{Origins: []string{"https://api.example.com"}},
		Identities: map[string]*config.Identity{
			"alice": {Name: "alice", Token: config.TokenSource{Command: []string{"./token.sh", "{{identity}}"}},
				Revoke: &config.Hook{HTTP: &config.HTTPHook{Method: "POST", URL: "https://api.example.com/logout",
					Headers: map[string]string{"Authorization": "Bearer {{token}}", "X-Api-Key": "admin-api-key"}}}},
			"bob": {Name: "bob", Token: config.TokenSource{Static: "bob-static-token"}},
		},
		IdentityOrder: []string{"alice", "bob"},
		Probes:        []*config.Probe{{Name: "abs", Path: "https://api.example.com/v2/items"}},
		Checks:        []*config.Check{{ID: config.CheckRevokedTokenAccepted, Identity: "alice", Verifier: "bob", Probes: []string{"abs"}}},
	}
	cfg.ApplyDefaults()
	r := &redact.Redactor{}
	tg, err := Build(context.Background(), cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	if k := tg.Identities["bob"].Source.Kind(); k != "static" {
		t.Errorf("bob source %q", k)
	}
	if k := tg.Identities["alice"].Revoke.Kind(); k != "http" {
		t.Errorf("alice revoke %q", k)
	}
	if got := tg.Probes["abs"].URL; got != "https://api.example.com/v2/items" {
		t.Errorf("absolute probe URL %q", got)
	}
	if p := tg.Checks[config.CheckRevokedTokenAccepted]; p.Verifier != "bob" {
		t.Errorf("plan %+v", p)
	}
	for _, secret := range []string{"bob-static-token", "admin-api-key"} {
		if strings.Contains(r.String(secret), secret) {
			t.Errorf("%q not redacted", secret)
		}
	}
	if got := r.String("Bearer {{token}}"); got != "Bearer {{token}}" {
		t.Errorf("template registered as a secret: %q", got)
	}
}

func TestBuildRejectsInvalidConfig(t *testing.T) {
	cfg := exampleConfig(t)
	cfg.Identities["alice"].Revoke = nil
	cfg.Limits.Rate = 0
	r := &redact.Redactor{}
	_, err := Build(context.Background(), cfg, r)
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *config.Error, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"tocsin.yaml:35: limits.rate: must be positive",
		`checks.toctou/revoked-token-accepted.identity: identity "alice" has no revoke`,
		"hint: add revoke (rfc7009, http or command) to identities.alice",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	// Secrets are registered before anything can fail.
	if strings.Contains(r.String("lab-client-secret"), "lab-client-secret") {
		t.Error("secret not registered before validation failed")
	}
}

func TestBuildNilConfigAndCancelledContext(t *testing.T) {
	if _, err := Build(context.Background(), nil, nil); err == nil {
		t.Error("nil config accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Build(ctx, exampleConfig(t), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestResolveURL(t *testing.T) {
	for _, tc := range []struct{ origin, path, want string }{
		{"https://a.example", "/x/{{id}}", "https://a.example/x/{{id}}"},
		{"https://a.example/", "/x", "https://a.example/x"},
		{"https://a.example", "https://a.example/y", "https://a.example/y"},
	} {
		if got := resolveURL(tc.origin, tc.path); got != tc.want {
			t.Errorf("resolveURL(%q, %q) = %q, want %q", tc.origin, tc.path, got, tc.want)
		}
	}
}

// Values from the environment and the credentials written in request templates are secrets from the
// start, whatever their length; the client teaches the same redactor what the traffic carries.
func TestBuildRegistersEnvAndTemplates(t *testing.T) {
	env := map[string]string{"PORT": "18799", "PROBE_API_KEY": "pk-QUERY-SECRET-9d8e7f", "ADMIN": "adm"}
	y := `version: 1
target: {origins: ["http://127.0.0.1:${PORT}"]}
identities:
  alice:
    token:
      http:
        - {method: POST, path: /login, body: '{"username":"alice","password":"pw1"}', extract: {token: token}}
    revoke:
      http: {method: POST, url: "http://127.0.0.1:${PORT}/admin/revoke", headers: {X-Admin: "${ADMIN}"}, body: '{"admin_key":"hook-body-key","token":"{{token}}"}'}
probes:
  summary: {path: "/reports/summary?api_key=${PROBE_API_KEY}"}
checks:
  toctou/revoked-token-accepted: {identity: alice, probes: [summary]}
`
	cfg, err := config.Parse("t.yaml", []byte(y), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	r := &redact.Redactor{}
	tg, err := Build(context.Background(), cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Secrets(), []string{"adm", "hook-body-key", "pk-QUERY-SECRET-9d8e7f", "pw1"}; !slices.Equal(got, want) {
		t.Errorf("registered %q, want %q", got, want)
	}
	if tg.Client.Redactor() != r {
		t.Error("the client does not learn into the scan's redactor")
	}
}

// An http hook knows the config's vars beside the token's, as validation says: a downgrade and its
// restore name the subject they act on with one, and a restore has no token to name it by.
func TestHTTPHooksKnowVars(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(body))
		mu.Unlock()
	}))
	defer srv.Close()
	y := `version: 1
target: {origins: ["` + srv.URL + `"]}
vars: {subject: alice-42}
identities:
  alice:
    token: {command: [./token.sh]}
    downgrade:
      http: {method: PUT, url: "` + srv.URL + `/subjects/{{subject}}/scopes", body: '{"drop": "{{token.id}}"}'}
    restore:
      http: {method: PUT, url: "` + srv.URL + `/subjects/{{subject}}/scopes", body: '{"subject": "{{ subject }}"}'}
probes:
  read: {path: /items}
checks:
  toctou/scope-downgrade-ignored: {identity: alice, probes: [read]}
`
	cfg, err := config.Parse("t.yaml", []byte(y), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tg, err := Build(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := tg.Identities["alice"]
	ctx := context.Background()
	if err := alice.Downgrade.Run(ctx, identity.Token{Value: "tok", Fields: map[string]string{"id": "t-7"}}); err != nil {
		t.Fatalf("downgrade: %v", err)
	}
	// A restore runs with the zero Token (internal/check/restore.go).
	if err := alice.Restore.Run(ctx, identity.Token{}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	want := []string{
		`PUT /subjects/alice-42/scopes {"drop": "t-7"}`,
		`PUT /subjects/alice-42/scopes {"subject": "alice-42"}`,
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("requests:\n%q\nwant\n%q", got, want)
	}
}

// A config's commands run in its folder: `[sh, get-token.sh]` and a hook that reads a relative file
// work wherever tocsin was started (the test runs in this package's folder, not the config's).
func TestCommandsRunInTheConfigsFolder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("get-token.sh", "cat token.txt\n")
	write("token.txt", "token-from-the-config-folder\n")
	write("revoke.sh", "test \"$(cat token.txt)\" = \"$TOCSIN_TOKEN\" && touch revoked\n")
	write("tocsin.yaml", `version: 1
target:
  origins: [https://api.example.com]
identities:
  alice:
    token:
      command: [sh, get-token.sh]
    revoke:
      command: [sh, revoke.sh]
probes:
  items:
    path: /items
checks:
  toctou/revoked-token-accepted:
    identity: alice
    probes: [items]
`)
	cfg, err := config.Load(filepath.Join(dir, "tocsin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", cfg.Dir(), dir)
	}
	tg, err := Build(context.Background(), cfg, &redact.Redactor{})
	if err != nil {
		t.Fatal(err)
	}
	alice := tg.Identities["alice"]
	tok, err := alice.Source.Token(context.Background())
	if err != nil {
		t.Fatalf("token command did not find its script or file: %v", err)
	}
	if tok.Value != "token-from-the-config-folder" {
		t.Fatalf("token %q", tok.Value)
	}
	if err := alice.Revoke.Run(context.Background(), tok); err != nil {
		t.Fatalf("revoke hook: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "revoked")); err != nil {
		t.Errorf("the hook did not run in the config's folder: %v", err)
	}
}
