package lab

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"github.com/tocsin/tocsin/internal/config"
)

// aliceAndBob are the lab's two users with their hooks, shared by the configs below: alice may do
// everything (and is revoked, downgraded and restored), bob reads items back.
const aliceAndBob = `[[define "alice-and-bob"]]  alice:
    token:
      oauth2:
        grant: password
        token_url: [[.URL]]/oauth/token
        client_id: [[.ClientID]]
        client_secret: ${TOCSIN_LAB_CLIENT_SECRET}
        auth_style: basic
        username: alice
        password: alice-password
        scopes: [items:read, items:write, items:delete, reports:read]
    revoke:
      rfc7009:
        url: [[.URL]]/oauth/revoke
        client_id: [[.ClientID]]
        client_secret: ${TOCSIN_LAB_CLIENT_SECRET}
        auth_style: basic
        token_type_hint: access_token
    downgrade:
      removes: [reports:read]
      http:
        method: PUT
        url: [[.URL]]/idp/subjects/alice/scopes
        headers:
          Authorization: "Bearer ${TOCSIN_LAB_ADMIN_KEY}"
          Content-Type: application/json
        body: '{"scopes": ["items:read", "items:write", "items:delete"]}'
        expect: [200, 204]
    restore:
      http:
        method: PUT
        url: [[.URL]]/idp/subjects/alice/scopes
        headers:
          Authorization: "Bearer ${TOCSIN_LAB_ADMIN_KEY}"
          Content-Type: application/json
        body: '{"scopes": ["items:read", "items:write", "items:delete", "reports:read"]}'

  bob:
    token:
      oauth2:
        grant: password
        token_url: [[.URL]]/oauth/token
        client_id: [[.ClientID]]
        client_secret: ${TOCSIN_LAB_CLIENT_SECRET}
        username: bob
        password: bob-password
        scopes: [items:read, items:write]

[[end]]`

// newcomer is an account registered for every experiment and deleted after it: what a check does to
// an identity itself (a welcome bonus spent, a role assigned) goes with the account.
const newcomer = `[[define "newcomer"]]  newcomer:
    # A new account for every experiment: a welcome bonus is one per account, so the race needs an
    # account the sequential baseline did not spend.
    fresh: per-experiment
[[- if .Surface]]
    scheme: oauth2                     # its login's tokens are the identity provider's
[[- end]]
    token:
      http:
        - method: POST
          path: /register
          headers: {Content-Type: application/json}
          body: '{"username": "tocsin-{{uuid}}", "password": "pw-{{random}}"}'
          accept: [201]
        - method: POST
          path: /login
          headers: {Content-Type: application/json}
          body: '{"username": "tocsin-{{uuid}}", "password": "pw-{{random}}"}'
          accept: [200]
          extract: {token: token, id: token_id, expires_in: expires_in}
    teardown:
      method: DELETE
      path: /account
      accept: [204]

[[end]]`

// legacyAndSSO are the identities of the two other logins, whose tokens only their own routes
// accept: from the OpenAPI document, each answers its own security scheme.
const legacyAndSSO = `[[define "legacy-and-sso"]]  legacy:
[[- if .Surface]]
    scheme: legacy                     # the routes of the older login's tokens
[[- end]]
    token:
      http:
        method: POST
        path: /legacy/login
        headers: {Content-Type: application/json}
        body: '{"username": "alice", "password": "alice-password"}'
        extract: {token: token, expires_in: expires_in}

  sso:
[[- if .Surface]]
    scheme: sso                        # the OpenID provider's routes
[[- end]]
    jwks_url: [[.URL]]/sso/jwks.json
    token:
      http:
        method: POST
        path: /sso/login
        headers: {Content-Type: application/json}
        body: '{"username": "alice", "password": "alice-password"}'
        extract: {token: token, expires_in: expires_in}
[[end]]`

// withIdentities parses a config template that includes aliceAndBob, newcomer and legacyAndSSO.
func withIdentities(name, text string) *template.Template {
	t := template.Must(template.New(name).Delims("[[", "]]").Parse(aliceAndBob))
	t = template.Must(t.Parse(newcomer))
	t = template.Must(t.Parse(legacyAndSSO))
	return template.Must(t.Parse(text))
}

// configTemplate is examples/tocsin.yaml for this lab's URL, without the commentary. Its delimiters
// are [[ ]] because the config's own probe templates use {{ }}. Secrets stay ${VAR} references, so
// the rendered file can be shown and stored; Env supplies them.
var configTemplate = withIdentities("config", `# tocsin scan configuration for the [[.Flavor]] lab at [[.URL]].
# Secrets are read from the environment: TOCSIN_LAB_CLIENT_SECRET and TOCSIN_LAB_ADMIN_KEY.
# See examples/tocsin.yaml for what each field means.

version: 1

target:
  origins:
    - [[.URL]]

limits:
  request_budget: 2000
  rate: 200
  timeout: 5s
  max_window: 60s
  precision: 5ms
  max_response_bytes: 1048576

identities:
[[template "alice-and-bob" .]][[template "newcomer" .]][[template "legacy-and-sso" .]]
vars:
  greeting: hello

probes:
  read-report:
    method: GET
    path: /reports/summary
    accept: [200]
    reject: [401, 403]

  read-item:
    method: GET
    path: /items/{{item_id}}
    shared: true
    setup:
      method: POST
      path: /items
      headers: {Content-Type: application/json}
      body: '{"name": "tocsin-{{greeting}}-{{seq}}"}'
      accept: [201]
      extract:
        item_id: id
    teardown:
      method: DELETE
      path: /items/{{item_id}}
      accept: [204]

  delete-item:
    method: DELETE
    path: /items/{{item_id}}
    destructive: true
    accept: [200, 204]
    setup:
      method: POST
      path: /items
      headers: {Content-Type: application/json}
      body: '{"name": "tocsin-delete-me-{{uuid}}"}'
      accept: [201]
      extract: {item_id: id}
    verify:
      method: GET
      path: /items/{{item_id}}
      accept: [200]
      reject: [404]
    teardown:
      method: DELETE
      path: /items/{{item_id}}
      accept: [204]

  redeem-coupon:
    method: POST
    path: /coupons/{{coupon_id}}/redeem
    destructive: true
    accept: [200]
    reject: [401, 403, 409]
    setup:
      method: POST
      path: /coupons
      accept: [201]
      extract: {coupon_id: id}
    teardown:
      method: DELETE
      path: /coupons/{{coupon_id}}
      accept: [204]

  order-with-referral:                 # a discount coupon that takes two accounts and two requests to get
    method: POST
    path: /orders
    headers: {Content-Type: application/json}
    body: '{"coupon_id": "{{coupon_id}}"}'
    destructive: true
    copies: 10                         # the API serves about this many orders at once
    accept: [201]
    reject: [400, 401, 403]            # 400: the coupon was already used
    setup:
      - as: bob                        # bob creates a referral code...
        method: POST
        path: /referrals
        accept: [201]
        extract: {referral_code: referral_code}
      - method: POST                   # ...alice applies it (the answer does not name the coupon)...
        path: /apply-referral
        headers: {Content-Type: application/json}
        body: '{"referral_code": "{{referral_code}}"}'
        accept: [200]
      - method: GET                    # ...and finds the coupon it gave her in her list
        path: /discount-coupons
        accept: [200]
        extract: {coupon_id: 'coupons.#(referral_code=="{{referral_code}}").id'}
    teardown:
      - method: DELETE                 # the coupon and the orders placed with it
        path: /discount-coupons/{{coupon_id}}
        accept: [204]
      - as: bob
        method: DELETE
        path: /referrals/{{referral_code}}
        accept: [204]

  claim-bonus:
    as: newcomer
    method: POST
    path: /bonus/claim
    destructive: true
    accept: [200]
    reject: [401, 403, 409]

  read-daily-report:
    method: GET
    path: /reports/daily
    accept: [200]

  whoami-none:
    path: /jwt/none/whoami
    accept: [200]
  whoami-unverified:
    path: /jwt/unverified/whoami
    accept: [200]
  whoami-embedded:
    path: /jwt/embedded/whoami
    accept: [200]
  legacy-whoami:
    path: /legacy/whoami
    accept: [200]
  legacy-session:
    path: /legacy/session
    accept: [200]
  sso-whoami:
    path: /sso/whoami
    accept: [200]

  read-note:
    method: GET
    path: /notes/{{note_id}}
    setup: &new-note
      method: POST
      path: /notes
      headers: {Content-Type: application/json}
      body: '{"title": "tocsin-{{uuid}}", "body": "private to its owner"}'
      accept: [201]
      extract: {note_id: id}
    list: &notes-list
      method: GET
      path: /notes
    teardown: &delete-note
      method: DELETE
      path: /notes/{{note_id}}
      accept: [204]

  read-team-note:
    method: GET
    path: /notes/{{note_id}}
    setup:
      method: POST
      path: /notes
      headers: {Content-Type: application/json}
      body: '{"title": "tocsin-team-{{uuid}}", "body": "for everyone", "shared": true}'
      accept: [201]
      extract: {note_id: id}
    list: *notes-list
    teardown: *delete-note

  update-note:
    method: PUT
    path: /notes/{{note_id}}
    headers: {Content-Type: application/json}
    body: '{"title": "tocsin-changed-{{uuid}}"}'
    destructive: true
    setup: *new-note
    list: *notes-list
    verify: &read-note
      method: GET
      path: /notes/{{note_id}}
      accept: [200]
      reject: [404]
    teardown: *delete-note

  delete-note:
    method: DELETE
    path: /notes/{{note_id}}
    destructive: true
    setup: *new-note
    list: *notes-list
    verify: *read-note
    teardown: *delete-note

  list-accounts:
    method: GET
    path: /admin/accounts
    privileged: true

  moderate-note:
    method: DELETE
    path: /admin/notes/{{note_id}}
    privileged: true
    destructive: true
    setup: *new-note
    verify: *read-note
    teardown: *delete-note

  update-profile:
    as: newcomer
    method: PATCH
    path: /account
    headers: {Content-Type: application/json}
    body: '{"display_name": "tocsin-{{seq}}"}'
    destructive: true
    assign: {tier: '"platinum"'}
    verify:
      method: GET
      path: /account

checks:
  toctou/revoked-token-accepted:
    identity: alice
    probes: [read-item]
  toctou/scope-downgrade-ignored:
    identity: alice
    probes: [read-report]
  toctou/inflight-revocation:
    identity: alice
    verifier: bob
    probes: [delete-item]
  race/limit-overrun:
    identity: alice
    probes: [redeem-coupon, order-with-referral, claim-bonus]
  auth/missing:
    identity: alice
    probes: [read-daily-report, read-item]
  jwt/none-algorithm:
    identity: alice
    verifier: bob
    probes: [whoami-none]
  jwt/signature-not-verified:
    identity: alice
    verifier: bob
    probes: [whoami-unverified]
  jwt/embedded-key:
    identity: alice
    verifier: bob
    probes: [whoami-embedded]
  jwt/weak-hmac-secret:
    identity: legacy
    probes: [legacy-whoami]
  jwt/algorithm-confusion:
    identity: sso
    probes: [sso-whoami]
  jwt/expired-accepted:
    identity: legacy
    probes: [legacy-session]
  authz/bola:
    identity: bob
    owner: alice
    probes: [read-note, update-note, delete-note, read-team-note, read-item]
  authz/bfla:
    identity: bob
    owner: alice
    probes: [list-accounts, moderate-note]
  authz/mass-assignment:
    identity: newcomer
    probes: [update-profile]
`)

// surfaceConfigTemplate is the shortest config that scans the lab: the origin, the lab's OpenAPI
// document, the identities with their hooks, and which operations may write. No probes, no checks:
// every check that fits the document's operations runs on them.
var surfaceConfigTemplate = withIdentities("surface", `# tocsin scan configuration for the [[.Flavor]] lab at [[.URL]], from its OpenAPI document.
version: 1
target:
  origins:
    - [[.URL]]
openapi:
  source: [[.URL]]/openapi.json
  destructive: [createItem, deleteItem, createCoupon, deleteCoupon, createNote, updateNote, deleteNote, updateAccount]
  single_use: [redeemCoupon]
identities:
[[template "alice-and-bob" .]][[template "newcomer" .]][[template "legacy-and-sso" .]]`)

var usageTemplate = template.Must(template.New("usage").Parse(`tocsin lab, {{.Flavor}} flavour, at {{.URL}}
{{if eq .Flavor "vulnerable"}}  {{.Revocation}}.
  Scope changes are seen after up to {{.PermissionTTL}} (permission cache), and a DELETE acts on the decision
  made when it arrived, {{.ActionGap}} later.
{{else}}  Every action runs inside guard.Do: revocations and scope changes take effect at once, and are
  acknowledged only after actions already running on the token have finished.
{{end}}
Get a token for alice (password grant; bob/bob-password works too):
  TOKEN=$(curl -s -u {{.ClientID}}:{{.ClientSecret}} -d grant_type=password -d username=alice \
    -d password=alice-password -d 'scope=items:read items:write items:delete reports:read' \
    {{.URL}}/oauth/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

Call the API:
  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"name":"demo"}' {{.URL}}/items
  curl -s -H "Authorization: Bearer $TOKEN" {{.URL}}/items/ITEM_ID
  curl -s -X DELETE -H "Authorization: Bearer $TOKEN" {{.URL}}/items/ITEM_ID
  curl -s -H "Authorization: Bearer $TOKEN" {{.URL}}/reports/summary

Introspect (RFC 7662) and revoke (RFC 7009) the token:
  curl -s -u {{.ClientID}}:{{.ClientSecret}} -d "token=$TOKEN" {{.URL}}/oauth/introspect
  curl -s -u {{.ClientID}}:{{.ClientSecret}} -d "token=$TOKEN" -d token_type_hint=access_token {{.URL}}/oauth/revoke
{{if ne .Flavor "vulnerable"}}
Logins also return a refresh_token that works once; trade it for the next access token (a replayed
one revokes its whole family):
  curl -s -u {{.ClientID}}:{{.ClientSecret}} -d grant_type=refresh_token -d "refresh_token=$REFRESH" {{.URL}}/oauth/token
{{end}}
Tokens checked the ways real code gets wrong ({{if eq .Flavor "vulnerable"}}one mistake per route{{else}}every route verifies correctly{{end}}):
  curl -s -H "Authorization: Bearer $TOKEN" {{.URL}}/jwt/none/whoami    (also /jwt/unverified/whoami, /jwt/embedded/whoami)
  curl -s -H 'Content-Type: application/json' -d '{"username":"alice","password":"alice-password"}' {{.URL}}/legacy/login
    (HS256 tokens that live 2 s: GET /legacy/whoami, GET /legacy/session; POST /sso/login is the same for RS256)
  curl -s {{.URL}}/sso/.well-known/openid-configuration

Between accounts: notes belong to who wrote them, and only alice, an admin, may use /admin
({{if eq .Flavor "vulnerable"}}here anyone may: bob reads alice's notes and a user can PATCH its own role{{else}}here bob gets 404 for alice's notes and 403 at /admin, and PATCH /account takes display_name only{{end}}):
  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"title":"mine"}' {{.URL}}/notes
  curl -s -H "Authorization: Bearer $TOKEN" {{.URL}}/notes/NOTE_ID
  curl -s -H "Authorization: Bearer $TOKEN" {{.URL}}/admin/accounts
  curl -s -X PATCH -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"display_name":"me"}' {{.URL}}/account

Downgrade alice (drop reports:read), then restore her:
  curl -s -X PUT -H 'Authorization: Bearer {{.AdminKey}}' -H 'Content-Type: application/json' \
    -d '{"scopes": ["items:read", "items:write", "items:delete"]}' {{.URL}}/idp/subjects/alice/scopes
  curl -s -X PUT -H 'Authorization: Bearer {{.AdminKey}}' -H 'Content-Type: application/json' \
    -d '{"scopes": ["items:read", "items:write", "items:delete", "reports:read"]}' {{.URL}}/idp/subjects/alice/scopes
`))

// templateData is what both templates may use.
func (l *Lab) templateData() map[string]any {
	return map[string]any{
		"URL":              l.url,
		"Flavor":           l.opts.Flavor,
		"ClientID":         clientID,
		"ClientSecret":     l.idp.clientSecret,
		"AdminKey":         l.idp.adminKey,
		"IntrospectionTTL": ttlText(l.opts.IntrospectionTTL.String(), l.opts.IntrospectionTTL < 0),
		"PermissionTTL":    ttlText(l.opts.PermissionTTL.String(), l.opts.PermissionTTL < 0),
		"ActionGap":        l.opts.ActionGap.String(),
		"Revocation":       l.revocationText(),
	}
}

// revocationText says how the vulnerable API learns of a revocation, and so what window to expect.
func (l *Lab) revocationText() string {
	o := l.opts
	switch {
	case o.OfflineJWT:
		return fmt.Sprintf("Tokens are verified offline and revocation is never checked: a revoked token works until its exp\n  (tokens live %s)", o.TokenLifetime)
	case o.DenylistSync > 0:
		return fmt.Sprintf("Tokens are verified offline against a revocation list pulled every %s: a revocation is seen\n  at the next pull", o.DenylistSync)
	case o.PropagationDelay > 0:
		return fmt.Sprintf("Tokens are verified offline against a revocation store read from a replica %s behind: a\n  revocation is seen %s after it was acknowledged", o.PropagationDelay, o.PropagationDelay)
	case o.IntrospectionTTL < 0:
		return "Tokens are introspected on every request (no cache)"
	}
	from := "the request that filled it"
	if o.StampOnAnswer {
		from = "the introspection answer that filled it"
	}
	text := fmt.Sprintf("Revocations are seen after up to %s (introspection cache, counted from %s)", o.IntrospectionTTL, from)
	if o.IntrospectionLatency.Max > 0 {
		text += fmt.Sprintf(";\n  each introspection takes %s", o.IntrospectionLatency)
	}
	return text
}

func ttlText(ttl string, off bool) string {
	if off {
		return "0s (cache off)"
	}
	return ttl
}

// Config parses ConfigYAML with the lab's own secrets for its ${...} references: the config a scan of
// this lab starts from. name labels it in messages.
func (l *Lab) Config(name string) (*config.Config, error) {
	env := l.Env()
	return config.Parse(name, l.ConfigYAML(), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
}

// ConfigYAML returns a scan config for this lab, the same as examples/tocsin.yaml but for the lab's
// URL. It refers to the secrets as ${TOCSIN_LAB_CLIENT_SECRET} and ${TOCSIN_LAB_ADMIN_KEY}; see Env.
func (l *Lab) ConfigYAML() []byte { return ConfigFor(l.url, l.opts.Flavor) }

// SurfaceConfigYAML returns the shortest config that scans this lab: origins, its OpenAPI document
// and identities, and nothing else; checks pick their operations from the document.
func (l *Lab) SurfaceConfigYAML() []byte { return render(surfaceConfigTemplate, l.url, l.opts.Flavor) }

// ConfigFor returns the scan config of a lab of flavor served at url (scheme://host:port), as
// ConfigYAML would once it listens there: `tocsin lab --write-config` writes it without serving.
func ConfigFor(url, flavor string) []byte { return render(configTemplate, url, flavor) }

// OpenAPIFor returns the OpenAPI document of a lab of flavor served at url.
func OpenAPIFor(url, flavor string) []byte { return render(openapiTemplate, url, flavor) }

// render executes one of the documents that depend only on the lab's URL and flavour.
func render(t *template.Template, url, flavor string) []byte {
	var b bytes.Buffer
	data := map[string]any{"URL": url, "Flavor": flavor, "ClientID": clientID, "Surface": t == surfaceConfigTemplate}
	if err := t.Execute(&b, data); err != nil {
		panic("lab: " + t.Name() + " template: " + err.Error()) // the data is fixed: a failure is a bug here
	}
	return b.Bytes()
}

// Usage returns instructions for driving the lab by hand with curl, with its real URL and secrets.
func (l *Lab) Usage() string {
	var b strings.Builder
	if err := usageTemplate.Execute(&b, l.templateData()); err != nil {
		panic("lab: usage template: " + err.Error())
	}
	return b.String()
}
