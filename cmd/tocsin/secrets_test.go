//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/hostile"
	"github.com/tocsin/tocsin/internal/redact"
)

// secretsConfig scans a hostile server that echoes everything it is sent and puts its own tokens
// across the 200-byte excerpt mark, with a config that carries every kind of secret of the run
// (issue 12, section 2): a ${VAR} in a probe's query and in a non-standard header (a short one), an
// admin key from the environment in X-Admin-Key, a hook whose form body holds an admin key and a
// 3-character password (its 500 echoes them), a login (an http token source) answering a JWT and a
// cookie, and a setup that answers a JWT and a cookie and whose id (r1, r2) is extracted.
//
// race/limit-overrun runs first: its baseline redeems r1 (one-shot) and its race r2, which answers
// every copy with the secrets across the mark, so it is a finding with twenty excerpts.
// toctou/revoked-token-accepted revokes alice's token at a hook that acknowledges; the API never
// checks revocation, so it is a finding with replays that echo the request. And
// toctou/scope-downgrade-ignored fails at the downgrade hook, whose 500 echoes the admin key, the
// hook's body and the password into the check's error.
const secretsConfig = `version: 1
target:
  origins: [%[1]s]
limits:
  timeout: 2s
  max_window: 1s
  request_budget: 400
identities:
  alice:
    token:
      http:
        - method: POST
          path: /login
          headers: {Content-Type: application/json}
          body: '{"username":"alice","password":"pw1"}'
          extract: {token: token}
    revoke:
      http:
        method: POST
        url: %[1]s/admin/revoke
        headers: {X-Admin-Key: "${ADMIN_KEY}", Content-Type: application/json}
        body: '{"token":"{{token}}"}'
    downgrade:
      http:
        method: POST
        url: %[1]s/admin/downgrade
        headers: {X-Admin-Key: "${ADMIN_KEY}", Content-Type: application/x-www-form-urlencoded}
        body: admin_key=hk-Body-31f0a9c2e7&password=pw1&scope=read
    restore:
      http:
        method: POST
        url: %[1]s/admin/restore
        headers: {X-Admin-Key: "${ADMIN_KEY}"}
probes:
  summary:
    path: /reports/summary?api_key=${PROBE_API_KEY}
    headers: {X-Tenant: "${TENANT_TAG}"}
  redeem:
    method: POST
    path: /coupons/{{coupon_id}}/redeem?api_key=${PROBE_API_KEY}
    destructive: true
    accept: [200]
    reject: [401, 403, 409]
    setup:
      method: POST
      path: /coupons?api_key=${PROBE_API_KEY}
      headers: {X-Tenant: "${TENANT_TAG}"}
      accept: [201]
      extract: {coupon_id: id}
checks:
  race/limit-overrun:
    identity: alice
    probes: [redeem]
  toctou/revoked-token-accepted:
    identity: alice
    probes: [summary]
  toctou/scope-downgrade-ignored:
    identity: alice
    probes: [summary]
`

// A full scan against a server that echoes everything, then its report in every format: no output
// holds 8 bytes in a row of any secret of the run, nor a shorter secret as a whole value.
func TestNoSecretOfTheRunInAnyOutput(t *testing.T) {
	bin := buildTocsin(t)
	env := map[string]string{
		"PROBE_API_KEY": "pk-QUERY-SECRET-9d8e7f",
		"ADMIN_KEY":     "adm-Header-Key-5c6d7e8f",
		"TENANT_TAG":    "tn7",
	}
	given := []string{"hk-Body-31f0a9c2e7", "pw1"} // written in the config
	for _, v := range env {
		given = append(given, v)
	}
	srv := hostile.Start(t, hostile.Options{
		Paths: map[string]hostile.Mode{
			"/login":             hostile.Login,
			"/coupons":           hostile.CreateWithJWT,
			"/coupons/r1/redeem": hostile.OneShot,
			"/coupons/r2/redeem": hostile.EchoSecrets,
			"/reports/summary":   hostile.Guarded,
			"/admin/revoke":      hostile.Echo,
			"/admin/downgrade":   hostile.EchoError,
			"/admin/restore":     hostile.Echo,
		},
		Secrets: given,
	})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "secrets.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, secretsConfig, srv.URL()), 0o600); err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{}
	jsonReport := filepath.Join(dir, "report.json")
	r := runBounded(t, bin, 90*time.Second, environ(env), "scan", "-c", cfg, "-v", "--format", "json", "-o", jsonReport)
	checkCeilings(t, r, 30*time.Second)
	outputs["scan stdout (text)"], outputs["scan stderr"] = r.stdout, r.stderr
	if r.code != 1 {
		t.Errorf("scan exit %d, want 1 (findings):\n%s", r.code, tail(r.stderr))
	}
	for _, format := range []string{"json", "text", "sarif", "junit", "html"} {
		file := jsonReport
		if format != "json" {
			file = filepath.Join(dir, "report."+format)
			c := runBounded(t, bin, 30*time.Second, nil, "report", "-i", jsonReport, "--format", format, "-o", file)
			if c.code != 0 {
				t.Fatalf("report --format %s: exit %d\n%s", format, c.code, c.stderr)
			}
			outputs["report "+format+" stdout"], outputs["report "+format+" stderr"] = c.stdout, c.stderr
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		outputs[format] = string(data)
	}

	minted := srv.Minted()
	secrets := append(given, minted...)
	for _, want := range []string{"r1", "r2"} {
		if !strings.Contains(strings.Join(minted, " "), want) {
			t.Fatalf("the server minted %q, not the ids r1 and r2: the scan did not run as planned", minted)
		}
	}
	// Proof that the secrets were there to leak: the report holds their labels where they stood.
	for _, want := range []string{"/coupons/[extract:", "?api_key=[key:", "password=[password:", "admin_key=[key:",
		`\"X-Admin-Key\":[\"[key:`, `\"X-Tenant\":[\"[env:`, `\"Authorization\":[\"Bearer [token:`, `\"receipt\":\"[token:`, "[cookie:"} {
		if !strings.Contains(outputs["json"], want) {
			t.Errorf("the JSON report lacks %q: the scan did not exercise what it should", want)
		}
	}
	for where, out := range outputs {
		for _, secret := range secrets {
			if leak := shownPart(out, secret); leak != "" {
				t.Errorf("%s shows %q of the secret %q", where, leak, secret)
			}
		}
	}
	if t.Failed() {
		t.Logf("stderr of the scan:\n%s", tail(r.stderr))
	}
}

// environ is vars as NAME=value entries for a child's environment.
func environ(vars map[string]string) []string {
	var env []string
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// shownPart returns what out shows of secret: 8 bytes in a row of it, or, for a shorter secret, the
// secret where it stands as a whole value (redact.Shows); "" when nothing.
func shownPart(out, secret string) string {
	if len(secret) < 8 {
		if redact.Shows(out, secret) {
			return secret
		}
		return ""
	}
	for i := 0; i+8 <= len(secret); i++ {
		if strings.Contains(out, secret[i:i+8]) {
			return secret[i : i+8]
		}
	}
	return ""
}
