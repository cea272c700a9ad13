package config

import (
	"errors"
	"strings"
	"testing"
)

// base is a small valid config that the cases below break one way each.
const base = `version: 1
target:
  origins: [https://api.example.com]
identities:
  alice:
    token:
      oauth2:
        grant: client_credentials
        token_url: https://api.example.com/oauth/token
        client_id: scanner
        client_secret: s3cret
    revoke:
      rfc7009:
        url: https://api.example.com/oauth/revoke
        client_id: scanner
  bob:
    token:
      static: bob-token
probes:
  read:
    path: /items
checks:
  toctou/revoked-token-accepted:
    identity: alice
    probes: [read]
`

// edit replaces the first old with new in base; an empty old appends new.
func edit(pairs ...string) string {
	y := base
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] == "" {
			y += pairs[i+1]
			continue
		}
		if !strings.Contains(y, pairs[i]) {
			panic("edit: base has no " + pairs[i])
		}
		y = strings.Replace(y, pairs[i], pairs[i+1], 1)
	}
	return y
}

const (
	downgradeHooks = `    downgrade:
      http: {method: PUT, url: "https://api.example.com/admin/scopes", body: "{}"}
    restore:
      command: [./restore.sh]
`
	// restoreHTTP replaces downgradeHooks' restore command; the cases edit it.
	restoreHTTP = `      http:
        method: PUT
        url: "https://api.example.com/admin/subjects/{{token.id}}/scopes"
        headers: {Authorization: "Bearer {{ token }}"}
`
	deleteProbe = `  del:
    method: DELETE
    path: /items/{{id}}
    destructive: true
    setup:
      method: POST
      path: /items
      extract: {id: id}
    verify:
      path: /items/{{id}}
      reject: [404]
`
)

func TestProblems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yaml  string
		at    string // the problem's line is the first line containing this text
		field string
		msg   string // the problem's message contains this
		hint  string // and its hint this
	}{
		// YAML and decoding.
		{"syntax", edit("  origins: [https://api.example.com]", "  origins: [https://api.example.com"),
			"identities:", "", "invalid YAML", "indentation and quoting"},
		{"tab indentation", edit("    token:\n", "    token:\n\t"), "\t", "", "invalid YAML", "indentation"},
		{"empty file", "# nothing here\n", "# nothing", "", "the config is empty", "examples/tocsin.yaml"},
		{"two documents", base + "---\nversion: 1\n", "---\n>>version", "", "more than one YAML document", "remove the ---"},
		{"not a mapping", "- version\n", "- version", "", "must be a mapping, not a list", "expected fields: version"},
		{"unknown top field", edit("", "limit:\n  rate: 5\n"), "limit:", "limit", `unknown field "limit"`, `did you mean "limits"?`},
		{"unknown nested field", edit("    token:", "    tokn:"), "tokn:", "identities.alice.tokn", `unknown field "tokn"`, `did you mean "token"?`},
		{"unknown field far from any", edit("        client_id: scanner\n        client_secret", "        zzzzzzzzzz: scanner\n        client_secret"),
			"zzzzzzzzzz", "identities.alice.token.oauth2.zzzzzzzzzz", "unknown field", "valid fields here: grant, token_url"},
		{"rfc7009 under downgrade", edit("  bob:", "    downgrade:\n      rfc7009: {url: x}\n  bob:"),
			"rfc7009: {url", "identities.alice.downgrade.rfc7009", `unknown field "rfc7009"`, "valid fields here: http, command"},
		{"duplicate key", edit("target:", "version: 1\ntarget:"), "\n>>version", "version", "duplicate key (first set on line 1)", "keep one"},
		{"duplicate identity", edit("  bob:", "  alice:\n    token: {static: x-token}\n  bob:"), "  alice:\n    token: {",
			"identities.alice", "duplicate key (first set on line 5)", "keep one"},
		{"env unset", edit("client_secret: s3cret", "client_secret: ${NOPE}"), "${NOPE}",
			"identities.alice.token.oauth2.client_secret", "environment variable NOPE is not set", "export NOPE"},
		{"string not list", edit("  origins: [https://api.example.com]", "  origins: https://api.example.com"), "origins:",
			"target.origins", "must be a list, not a string", "write a list, e.g. [https://api.example.com]"},
		{"list not string", edit("client_id: scanner", "client_id: [scanner]"), "client_id: [scanner]",
			"identities.alice.token.oauth2.client_id", "must be a string, not a list", ""},
		{"not a number", edit("", "limits: {request_budget: lots}\n"), "limits:", "limits.request_budget", "must be a whole number", ""},
		{"duration without unit", edit("", "limits:\n  timeout: 5\n"), "timeout:", "limits.timeout", `duration "5" has no unit`, "500ms, 5s or 1m30s"},
		{"bad duration", edit("", "limits:\n  timeout: soon\n"), "timeout:", "limits.timeout", `"soon" is not a duration`, "5s"},
		{"bad bool", edit("    path: /items\n", "    path: /items\n    destructive: maybe\n"), "destructive:", "probes.read.destructive", "must be true or false", ""},
		{"merge key", edit("    token:\n", "    <<: {token: {static: x-token}}\n    token:\n"), "<<:", "identities.alice",
			"merge keys (<<) are not supported", "alias"},
		{"unknown alias", edit("client_id: scanner", "client_id: *nowhere"), "*nowhere", "identities.alice.token.oauth2.client_id",
			"alias *nowhere refers to no anchor before it", "define &nowhere"},

		// A security scheme names one of an OpenAPI document's: without one it can match nothing.
		{"scheme without openapi", edit("    token:\n", "    scheme: oauth2\n    token:\n"), "scheme: oauth2", "identities.alice.scheme",
			"the config has no openapi:", "add openapi: source"},

		// version, target, limits.
		{"version 2", edit("version: 1", "version: 2"), "version:", "version", "unsupported version 2", "version: 1"},
		{"missing version", edit("version: 1\n", ""), "target:", "version", "missing version", "add `version: 1`"},
		{"no origins", edit("  origins: [https://api.example.com]", "  origins: []"), "origins:", "target.origins", "no origins", "scheme://host[:port]"},
		{"origin with path", edit("  origins: [https://api.example.com]", "  origins: [https://api.example.com/v1]"), "origins:",
			"target.origins[0]", `origin "https://api.example.com/v1" has a path`, "paths belong in probes"},
		{"origin with query", edit("  origins: [https://api.example.com]", "  origins: [\"https://api.example.com?x=1\"]"), "origins:",
			"target.origins[0]", `origin "https://api.example.com" is followed by a query or fragment`, "scheme://host[:port]"},
		{"origin scheme", edit("  origins: [https://api.example.com]", "  origins:\n    - https://api.example.com\n    - ftp://files.example.com"),
			"ftp://", "target.origins[1]", "must use http or https", "scheme://host[:port]"},
		{"origin credentials", edit("  origins: [https://api.example.com]", "  origins: [\"https://me:pw@api.example.com\"]"), "origins:",
			"target.origins[0]", "origin must not contain credentials", ""},
		{"zero rate", edit("", "limits:\n  rate: 0\n"), "rate:", "limits.rate", "must be positive", "requests per second"},
		{"rate too high", edit("", "limits:\n  rate: 20000\n"), "rate:", "limits.rate", "too fast", "at most 10000"},
		{"budget negative", edit("", "limits:\n  request_budget: -1\n"), "request_budget", "limits.request_budget", "must be positive", "2000"},
		{"timeout too long", edit("", "limits:\n  timeout: 10m\n"), "timeout:", "limits.timeout", "10m0s is too long", "at most 5m0s"},
		{"max_window too long", edit("", "limits:\n  max_window: 2h\n"), "max_window:", "limits.max_window", "2h0m0s is too long", "at most 1h0m0s"},
		{"precision too fine", edit("", "limits:\n  precision: 100us\n"), "precision:", "limits.precision", "finer than a replay", "at least 500µs"},
		{"precision over the max window", edit("", "limits:\n  max_window: 2s\n  precision: 3s\n"), "precision:", "limits.precision", "longer than limits.max_window", "a few milliseconds"},
		{"max_response_bytes zero", edit("", "limits:\n  max_response_bytes: 0\n"), "max_response_bytes", "limits.max_response_bytes", "must be positive", "1 MiB"},

		// identities.
		{"token url off origin", edit("token_url: https://api.example.com/oauth/token", "token_url: https://idp.example.org/oauth/token"),
			"token_url:", "identities.alice.token.oauth2.token_url", "origin https://idp.example.org is not allowed", "add https://idp.example.org to target.origins"},
		{"token url relative", edit("token_url: https://api.example.com/oauth/token", "token_url: /oauth/token"),
			"token_url:", "identities.alice.token.oauth2.token_url", "not an absolute http(s) URL", "https://idp.example/oauth/token"},
		{"two token sources", edit("      static: bob-token", "      static: bob-token\n      command: [./token.sh]"), "  bob:>>token:",
			"identities.bob.token", "more than one token source (static, command)", "keep exactly one"},
		{"no token source", edit("      static: bob-token", "      {}"), "  bob:>>token:", "identities.bob.token", "missing token source", "static, command, oauth2 or http"},
		{"empty static", edit("static: bob-token", `static: ""`), "static:", "identities.bob.token.static", "the static token is empty", "${ALICE_TOKEN}"},
		{"env empty", edit("static: bob-token", "static: ${EMPTY}"), "static:", "identities.bob.token.static", "environment variable EMPTY is set but empty", "give EMPTY a value"},
		{"unknown grant", edit("grant: client_credentials", "grant: implicit"), "grant:", "identities.alice.token.oauth2.grant",
			`unsupported grant "implicit"`, "password or client_credentials"},
		{"password grant without username", edit("grant: client_credentials", "grant: password\n        password: pw-1234"), "      oauth2:",
			"identities.alice.token.oauth2", "missing username", "username and password"},
		{"client_credentials without secret", edit("        client_secret: s3cret\n", ""), "      oauth2:",
			"identities.alice.token.oauth2", "missing client_secret", "${CLIENT_SECRET}"},
		{"auth_style", edit("client_secret: s3cret", "client_secret: s3cret\n        auth_style: header"), "auth_style:",
			"identities.alice.token.oauth2.auth_style", `unknown auth_style "header"`, "basic (HTTP Basic) or post"},
		{"token command empty", edit("static: bob-token", "command: []"), "command: []", "identities.bob.token.command", "empty command", "get-token.sh"},
		{"token command template", edit("static: bob-token", `command: [./t.sh, "{{token}}"]`), "command:", "identities.bob.token.command[1]",
			"unknown variable {{token}}", "only {{identity}}"},
		{"empty revoke", edit("      rfc7009:\n        url: https://api.example.com/oauth/revoke\n        client_id: scanner\n", "      {}\n"),
			"    revoke:", "identities.alice.revoke", "empty hook", "rfc7009, http or command"},
		{"two revoke hooks", edit("    revoke:\n", "    revoke:\n      command: [./revoke.sh]\n"), "    revoke:",
			"identities.alice.revoke", "more than one hook (rfc7009, command)", "keep exactly one"},
		{"rfc7009 missing url", edit("        url: https://api.example.com/oauth/revoke\n", ""), "rfc7009:",
			"identities.alice.revoke.rfc7009", "missing url", "the RFC 7009 revocation endpoint, e.g. https://idp.example/oauth/revoke"},
		{"rfc7009 url off origin", edit("url: https://api.example.com/oauth/revoke", "url: http://api.example.com/oauth/revoke"), "oauth/revoke",
			"identities.alice.revoke.rfc7009.url", "origin http://api.example.com is not allowed", "add http://api.example.com to target.origins"},
		{"rfc7009 token hint", edit("        client_id: scanner\n  bob", "        client_id: scanner\n        token_type_hint: id_token\n  bob"),
			"token_type_hint", "identities.alice.revoke.rfc7009.token_type_hint", `unknown token_type_hint "id_token"`, "access_token or refresh_token"},
		{"downgrade without restore", edit("  bob:", "    downgrade:\n      command: [./drop.sh]\n  bob:"), "downgrade:",
			"identities.alice.downgrade", "downgrade without restore", "add restore"},
		{"http hook method", edit("  bob:", strings.Replace(downgradeHooks, "PUT", "FETCH", 1)+"  bob:"), "FETCH",
			"identities.alice.downgrade.http.method", `unknown method "FETCH"`, "GET, HEAD, POST"},
		{"http hook missing url", edit("  bob:", strings.Replace(downgradeHooks, `url: "https://api.example.com/admin/scopes", `, "", 1)+"  bob:"),
			"http: {method", "identities.alice.downgrade.http", "missing url", "https://idp.example/admin/logout"},
		{"http hook template", edit("  bob:", strings.Replace(downgradeHooks, `body: "{}"`, `body: "{{subject}}"`, 1)+"  bob:"),
			"http: {method", "identities.alice.downgrade.http.body", "unknown variable {{subject}}", "a hook knows {{token}}"},
		{"http hook expect", edit("  bob:", strings.Replace(downgradeHooks, `body: "{}"`, `expect: [2000]`, 1)+"  bob:"),
			"http: {method", "identities.alice.downgrade.http.expect[0]", "2000 is not an HTTP status", "100 to 599"},
		{"restore command empty", edit("  bob:", strings.Replace(downgradeHooks, "[./restore.sh]", "[]", 1)+"  bob:"),
			"command: []", "identities.alice.restore.command", "empty command", `["./restore.sh", "alice"]`},
		// A restore runs with no token (internal/check/restore.go): {{token}} would be empty and
		// {{token.id}} unknown, found only after the downgrade it was to undo.
		{"restore token field", edit("  bob:", strings.Replace(downgradeHooks, "      command: [./restore.sh]\n", restoreHTTP, 1)+"  bob:"),
			"/subjects/{{token.id}}", "identities.alice.restore.http.url", "{{token.id}} in a restore, which runs with no token",
			"acts on the identity, not on one token, and knows only the vars (none is defined): name the identity as written, with a ${VAR} or with a var under vars"},
		{"restore token header", edit("  bob:", strings.Replace(downgradeHooks, "      command: [./restore.sh]\n", restoreHTTP, 1)+"  bob:"),
			"Bearer {{ token }}", "identities.alice.restore.http.headers.Authorization", "{{token}} in a restore, which runs with no token", "acts on the identity"},
		{"restore token argument", edit("  bob:", strings.Replace(downgradeHooks, "[./restore.sh]", `[./restore.sh, "{{token}}"]`, 1)+"  bob:"),
			"[./restore.sh, ", "identities.alice.restore.command[1]", "{{token}} in a restore, which runs with no token",
			`its arguments know no {{variable}}: name the identity as written or with a ${VAR}, e.g. ["./restore.sh", "alice"]`},
		{"restore knows the vars", edit("", "vars: {subject: alice, tenant: t1}\n", "  bob:",
			strings.Replace(downgradeHooks, "      command: [./restore.sh]\n", strings.Replace(restoreHTTP, "{{token.id}}", "{{subjct}}", 1), 1)+"  bob:"),
			"/subjects/{{subjct}}", "identities.alice.restore.http.url", "unknown variable {{subjct}}",
			"knows only the vars ({{subject}}, {{tenant}}): name the identity with one of them"},
		{"header name", edit("  bob:", strings.Replace(downgradeHooks, `body: "{}"`, `headers: {"Bad Header": x}`, 1)+"  bob:"),
			"http: {method", "identities.alice.downgrade.http.headers.Bad Header", `"Bad Header" is not a valid header name`, "Content-Type"},

		// vars and probes.
		{"var named token", edit("", "vars: {token: x}\n"), "vars:", "vars.token", "token is reserved", "rename"},
		{"probe method", edit("    path: /items\n", "    path: /items\n    method: FETCH\n"), "method: FETCH", "probes.read.method",
			`unknown method "FETCH"`, "GET, HEAD, POST"},
		{"probe missing path", edit("    path: /items\n", "    method: GET\n"), "  read:", "probes.read", "missing path", "/items/{{item_id}}"},
		{"probe relative path", edit("path: /items", "path: items"), "path: items", "probes.read.path", "path must start with / or be an absolute URL", "/items/{{item_id}}"},
		{"probe scheme-relative path", edit("path: /items", "path: //evil.example/items"), "path: //", "probes.read.path", "names another host", "single /"},
		{"probe absolute path off origin", edit("path: /items", "path: https://other.example.com/items"), "path: https", "probes.read.path",
			"origin https://other.example.com is not allowed", "add https://other.example.com to target.origins"},
		{"probe templated host", edit("path: /items", "path: https://{{host}}/items"), "path: https", "probes.read.path",
			"origin contains a {{variable}}", "write the scheme and host literally"},
		{"delete not destructive", edit("  read:\n    path: /items\n", "  read:\n    method: DELETE\n    path: /items/1\n"), "method: DELETE",
			"probes.read.destructive", "DELETE probe not marked destructive", "tocsin only changes resources it created"},
		{"delete without setup", edit("  read:\n    path: /items\n", "  read:\n    method: DELETE\n    destructive: true\n    path: /items/1\n"), "  read:",
			"probes.read", "DELETE probe without a setup", "tocsin only changes what it created"},
		{"status out of range", edit("    path: /items\n", "    path: /items\n    accept: [200, 99]\n"), "accept:", "probes.read.accept[1]",
			"99 is not an HTTP status", "100 to 599"},
		{"accept and reject overlap", edit("    path: /items\n", "    path: /items\n    accept: [200, 403]\n"), "accept:", "probes.read.reject",
			"status 403 is both accepted and rejected (reject defaults to 401, 403)", "not both"},
		{"default accept overlaps reject", edit("    path: /items\n", "    path: /items\n    reject: [204]\n"), "reject:", "probes.read.reject",
			"status 204 is both accepted and rejected (accept defaults to 200-299)", "not both"},
		{"empty extract path", edit("    path: /items\n", "    path: /items\n    extract: {id: \"\"}\n"), "extract:", "probes.read.extract.id",
			"empty selector", "data.items.0.id"},
		{"selector variable", edit("    path: /items\n", "    path: /items\n    extract: {id: 'items.#(code==\"{{nope}}\").id'}\n"), "extract:", "probes.read.extract.id",
			"unknown variable {{nope}}", "known to its request"},
		{"unknown variable", edit("path: /items", "path: /items/{{item_id}}"), "path: /items", "probes.read.path",
			"unknown variable {{item_id}}", "known here: token"},
		{"unterminated template", edit("path: /items", "path: /items/{{item_id"), "path: /items", "probes.read.path",
			"unterminated {{", "{{name}}"},
		{"setup sees no extract", edit("checks:", deleteProbe+"checks:"), "    setup:", "probes.del.setup.path", "", ""}, // placeholder replaced below
		{"setup with setup", edit("checks:", strings.Replace(deleteProbe, "      extract: {id: id}\n", "      extract: {id: id}\n      setup: {path: /x}\n", 1)+"checks:"),
			"      setup: {path", "probes.del.setup.setup", "a step cannot have its own setup", "make it a step of the top-level probe's setup"},
		{"verify that writes", edit("checks:", strings.Replace(deleteProbe, "      path: /items/{{id}}\n      reject", "      method: DELETE\n      path: /items/{{id}}\n      reject", 1)+"checks:"),
			"      method: DELETE", "probes.del.verify.method", "verify must read, not DELETE", "use GET"},

		// The model of identities and chains.
		{"step as unknown identity", edit("checks:", strings.Replace(deleteProbe, "      method: POST\n", "      method: POST\n      as: carol\n", 1)+"checks:"),
			"as: carol", "probes.del.setup.as", `no identity named "carol"`, "identities: alice, bob, anonymous"},
		{"probe as anonymous", edit("    path: /items\n", "    path: /items\n    as: anonymous\n"), "as: anonymous", "probes.read.as",
			"a probe runs as the identity under test, not anonymous", "name the identity this probe tests"},
		{"copies out of range", edit("    path: /items\n", "    path: /items\n    copies: 1\n"), "copies:", "probes.read.copies", "1 copies", "2 to 100"},
		{"fresh unknown", edit("  bob:\n", "  bob:\n    fresh: always\n"), "fresh:", "identities.bob.fresh", `unknown fresh "always"`, "per-experiment"},
		{"identity named anonymous", edit("  bob:\n", "  anonymous:\n    token: {static: anon-token}\n  bob:\n"), "  anonymous:", "identities.anonymous",
			`"anonymous" is reserved`, "rename"},
		{"login without token", edit("      static: bob-token", "      http: {method: POST, path: /login, extract: {id: token_id}}"), "http:",
			"identities.bob.token.http", "the login extracts no token", "extract: {token: <selector>}"},
		{"login step sees earlier extract only", edit("      static: bob-token", "      http:\n        - {method: POST, path: \"/login/{{sid}}\", extract: {token: t}}\n        - {method: POST, path: /x, extract: {sid: s, token: t}}"),
			"/login/{{sid}}", "identities.bob.token.http[0].path", "unknown variable {{sid}}", "a login step sees"},
		{"step list unknown variable", edit("checks:", strings.Replace(deleteProbe, "    setup:\n      method: POST\n      path: /items\n      extract: {id: id}\n",
			"    setup:\n      - {method: GET, path: \"/lists/{{list}}\", extract: {list: l}}\n      - {method: POST, path: /items, extract: {id: id}}\n", 1)+"checks:"),
			"/lists/{{list}}", "probes.del.setup[0].path", "unknown variable {{list}}", "what earlier steps extracted"},
		{"teardown sees setup extract", edit("checks:", strings.Replace(deleteProbe, "    verify:\n", "    teardown:\n      {method: DELETE, path: \"/items/{{nope}}\"}\n    verify:\n", 1)+"checks:"),
			"/items/{{nope}}", "probes.del.teardown.path", "unknown variable {{nope}}", "known here: token, uuid, random, seq, id"},

		// checks.
		{"no checks", edit("checks:\n  toctou/revoked-token-accepted:\n    identity: alice\n    probes: [read]\n", ""), "version: 1", "checks", "no checks", "toctou/revoked-token-accepted"},
		{"unknown check", edit("toctou/revoked-token-accepted:", "toctou/revoked-token-acepted:"), "acepted", "checks.toctou/revoked-token-acepted",
			`unknown check "toctou/revoked-token-acepted"`, `did you mean "toctou/revoked-token-accepted"?`},
		{"check missing identity", edit("    identity: alice\n", ""), "  toctou/", "checks.toctou/revoked-token-accepted", "missing identity", "alice, bob"},
		{"check unknown identity", edit("identity: alice", "identity: alicee"), "identity: alicee", "checks.toctou/revoked-token-accepted.identity",
			`no identity named "alicee"`, `did you mean "alice"?`},
		{"verifier unknown", edit("    identity: alice\n", "    identity: alice\n    verifier: zed-the-verifier\n"), "verifier:",
			"checks.toctou/revoked-token-accepted.verifier", `no identity named "zed-the-verifier"`, "identities: alice, bob"},
		{"verifier same", edit("    identity: alice\n", "    identity: alice\n    verifier: alice\n"), "verifier:",
			"checks.toctou/revoked-token-accepted.verifier", "the verifier is the identity under test", "second identity"},
		{"check unknown probe", edit("probes: [read]", "probes: [read, reed]"), "probes: [read,", "checks.toctou/revoked-token-accepted.probes[1]",
			`no probe named "reed"`, `did you mean "read"?`},
		{"check without probes", edit("    probes: [read]\n", ""), "  toctou/", "checks.toctou/revoked-token-accepted", "no probes", "probes: [read-item]"},
		{"revoke check needs revoke", edit("identity: alice", "identity: bob"), "identity: bob", "checks.toctou/revoked-token-accepted.identity",
			`identity "bob" has no revoke`, "add revoke (rfc7009, http or command) to identities.bob"},
		{"revoke check needs fresh tokens", edit("      static: bob-token\n", "      static: bob-token\n    revoke: {command: [./r.sh]}\n", "identity: alice", "identity: bob"),
			"identity: bob", "checks.toctou/revoked-token-accepted.identity", `identity "bob" has a static token`, "oauth2, command or http token source"},
		{"downgrade check needs hooks", edit("toctou/revoked-token-accepted:", "toctou/scope-downgrade-ignored:"), "identity: alice",
			"checks.toctou/scope-downgrade-ignored.identity", `identity "alice" needs downgrade and restore`, "add downgrade and restore (http or command) to identities.alice"},
		{"inflight needs verifier", edit("toctou/revoked-token-accepted:", "toctou/inflight-revocation:", "checks:", deleteProbe+"checks:", "probes: [read]", "probes: [del]"),
			"  toctou/", "checks.toctou/inflight-revocation", "missing verifier", "verifier: bob"},
		{"inflight needs setup and verify", edit("toctou/revoked-token-accepted:", "toctou/inflight-revocation:", "identity: alice", "identity: alice\n    verifier: bob"),
			"probes: [read]", "checks.toctou/inflight-revocation.probes[0]", `probe "read" needs a setup and a verify`, "add setup (creates the resource) and verify"},

		// The authz checks: a second identity, and probes that name an object or a privilege.
		{"bola needs owner", edit("toctou/revoked-token-accepted:", "authz/bola:"), "  authz/", "checks.authz/bola", "missing owner", "owner: alice"},
		{"bola owner is identity", edit("toctou/revoked-token-accepted:", "authz/bola:", "identity: alice", "identity: alice\n    owner: alice"),
			"owner: alice", "checks.authz/bola.owner", "the owner is the identity under test", "second identity"},
		{"bola unknown owner", edit("toctou/revoked-token-accepted:", "authz/bola:", "identity: alice", "identity: alice\n    owner: bobb"),
			"owner: bobb", "checks.authz/bola.owner", `no identity named "bobb"`, `did you mean "bob"?`},
		{"bola owner anonymous", edit("toctou/revoked-token-accepted:", "authz/bola:", "identity: alice", "identity: alice\n    owner: anonymous"),
			"owner: anon", "checks.authz/bola.owner", "cannot be anonymous", ""},
		{"owner on a toctou check", edit("identity: alice", "identity: alice\n    owner: bob"), "owner: bob",
			"checks.toctou/revoked-token-accepted.owner", "has no owner", "remove it"},
		{"bola verifier", edit("toctou/revoked-token-accepted:", "authz/bola:", "identity: alice", "identity: alice\n    owner: bob\n    verifier: bob"),
			"verifier: bob", "checks.authz/bola.verifier", "reads back as the owner", "remove verifier"},
		{"bola probe without an object", edit("toctou/revoked-token-accepted:", "authz/bola:", "identity: alice", "identity: alice\n    owner: bob"),
			"probes: [read]", "checks.authz/bola.probes[0]", `probe "read" names no object`, "a list with an extract"},
		{"bola write without verify", edit("toctou/revoked-token-accepted:", "authz/bola:", "identity: alice", "identity: alice\n    owner: bob",
			"checks:", strings.Replace(deleteProbe, "    verify:\n      path: /items/{{id}}\n      reject: [404]\n", "", 1)+"checks:", "probes: [read]", "probes: [del]"),
			"probes: [del]", "checks.authz/bola.probes[0]", `probe "del" changes an object`, "add setup and verify"},
		{"bfla needs privileged", edit("toctou/revoked-token-accepted:", "authz/bfla:", "identity: alice", "identity: alice\n    owner: bob"),
			"probes: [read]", "checks.authz/bfla.probes[0]", `probe "read" is not marked privileged`, "privileged: true"},
		{"mass-assignment needs a body", edit("toctou/revoked-token-accepted:", "authz/mass-assignment:"),
			"probes: [read]", "checks.authz/mass-assignment.probes[0]", `probe "read" needs a JSON body`, "create or update request"},
		{"bola identity per experiment", edit("      static: bob-token\n", "      static: bob-token\n    fresh: per-experiment\n",
			"toctou/revoked-token-accepted:", "authz/bola:", "identity: alice", "identity: alice\n    owner: bob", "    path: /items\n", "    path: /items\n    shared: true\n"),
			"owner: bob", "checks.authz/bola.owner", "minted per experiment", "fresh: per-scan"},
		{"list writes", edit("    path: /items\n", "    path: /items\n    list: {method: POST, path: /items}\n"), "list:",
			"probes.read.list.method", "a list must read, not POST", "use GET"},
		{"list has no as", edit("    path: /items\n", "    path: /items\n    list: {path: /items, as: bob}\n"), "list:",
			"probes.read.list.as", `unknown field "as"`, ""},
		{"list extract feeds the probe", edit("    path: /items\n", "    path: /items/{{other}}\n    list: {path: /items, extract: {id: items.0.id}}\n"), "path: /items/{{other}}",
			"probes.read.path", "unknown variable {{other}}", "known here: token, uuid, random, seq, id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "setup sees no extract" {
				// A setup sees token and vars, not its own extract.
				tc.yaml = edit("checks:", strings.Replace(deleteProbe, "      path: /items\n", "      path: /items/{{id}}\n", 1)+"checks:")
				tc.at, tc.msg, tc.hint = "      path: /items/{{id}}", "unknown variable {{id}}", "what earlier steps extracted"
			}
			_, err := Parse("t.yaml", []byte(tc.yaml), func(name string) (string, bool) {
				if name == "EMPTY" {
					return "", true
				}
				return "", false
			})
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *Error, got %v", err)
			}
			// at is "text", or "before>>text" for the first text after before.
			start, at := 0, tc.at
			if before, after, ok := strings.Cut(at, ">>"); ok {
				start, at = strings.Index(tc.yaml, before), after
			}
			i := strings.Index(tc.yaml[max(start, 0):], at)
			if start < 0 || i < 0 {
				t.Fatalf("bad test: %q not in yaml", tc.at)
			}
			wantLine := strings.Count(tc.yaml[:start+i], "\n") + 1
			for _, p := range ce.Problems {
				if p.Field == tc.field && strings.Contains(p.Msg, tc.msg) {
					if p.Line != wantLine {
						t.Errorf("line %d, want %d: %v", p.Line, wantLine, p)
					}
					if !strings.Contains(p.Hint, tc.hint) {
						t.Errorf("hint %q does not contain %q", p.Hint, tc.hint)
					}
					if p.File != "t.yaml" {
						t.Errorf("file %q", p.File)
					}
					if want := "(hint: " + p.Hint + ")"; p.Hint != "" && !strings.HasSuffix(p.String(), want) {
						t.Errorf("String() %q", p.String())
					}
					return
				}
			}
			t.Errorf("no problem with field %q and message %q in:\n%v", tc.field, tc.msg, err)
		})
	}
}

// What the cases above refuse is what a hook runs without: a downgrade is sent with the token under
// test (internal/check/stale.go), so it may name it; any http hook knows the vars.
func TestHookTemplatesThatRun(t *testing.T) {
	y := edit("", "vars: {subject: alice}\n", "  bob:", `    downgrade:
      http: {method: PUT, url: "https://api.example.com/admin/subjects/{{subject}}/tokens/{{token.id}}", headers: {Authorization: "Bearer {{token}}"}}
    restore:
      http: {method: PUT, url: "https://api.example.com/admin/subjects/{{subject}}/scopes", body: '{"subject": "{{ subject }}"}'}
  bob:`)
	if _, err := Parse("t.yaml", []byte(y), func(string) (string, bool) { return "", false }); err != nil {
		t.Fatal(err)
	}
}
