package lab

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"github.com/tocsin/tocsin/internal/config"
)

// configTemplate is examples/tocsin.yaml for this lab's URL, without the commentary. Its delimiters
// are [[ ]] because the config's own probe templates use {{ }}. Secrets stay ${VAR} references, so
// the rendered file can be shown and stored; Env supplies them.
var configTemplate = template.Must(template.New("config").Delims("[[", "]]").Parse(`# tocsin scan configuration for the [[.Flavor]] lab at [[.URL]].
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
  max_response_bytes: 1048576

identities:
  alice:
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
        scopes: [items:read]

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
    setup:
      method: POST
      path: /items
      headers: {Content-Type: application/json}
      body: '{"name": "tocsin-{{greeting}}"}'
      accept: [201]
      extract:
        item_id: id

  delete-item:
    method: DELETE
    path: /items/{{item_id}}
    destructive: true
    accept: [200, 204]
    setup:
      method: POST
      path: /items
      headers: {Content-Type: application/json}
      body: '{"name": "tocsin-delete-me"}'
      accept: [201]
      extract: {item_id: id}
    verify:
      method: GET
      path: /items/{{item_id}}
      accept: [200]
      reject: [404]

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
    probes: [redeem-coupon]
`))

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
func (l *Lab) ConfigYAML() []byte {
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, l.templateData()); err != nil {
		panic("lab: config template: " + err.Error()) // the data is fixed: a failure is a bug here
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
