package scan_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/lab"
	"github.com/tocsin/tocsin/internal/redact"
	"github.com/tocsin/tocsin/internal/report"
	"github.com/tocsin/tocsin/internal/scan"
	"github.com/tocsin/tocsin/internal/target"
)

// A config with only origins, the lab's OpenAPI document and identities runs every check that fits
// the document: on the vulnerable lab exactly the findings its flaws give, on the fixed lab none, and
// the report's surface section says which operation fed which check.
func TestScanFromOpenAPIOnly(t *testing.T) {
	type key struct{ check, endpoint string }
	for _, tc := range []struct {
		flavor string
		want   []key
	}{
		{lab.Vulnerable, []key{
			{"toctou/revoked-token-accepted", "GET /items/{{id}}"},
			{"toctou/revoked-token-accepted", "GET /discount-coupons"},
			// The daily report ignores authentication: no token, a malformed one and one no issuer
			// made are all accepted where the document says a token is needed.
			{"auth/missing", "GET /reports/daily"}, {"auth/missing", "GET /reports/daily"}, {"auth/missing", "GET /reports/daily"},
			{"toctou/revoked-token-accepted", "GET /reports/summary"},
			{"toctou/scope-downgrade-ignored", "GET /reports/summary"},
			{"race/limit-overrun", "POST /coupons/{{id}}/redeem"},
			{"toctou/inflight-revocation", "DELETE /items/{{id}}"},
			// The notes, the account and the admin listing are read through the same stale
			// introspection cache as the items.
			{"toctou/revoked-token-accepted", "GET /notes"}, {"toctou/revoked-token-accepted", "GET /notes/{{id}}"},
			{"toctou/revoked-token-accepted", "GET /account"}, {"toctou/revoked-token-accepted", "GET /admin/accounts"},
			// Between identities, from the document alone: bob reads, changes and deletes the note
			// alice's setup created (the link from POST /notes), and a new account makes itself an
			// admin through PATCH /account, whose role the document marks readOnly. The admin routes
			// need the admin role, which no scope in the document expresses: authz/bfla cannot pick
			// them (the hand-written probes find them), and the scopes it does pick are enforced.
			{"authz/bola", "GET /notes/{{id}}"}, {"authz/bola", "PUT /notes/{{id}}"}, {"authz/bola", "DELETE /notes/{{id}}"},
			{"authz/mass-assignment", "PATCH /account"},
			// The routes that verify JWTs, each as the identity whose scheme it names (alice for
			// the identity provider's, legacy and sso for the other logins): one flaw per route,
			// found by every forgery that flaw lets through. The route that never checks a
			// signature takes an unsigned token, a token with a key of its own and one no issuer
			// made (auth/missing's third variant).
			{"jwt/none-algorithm", "GET /jwt/none/whoami"}, {"jwt/none-algorithm", "GET /jwt/unverified/whoami"},
			{"jwt/signature-not-verified", "GET /jwt/unverified/whoami"},
			{"jwt/embedded-key", "GET /jwt/embedded/whoami"}, {"jwt/embedded-key", "GET /jwt/unverified/whoami"},
			{"auth/missing", "GET /jwt/unverified/whoami"},
			// A weak secret belongs to the issuer: one route of the older login proves it.
			{"jwt/weak-hmac-secret", "GET /legacy/session"},
			{"jwt/expired-accepted", "GET /legacy/session"},
			{"jwt/algorithm-confusion", "GET /sso/whoami"},
		}},
		{lab.Fixed, nil},
	} {
		t.Run(tc.flavor, func(t *testing.T) {
			l, err := lab.Start(context.Background(), "127.0.0.1:0", lab.Options{Flavor: tc.flavor, IntrospectionTTL: 300 * time.Millisecond, PermissionTTL: 300 * time.Millisecond, ActionGap: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			env := l.Env()
			cfg, err := config.Parse("lab.yaml", l.SurfaceConfigYAML(), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Probes) != 0 || len(cfg.Checks) != 0 {
				t.Fatal("the config names probes or checks")
			}
			before := l.Resources()
			tgt, err := target.Build(context.Background(), cfg, &redact.Redactor{})
			if err != nil {
				t.Fatal(err)
			}
			r, err := scan.Run(context.Background(), tgt, scan.Options{Name: "lab"})
			if err != nil {
				t.Fatal(err)
			}
			var got []key
			for _, f := range r.Findings {
				// DELETE /notes/{id} has no pause between its check and its use, unlike DELETE
				// /items/{id}: whether a revocation lands while it is in flight is chance, and a
				// finding there is true when it does (bob, the verifier, may read alice's notes).
				if tc.flavor == lab.Vulnerable && f.Check == "toctou/inflight-revocation" && f.Endpoint == "DELETE /notes/{{id}}" {
					continue
				}
				got = append(got, key{f.Check, f.Endpoint})
			}
			sortKeys := func(k []key) {
				slices.SortFunc(k, func(a, b key) int {
					if a.check != b.check {
						return map[bool]int{true: -1, false: 1}[a.check < b.check]
					}
					return map[bool]int{true: -1, false: 1}[a.endpoint < b.endpoint]
				})
			}
			sortKeys(got)
			sortKeys(tc.want)
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings %v, want %v", got, tc.want)
			}
			var ids []string
			for _, c := range r.Checks {
				ids = append(ids, c.ID)
				for _, x := range c.Experiments {
					// The daily report ignores authentication in the vulnerable flavour: a missing
					// check, not a stale one; the controls say so instead of claiming TOCTOU.
					wantInconclusive := tc.flavor == lab.Vulnerable && x.Probe == "getDailyReport" && c.ID != "auth/missing" ||
						// bob, the in-flight check's verifier, may not read alice's notes in the fixed
						// flavour: his 404 would say "gone" whatever happened, and the control says so.
						tc.flavor == lab.Fixed && x.Probe == "deleteNote" && c.ID == "toctou/inflight-revocation"
					// A jwt check does not apply to a token of the wrong family (alice's HS256 for
					// algorithm confusion, sso's RS256 for a weak HMAC secret) nor, for expiry, to a
					// long-lived token no forgery works for: a verdict, which keeps the scan complete.
					if x.Verdict == "not_applicable" && strings.HasPrefix(c.ID, "jwt/") {
						continue
					}
					if (x.Verdict == "inconclusive") != wantInconclusive || x.Verdict == "error" || x.Verdict == "skipped" || x.Verdict == "not_applicable" {
						t.Errorf("%s on %s: %s (%s)", c.ID, x.Probe, x.Verdict, x.Reason)
					}
				}
			}
			// Every check runs from the document alone.
			if want := check.IDs(); !slices.Equal(ids, want) {
				t.Errorf("checks %v, want %v", ids, want)
			}
			s := r.Surface
			if s == nil {
				t.Fatal("no surface section")
			}
			// What the authz checks picked, and only that: the objects a setup creates (never the
			// shared team note, which no setup makes and bob lists), the scopes bob lacks, the
			// readOnly properties of what the scan made.
			picked := map[string][]string{}
			for _, op := range s.Operations {
				for _, c := range op.Checks {
					if slices.Contains(config.AuthzChecks, c.Check) {
						picked[c.Check] = append(picked[c.Check], op.ID)
					}
				}
			}
			for id, want := range map[string][]string{
				"authz/bola":            {"deleteNote", "getNote", "updateNote"},
				"authz/bfla":            {"deleteItem", "getDailyReport", "getReportSummary"},
				"authz/mass-assignment": {"updateAccount", "updateNote"},
			} {
				slices.Sort(picked[id])
				if !slices.Equal(picked[id], want) {
					t.Errorf("%s picked %v, want %v", id, picked[id], want)
				}
			}
			status := map[string]string{}
			for _, op := range s.Operations {
				status[op.ID] = op.Status
				if op.Status == report.OperationNotTested && op.Reason == "" || op.Status == report.OperationTested && len(op.Checks) == 0 {
					t.Errorf("operation %+v: a status without its why", op)
				}
			}
			for id, want := range map[string]string{
				"getItem": report.OperationTested, "deleteItem": report.OperationTested, "getReportSummary": report.OperationTested,
				"redeemCoupon": report.OperationTested, "health": report.OperationPublic, "login": report.OperationPublic,
				"claimBonus": report.OperationNotTested, "revokeToken": report.OperationNotTested, "createItem": report.OperationNotTested,
				"updateAccount": report.OperationTested, "moderateNote": report.OperationNotTested,
			} {
				if status[id] != want {
					t.Errorf("operation %s: %s, want %s", id, status[id], want)
				}
			}
			if after := l.Resources(); !maps.Equal(before, after) {
				t.Errorf("resources before %v, after %v: the scan left something behind", before, after)
			}
		})
	}
}

// A check listed without probes picks them from the document, as its identity; a check that fits
// no operation is skipped with why; a config where nothing fits is refused.
func TestListedChecksPickOperations(t *testing.T) {
	l, err := lab.Start(context.Background(), "127.0.0.1:0", lab.Options{Flavor: lab.Fixed})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	env := l.Env()
	build := func(yaml string) (*target.Target, error) {
		cfg, err := config.Parse("lab.yaml", []byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		return target.Build(context.Background(), cfg, &redact.Redactor{})
	}
	base := string(l.SurfaceConfigYAML())
	// bob reads only here: his token may not write coupons.
	readOnlyBob := strings.Replace(base, "username: bob\n        password: bob-password\n        scopes: [items:read, items:write]", "username: bob\n        password: bob-password\n        scopes: [items:read]", 1)
	if readOnlyBob == base {
		t.Fatal("the lab's surface config no longer gives bob items:write; update the test")
	}
	tgt, err := build(readOnlyBob + "checks:\n  toctou/revoked-token-accepted: {identity: alice}\n  race/limit-overrun: {identity: bob}\n")
	if err != nil {
		t.Fatal(err)
	}
	r, err := scan.Run(context.Background(), tgt, scan.Options{Only: []string{"race/limit-overrun"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := tgt.Checks["toctou/revoked-token-accepted"]; got.Identity != "alice" || !slices.Contains(got.Probes, "getReportSummary") || slices.Contains(got.Probes, "deleteItem") {
		t.Errorf("revoked-token plan %+v", got)
	}
	// bob's token may not write coupons (items:read): nothing fits him.
	if c := r.Checks[0]; c.Status != report.StatusSkipped || !strings.Contains(c.Reason, "no operation fits") {
		t.Errorf("race as bob: %+v, want skipped with why", c)
	}
	none := strings.Replace(base, "single_use: [redeemCoupon]", "single_use: []", 1)
	// Nor may it write coupons, which auth/missing would try without a token.
	none = strings.Replace(none, "destructive: [createItem, deleteItem, createCoupon, deleteCoupon, createNote, updateNote, deleteNote, updateAccount]", "destructive: [createItem, deleteItem]", 1)
	// And no identity whose scopes are unknown (newcomer, minted per experiment, may do anything).
	if i := strings.Index(none, "  newcomer:\n"); i > 0 {
		none = none[:i]
	}
	if strings.Contains(none, "createNote") || strings.Contains(none, "newcomer") {
		t.Fatal("the lab's surface config changed: update the test's edits")
	}
	none = strings.Replace(none, "scopes: [items:read, items:write, items:delete, reports:read]", "scopes: [items:write]", 1)
	none = strings.Replace(none, "scopes: [items:read, items:write]", "scopes: [items:write]", 1)
	// Nor may they call the routes that need only a token of the identity provider (the JWT
	// verifiers): alice and bob answer the admin key's scheme, which only an admin call needs.
	none = strings.Replace(none, "  alice:\n", "  alice:\n    scheme: admin\n", 1)
	none = strings.Replace(none, "  bob:\n", "  bob:\n    scheme: admin\n", 1)
	tgt, err = build(none)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := scan.Run(context.Background(), tgt, scan.Options{}); err == nil || !strings.Contains(err.Error(), "no check fits") {
		t.Errorf("nothing to test: %v; checks %v", err, tgt.CheckOrder)
	}
}

// Recorded traffic is a surface too: the POST that created an item links its id to the GET and
// DELETE recorded after it, so the scan creates its own item instead of reusing the recorded one.
func TestScanFromHAR(t *testing.T) {
	l, err := lab.Start(context.Background(), "127.0.0.1:0", lab.Options{Flavor: lab.Vulnerable, IntrospectionTTL: 300 * time.Millisecond, ActionGap: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	u := l.URL()
	entry := func(method, path, body, status, resp string) string {
		post := ""
		if body != "" {
			post = `, "postData": {"mimeType": "application/json", "text": ` + strconv.Quote(body) + `}`
		}
		return `{"request": {"method": "` + method + `", "url": "` + u + path + `", "headers": [{"name": "Authorization", "value": "Bearer recorded"}]` + post + `},
		 "response": {"status": ` + status + `, "content": {"mimeType": "application/json", "text": ` + strconv.Quote(resp) + `}}}`
	}
	har := `{"log": {"entries": [` + strings.Join([]string{
		entry("POST", "/items", `{"name": "recorded"}`, "201", `{"id": "rec0rded1d", "name": "recorded"}`),
		entry("GET", "/items/rec0rded1d?view=full", "", "200", `{"id": "rec0rded1d"}`),
		entry("DELETE", "/items/rec0rded1d", "", "204", ""),
		entry("GET", "/healthz", "", "200", `{"status": "ok"}`),
	}, ",") + `]}}`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rec.har"), []byte(har), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(l.SurfaceConfigYAML()), "openapi:\n  source: "+u+"/openapi.json", "har:\n  source: rec.har", 1)
	// A recording names no security schemes: the identities answer whatever it holds.
	y = regexp.MustCompile(`(?m)^    scheme: .*\n`).ReplaceAllString(y, "")
	y = strings.Replace(y, "destructive: [createItem, deleteItem, createCoupon, deleteCoupon, createNote, updateNote, deleteNote, updateAccount]\n  single_use: [redeemCoupon]", `destructive: ["POST /items", "DELETE /items/{id}"]`, 1)
	if err := os.WriteFile(filepath.Join(dir, "tocsin.yaml"), []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range l.Env() {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(filepath.Join(dir, "tocsin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tgt, err := target.Build(context.Background(), cfg, &redact.Redactor{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := scan.Run(context.Background(), tgt, scan.Options{Only: nil})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range r.Findings {
		got = append(got, f.Check+" "+f.Endpoint)
	}
	slices.Sort(got)
	// An endpoint shows a literal query value as ..., since a query may carry a credential.
	want := []string{"toctou/inflight-revocation DELETE /items/{{id}}", "toctou/revoked-token-accepted GET /items/{{id}}?view=..."}
	if !slices.Equal(got, want) {
		t.Errorf("findings %v, want %v\n%s", got, want, r.Surface.Line())
	}
}

// A note the setup creates shared is one bob lists: authz/bola from the document leaves it out on
// the vulnerable lab, where bob could reach any note, rather than flag what he may see.
func TestBOLAFromOpenAPISharedObject(t *testing.T) {
	l, err := lab.Start(context.Background(), "127.0.0.1:0", lab.Options{Flavor: lab.Vulnerable})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	spec := strings.Replace(string(l.OpenAPI()), `"required": ["title"], "properties": {"title": {"type": "string", "maxLength": 200}, "body": {"type": "string"}, "shared": {"type": "boolean", "default": false}}`,
		`"required": ["title", "shared"], "properties": {"title": {"type": "string", "maxLength": 200}, "body": {"type": "string"}, "shared": {"type": "boolean", "default": true}}`, 1)
	if spec == string(l.OpenAPI()) {
		t.Fatal("the lab's POST /notes schema changed: update the test's edit")
	}
	if err := os.WriteFile(filepath.Join(dir, "openapi.json"), []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(l.SurfaceConfigYAML()), "source: "+l.URL()+"/openapi.json", "source: "+filepath.Join(dir, "openapi.json"), 1) +
		"checks:\n  authz/bola: {identity: bob, owner: alice}\n"
	env := l.Env()
	cfg, err := config.Parse("lab.yaml", []byte(y), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	before := l.Resources()
	tgt, err := target.Build(context.Background(), cfg, &redact.Redactor{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := scan.Run(context.Background(), tgt, scan.Options{Name: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 0 {
		t.Errorf("findings on shared notes: %+v", r.Findings)
	}
	var probes []string
	for _, c := range r.Checks {
		for _, x := range c.Experiments {
			probes = append(probes, x.Probe)
			if x.Verdict != "passed" || !strings.Contains(x.Reason, "lists") {
				t.Errorf("%s on %s: %s (%s), want passed: bob lists the note", c.ID, x.Probe, x.Verdict, x.Reason)
			}
		}
	}
	slices.Sort(probes)
	if want := []string{"deleteNote", "getNote", "updateNote"}; !slices.Equal(probes, want) {
		t.Errorf("bola ran on %v, want %v", probes, want)
	}
	if after := l.Resources(); !maps.Equal(before, after) {
		t.Errorf("resources before %v, after %v", before, after)
	}
}

// authz/bfla from a document: an operation whose scope alice's token has and bob's lacks. The
// lab's own document gives GET /admin/accounts the scope it checks (items:read, which bob has) and
// says the admin role is checked by the server; this test's copy documents the privilege as a
// scope bob's token lacks (reports:read), so the check picks the route: bob gets the accounts in
// the vulnerable flavour, which checks nothing but the token, and 403 in the fixed one.
func TestBFLAFromOpenAPIScopes(t *testing.T) {
	for _, tc := range []struct {
		flavor string
		want   []string
	}{{lab.Vulnerable, []string{"GET /admin/accounts"}}, {lab.Fixed, nil}} {
		t.Run(tc.flavor, func(t *testing.T) {
			l, err := lab.Start(context.Background(), "127.0.0.1:0", lab.Options{Flavor: tc.flavor})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			dir := t.TempDir()
			doc := string(l.OpenAPI())
			i := strings.Index(doc, `"operationId": "listAccounts"`)
			if i < 0 {
				t.Fatal("no listAccounts in the lab's document")
			}
			j := strings.Index(doc[i:], `"security": [{"oauth2": ["items:read"]}]`)
			if j < 0 {
				t.Fatal("listAccounts' security changed: update the test's edit")
			}
			spec := doc[:i+j] + `"security": [{"oauth2": ["reports:read"]}]` + doc[i+j+len(`"security": [{"oauth2": ["items:read"]}]`):]
			if err := os.WriteFile(filepath.Join(dir, "openapi.json"), []byte(spec), 0o600); err != nil {
				t.Fatal(err)
			}
			y := strings.Replace(string(l.SurfaceConfigYAML()), "source: "+l.URL()+"/openapi.json", "source: "+filepath.Join(dir, "openapi.json"), 1) +
				"checks:\n  authz/bfla: {identity: bob, owner: alice}\n"
			env := l.Env()
			cfg, err := config.Parse("lab.yaml", []byte(y), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			before := l.Resources()
			tgt, err := target.Build(context.Background(), cfg, &redact.Redactor{})
			if err != nil {
				t.Fatal(err)
			}
			r, err := scan.Run(context.Background(), tgt, scan.Options{Name: "lab"})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range r.Findings {
				got = append(got, f.Endpoint)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings %v, want %v", got, tc.want)
			}
			for _, c := range r.Checks {
				for _, x := range c.Experiments {
					// The daily report needs no token at all in the vulnerable flavour: undecided.
					if (x.Verdict == "inconclusive") != (tc.flavor == lab.Vulnerable && x.Probe == "getDailyReport") || x.Verdict == "error" || x.Verdict == "skipped" {
						t.Errorf("%s on %s: %s (%s)", c.ID, x.Probe, x.Verdict, x.Reason)
					}
				}
			}
			if !slices.Contains(tgt.Checks["authz/bfla"].Probes, "listAccounts") {
				t.Errorf("bfla probes %v, want listAccounts among them", tgt.Checks["authz/bfla"].Probes)
			}
			if after := l.Resources(); !maps.Equal(before, after) {
				t.Errorf("resources before %v, after %v", before, after)
			}
		})
	}
}
