package identity

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/redact"
)

// script writes a shell script into a temporary directory and returns the argv that runs it.
func script(t *testing.T, body string, args ...string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return append([]string{"sh", path}, args...)
}

func TestStatic(t *testing.T) {
	r := &redact.Redactor{}
	src := NewStatic("static-token-1", r)
	for range 2 {
		tok, err := src.Token(context.Background())
		if err != nil || tok.Value != "static-token-1" {
			t.Fatalf("Token = %q, %v", tok.Value, err)
		}
	}
	if src.Fresh() || src.Kind() != "static" {
		t.Errorf("Fresh %v, Kind %q", src.Fresh(), src.Kind())
	}
	if r.String("static-token-1") == "static-token-1" {
		t.Error("the token was not registered with the redactor")
	}
	if _, err := NewStatic("", nil).Token(context.Background()); err == nil {
		t.Error("empty static token: want an error")
	}
}

func TestCommandSourceFresh(t *testing.T) {
	counter := filepath.Join(t.TempDir(), "n")
	// Each run mints a new token, as a real `get-token` script would.
	argv := script(t, `n=$(cat "$1" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$1"; printf '  cmd-token-%s\n\n' "$n"`, counter)
	r := &redact.Redactor{}
	src := NewCommand(argv, r)
	if !src.Fresh() || src.Kind() != "command" {
		t.Errorf("Fresh %v, Kind %q", src.Fresh(), src.Kind())
	}
	first, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	second, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if first.Value != "cmd-token-1" || second.Value != "cmd-token-2" {
		t.Errorf("tokens %q, %q; want cmd-token-1, cmd-token-2 (trimmed, one per run)", first.Value, second.Value)
	}
	if r.String(second.Value) == second.Value {
		t.Error("the token was not registered with the redactor")
	}
}

func TestCommandSourceErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"empty stdout", `echo "login failed for client-s3cret-value: $(printf 'x%.0s' $(seq 300))" >&2`,
			[]string{"printed no token", "stderr: login failed for [client-secret:", "...", "hint:"}},
		{"exit status", `echo "access-token-leak" ; echo "boom" >&2; exit 3`, []string{"exit status 3", "stderr: boom"}},
		{"several lines", `echo one; echo two`, []string{"more than a token"}},
		{"stderr echoes token", `echo "tok-in-stdout-1234"; echo "oops tok-in-stdout-1234" >&2; exit 1`, []string{"oops [token:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCommand(script(t, tc.body), secretsRegistered()).Token(context.Background())
			if err == nil {
				t.Fatal("want an error")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			for _, secret := range []string{clientSecret, "access-token-leak", "tok-in-stdout-1234"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q leaks %q", msg, secret)
				}
			}
			if len(msg) > 400 {
				t.Errorf("error is %d bytes long; the stderr excerpt should be cut at %d", len(msg), excerptBytes)
			}
		})
	}
	if _, err := NewCommand(nil, nil).Token(context.Background()); err == nil {
		t.Error("empty argv: want an error")
	}
}

func TestCommandSourceTimeout(t *testing.T) {
	src := NewCommand(script(t, `exec sleep 10`), nil).(*commandSource)
	src.timeout = 100 * time.Millisecond
	start := time.Now()
	_, err := src.Token(context.Background())
	if err == nil || !strings.Contains(err.Error(), "killed after 100ms") {
		t.Errorf("err = %v, want a timeout", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("took %s, want about 100ms", elapsed)
	}
}

// A command may print a JSON object: the token and what the API knows it by, which hooks use.
func TestCommandSourceJSON(t *testing.T) {
	r := &redact.Redactor{}
	src := NewCommand(script(t, `echo '{"token": "json-token-123", "id": "tok-77", "name": "ci", "expires_in": 60, "nested": {"x": 1}}'`), r)
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Value != "json-token-123" || tok.Fields["id"] != "tok-77" || tok.Fields["name"] != "ci" || tok.Expiry.IsZero() || time.Until(tok.Expiry) > time.Minute {
		t.Errorf("token %+v", tok)
	}
	if _, ok := tok.Fields["nested"]; ok {
		t.Error("a nested object became a field")
	}
	if v := tok.Vars(); v["token"] != "json-token-123" || v["token.id"] != "tok-77" {
		t.Errorf("vars %v", v)
	}
	if r.String("json-token-123 tok-77") == "json-token-123 tok-77" {
		t.Error("the token and its id were not registered with the redactor")
	}
	// A hook renders the token's fields: revoke by id.
	hook := NewCommandHook(script(t, `test "$1" = tok-77 && test "$TOCSIN_TOKEN" = json-token-123`, "{{token.id}}"), r)
	if err := hook.Run(context.Background(), tok); err != nil {
		t.Errorf("hook with {{token.id}}: %v", err)
	}
	for out, want := range map[string]string{
		`echo '{"id": "x"}'`:  `no "token" field`,
		`echo '{"token": 1,'`: "does not parse",
	} {
		if _, err := NewCommand(script(t, out), r).Token(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", out, err, want)
		}
	}
}
