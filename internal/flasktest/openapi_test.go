//go:build unix

package flasktest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/check"
)

// openapiConfig is testdata/flask-api/tocsin.yaml with its probes and checks replaced by the app's
// OpenAPI document: the identities and their hooks, and nothing about requests.
func openapiConfig(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	y := string(data)
	i := strings.Index(y, "\nprobes:")
	if i < 0 {
		t.Fatal("tocsin.yaml has no probes section")
	}
	y = y[:i+1]
	y = strings.Replace(y, "    downgrade:", "    downgrade:\n      removes: [reports:read]", 1)
	// The other logins' tokens answer their own schemes in the document (alice's and bob's are
	// matched to oauth2 by their token_url).
	y = strings.Replace(y, "\n  legacy:", "\n  legacy:\n    scheme: legacy", 1)
	y = strings.Replace(y, "\n  sso:", "\n  sso:\n    scheme: sso", 1)
	spec, err := filepath.Abs(filepath.Join(appDir, "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(y + "openapi:\n  source: " + spec + "\n  destructive: [createItem, deleteItem, createNote, updateNote, deleteNote, updateAccount]\n")
}

// The Flask app's OpenAPI document is enough for every check to pick its operations: the vulnerable
// mode gives exactly the findings its flaws imply, the fixed mode none, and both scans are complete.
func TestFlaskFromOpenAPI(t *testing.T) {
	type key struct{ check, endpoint string }
	for _, tc := range []struct {
		settings map[string]string
		want     []key
	}{
		{map[string]string{"FLASK_MODE": "vulnerable", "FLASK_INTROSPECTION_TTL": "0.5", "FLASK_PERMISSION_TTL": "0.5"}, []key{
			{checkRevoked, "GET /items/{{item_id}}"},
			{checkRevoked, "GET /reports/summary"},
			{checkDowngrade, "GET /reports/summary"},
			{checkInflight, "DELETE /items/{{item_id}}"},
			// The daily report forgot its authentication: its document says it needs reports:read.
			{"auth/missing", "GET /reports/daily"}, {"auth/missing", "GET /reports/daily"}, {"auth/missing", "GET /reports/daily"},
			// The JWT routes, each as the identity of the login whose scheme it names: one flaw
			// per route, found by every forgery it lets through. The route that never checks a
			// signature also takes auth/missing's token that no issuer made.
			{"jwt/none-algorithm", "GET /jwt/none/whoami"}, {"jwt/none-algorithm", "GET /jwt/unverified/whoami"},
			{"jwt/signature-not-verified", "GET /jwt/unverified/whoami"},
			{"jwt/embedded-key", "GET /jwt/embedded/whoami"}, {"jwt/embedded-key", "GET /jwt/unverified/whoami"},
			{"auth/missing", "GET /jwt/unverified/whoami"},
			// The seed's SECRET_KEY signs every HS256 token: one route per issuer (scheme) proves
			// it, the first without a setup in path order for the OAuth2 server's tokens.
			{"jwt/weak-hmac-secret", "GET /account"}, {"jwt/weak-hmac-secret", "GET /legacy/session"},
			{"jwt/expired-accepted", "GET /legacy/session"},
			{"jwt/algorithm-confusion", "GET /sso/whoami"},
			// The notes, the account and the admin listing are read through the same stale
			// introspection cache as the items.
			{checkRevoked, "GET /notes"}, {checkRevoked, "GET /notes/{{id}}"}, {checkRevoked, "GET /account"}, {checkRevoked, "GET /admin/accounts"},
			// Between accounts, from the document alone: bob reads, changes and deletes the note
			// alice's setup created (Note.query.get), and a new account makes itself an admin
			// through PATCH /account (**request.json), whose role the document marks readOnly. The
			// admin routes check a role no scope expresses: authz/bfla cannot pick them.
			{"authz/bola", "GET /notes/{{id}}"}, {"authz/bola", "PUT /notes/{{id}}"}, {"authz/bola", "DELETE /notes/{{id}}"},
			{"authz/mass-assignment", "PATCH /account"},
		}},
		{map[string]string{"FLASK_MODE": "fixed"}, nil},
	} {
		t.Run(tc.settings["FLASK_MODE"], func(t *testing.T) {
			app := startFlask(t, tc.settings)
			start := time.Now()
			rep := scanFlaskWith(t, app, openapiConfig(t))
			var got []key
			for _, f := range rep.Findings {
				// DELETE /notes/{id} has no pause between its check and its use, unlike DELETE
				// /items/{id}: whether a revocation lands while it is in flight is chance, and a
				// finding there is true when it does (bob, the verifier, may read alice's notes).
				if f.Check == checkInflight && f.Endpoint == "DELETE /notes/{{id}}" && tc.settings["FLASK_MODE"] == "vulnerable" {
					continue
				}
				got = append(got, key{f.Check, f.Endpoint})
			}
			less := func(a, b key) int { return strings.Compare(a.check+" "+a.endpoint, b.check+" "+b.endpoint) }
			slices.SortFunc(got, less)
			slices.SortFunc(tc.want, less)
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings %v, want %v:%s", got, tc.want, summaries(rep))
			}
			for _, c := range rep.Checks {
				for _, x := range c.Experiments {
					// On the daily report the TOCTOU checks' controls see no authentication at all:
					// inconclusive, which is auth/missing's finding, not theirs.
					daily := x.Probe == "getDailyReport" && tc.settings["FLASK_MODE"] == "vulnerable" && c.ID != "auth/missing" ||
						// bob, the in-flight check's verifier, may not read alice's notes in the
						// fixed mode: his 404 would say "gone" whatever happened, and the control
						// says so.
						x.Probe == "deleteNote" && c.ID == checkInflight && tc.settings["FLASK_MODE"] == "fixed"
					// A jwt check does not apply to a token of the wrong family or, for expiry, to
					// a long-lived one that no proven forgery works for: a verdict all the same.
					if x.Verdict == string(check.NotApplicable) && strings.HasPrefix(c.ID, "jwt/") {
						continue
					}
					if !check.Verdict(x.Verdict).Reached() || (x.Verdict == "inconclusive") != daily || x.Verdict == string(check.NotApplicable) {
						t.Errorf("%s on %s: %s (%s)", c.ID, x.Probe, x.Verdict, x.Reason)
					}
				}
			}
			if !rep.Complete() || rep.Surface == nil {
				t.Fatalf("status %s, surface %v", rep.Status, rep.Surface)
			}
			tested, public, _ := rep.Surface.Count()
			// Tested: getItem, deleteItem, the two reports, the six routes that verify JWTs, the
			// notes (list, read, update, delete), the account (read, update) and the admin
			// listing; public: the three logins, registration, the OpenID provider's discovery
			// document and JWKS, and healthz.
			if tested != 17 || public != 7 {
				t.Errorf("surface: %s; want 17 tested, 7 public", rep.Surface.Line())
			}
			t.Logf("%s in %.1f s", rep.Surface.Line(), time.Since(start).Seconds())
		})
	}
}
