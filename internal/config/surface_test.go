package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The shortest config: origins, a spec and identities. No probes and no checks is valid then.
const surfaceOnly = `version: 1
target:
  origins: [https://api.example.com]
openapi: specs/api.yaml
identities:
  alice:
    token: {static: t}
`

func TestSurfaceFields(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(surfaceOnly), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OpenAPI == nil || cfg.OpenAPI.Source != "specs/api.yaml" || cfg.HAR != nil || !cfg.HasSurface() || len(cfg.Checks) != 0 {
		t.Fatalf("openapi %+v, har %+v, checks %v", cfg.OpenAPI, cfg.HAR, cfg.Checks)
	}
	long := strings.Replace(surfaceOnly, "openapi: specs/api.yaml", `openapi:
  source: https://api.example.com/openapi.json
  destructive: [deleteItem, "POST /items"]
  single_use: [redeem]
har: {source: rec.har}`, 1)
	long = strings.Replace(long, "token: {static: t}", "token: {command: [./token.sh]}", 1) + `    revoke: {command: [./revoke.sh]}
    downgrade:
      removes: [reports:read]
      command: [./down.sh]
    restore: {command: [./up.sh]}
checks:
  toctou/inflight-revocation:
    identity: alice
`
	cfg, err = Parse("t.yaml", []byte(long), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.OpenAPI
	if !slices.Equal(o.Destructive, []string{"deleteItem", "POST /items"}) || !slices.Equal(o.SingleUse, []string{"redeem"}) || cfg.HAR.Source != "rec.har" {
		t.Errorf("openapi %+v, har %+v", o, cfg.HAR)
	}
	if got := cfg.Identities["alice"].Downgrade.Removes; !slices.Equal(got, []string{"reports:read"}) {
		t.Errorf("removes %v", got)
	}
	if c := cfg.Checks[0]; len(c.Probes) != 0 || c.Verifier != "" {
		t.Errorf("a check with a surface needs neither probes nor a verifier: %+v", c)
	}
}

func TestSurfaceProblems(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"off origin", strings.Replace(surfaceOnly, "specs/api.yaml", "https://elsewhere.example/openapi.json", 1), "origin https://elsewhere.example is not allowed"},
		{"har by URL", strings.Replace(surfaceOnly, "openapi: specs/api.yaml", "har: https://api.example.com/x.har", 1), "a HAR file is read from a file"},
		{"no source", strings.Replace(surfaceOnly, "openapi: specs/api.yaml", "openapi: {destructive: [x]}", 1), "openapi: missing source"},
		{"unknown field", strings.Replace(surfaceOnly, "openapi: specs/api.yaml", "openapi: {source: a.yaml, destructiv: [x]}", 1), `did you mean "destructive"`},
		{"empty operation", strings.Replace(surfaceOnly, "openapi: specs/api.yaml", "openapi: {source: a.yaml, single_use: ['']}", 1), "openapi.single_use[0]: empty operation"},
		{"a list", strings.Replace(surfaceOnly, "openapi: specs/api.yaml", "openapi: [a.yaml]", 1), "must be a file or URL, or a mapping"},
		{"removes on restore", surfaceOnly + "    restore: {command: [./up.sh], removes: [x]}\n", `unknown field "removes"`},
		{"no checks without a surface", strings.Replace(surfaceOnly, "openapi: specs/api.yaml\n", "", 1), "checks: no checks"},
		// Without a surface, an authz check listed without probes has nothing to pick from.
		{"authz without probes or surface", strings.Replace(strings.Replace(surfaceOnly, "openapi: specs/api.yaml\n", "", 1), "    token: {static: t}\n", "    token: {static: t}\n  bob:\n    token: {static: u}\n", 1) +
			"checks:\n  authz/bola: {identity: bob, owner: alice}\n", "checks.authz/bola: no probes (hint: list the probes the check sends"},
	} {
		_, err := Parse("t.yaml", []byte(tc.yaml), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// A spec file named relative to the config resolves from the config's folder, as commands do.
func TestSurfaceSourceResolvesFromTheConfigFolder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tocsin.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(surfaceOnly, "specs/api.yaml", "{source: specs/api.yaml}\nhar: /abs/rec.har", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.OpenAPI.Source, filepath.Join(dir, "specs", "api.yaml"); got != want {
		t.Errorf("openapi source %q, want %q", got, want)
	}
	if cfg.HAR.Source != "/abs/rec.har" {
		t.Errorf("an absolute path changed: %q", cfg.HAR.Source)
	}
}

func TestValidateProbe(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(surfaceOnly), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	ok := &Probe{Name: "getItem", Method: "GET", Path: "/items/{{id}}", Setup: []*Probe{{Method: "GET", Path: "/items", Extract: map[string]string{"id": "0.id"}}}}
	if err := cfg.ValidateProbe(ok); err != nil {
		t.Errorf("a sound probe: %v", err)
	}
	bad := &Probe{Name: "getItem", Method: "GET", Path: "/items/{{id}}"}
	if err := cfg.ValidateProbe(bad); err == nil || !strings.Contains(err.Error(), "id") {
		t.Errorf("a probe with an unknown variable: %v", err)
	}
}

// With a surface, an authz check listed without probes picks its operations from it, as every
// other check does.
func TestAuthzFromSurface(t *testing.T) {
	y := strings.Replace(surfaceOnly, "    token: {static: t}\n", "    token: {static: t}\n  bob:\n    token: {static: u}\n", 1) +
		"checks:\n  authz/bola: {identity: bob, owner: alice}\n  authz/mass-assignment: {identity: bob}\n"
	if _, err := Parse("t.yaml", []byte(y), noEnv); err != nil {
		t.Fatal(err)
	}
}
