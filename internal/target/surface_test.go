package target_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/lab"
	"github.com/tocsin/tocsin/internal/redact"
	"github.com/tocsin/tocsin/internal/target"
)

// A spec given by URL is fetched through the scan's client (one request, on the budget); the
// operations the config names must exist; a hand-written probe for an operation wins.
func TestSurfaceFromURL(t *testing.T) {
	l, err := lab.Start(context.Background(), "127.0.0.1:0", lab.Options{Flavor: lab.Fixed})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	env := l.Env()
	build := func(y string) (*target.Target, error) {
		cfg, err := config.Parse("lab.yaml", []byte(y), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		return target.Build(context.Background(), cfg, &redact.Redactor{})
	}
	base := string(l.SurfaceConfigYAML())
	tgt, err := build(base + "probes:\n  mine:\n    path: /reports/summary\n")
	if err != nil {
		t.Fatal(err)
	}
	if n := tgt.Client.Sent(); n != 1 {
		t.Errorf("%d requests to build the target, want 1 (the document)", n)
	}
	for _, op := range tgt.Surface.Ops {
		switch op.ID {
		case "getReportSummary":
			if op.Probe != "mine" || !op.HandWritten {
				t.Errorf("getReportSummary: probe %q, want the hand-written one", op.Probe)
			}
		case "getItem":
			if p := tgt.Probes[op.Probe]; p == nil || len(p.Setup) != 1 || len(p.Teardown) != 1 {
				t.Errorf("getItem: probe %+v", p)
			}
		}
	}
	// The document describes credentials ("/oauth/token": {"description": "a token"}); it carries
	// none, so what it says is not learned as a secret: reasons stay readable.
	if got := tgt.Redactor.String("needs a token signed RS256"); got != "needs a token signed RS256" {
		t.Errorf("the document's words were learned as secrets: %q", got)
	}
	// Identities answer schemes: alice's token_url is the document's oauth2 tokenUrl.
	if got := tgt.Surface.Schemes["alice"]; got != "oauth2" {
		t.Errorf("alice's scheme %q (%s), want oauth2", got, tgt.Surface.SchemeWhy["alice"])
	}
	if _, err := build(strings.Replace(base, "  alice:\n", "  alice:\n    scheme: nosuch\n", 1)); err == nil || !strings.Contains(err.Error(), `identities.alice.scheme: no security scheme "nosuch"`) {
		t.Errorf("an unknown scheme: %v", err)
	}
	if _, err := build(strings.Replace(base, "destructive: [createItem,", "destructive: [createitem,", 1)); err == nil || !strings.Contains(err.Error(), `openapi.destructive[0]: no operation "createitem"`) || !strings.Contains(err.Error(), `did you mean "createItem"`) {
		t.Errorf("an unknown operation: %v", err)
	}
	if _, err := build(strings.Replace(base, "/openapi.json", "/nothing.json", 1)); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a document that is not there: %v", err)
	}
}
