// Package identity holds the principals a scan acts as: where their tokens come from and how to
// revoke, downgrade and restore them.
package identity

import (
	"context"
	"time"
)

// Token is one access token.
type Token struct {
	Value  string
	Expiry time.Time // zero when unknown
}

// Source yields tokens for one identity. Every token it yields is registered with the scan's redactor.
type Source interface {
	Token(ctx context.Context) (Token, error)
	// Fresh reports whether each call to Token mints a new token (command, oauth2) rather than
	// returning the same one (static). Checks that revoke need fresh tokens.
	Fresh() bool
	// Kind names the source for messages: "static", "command", "oauth2 password", ...
	Kind() string
}

// Hook is a lifecycle action: revoke a token, downgrade or restore the identity. Run returns nil
// once the identity provider has acknowledged the change (a 2xx or expected status, or exit status 0).
type Hook interface {
	Run(ctx context.Context, token string) error
	// Kind names the hook for messages: "rfc7009", "http", "command".
	Kind() string
	// Manual writes the hook out as a shell command a person can run by hand (a curl command, or
	// the argv), with {{token}} left as a placeholder and every registered secret replaced by its
	// label: what a report shows when a restore failed and must be done by hand.
	Manual() string
}

// Identity is a named principal.
type Identity struct {
	Name      string
	Source    Source
	Revoke    Hook // nil when the config gives none
	Downgrade Hook
	Restore   Hook
}

// The constructors below are what internal/target calls; their bodies live in this package's other files.
//
//	func NewStatic(token string, r *redact.Redactor) Source
//	func NewCommand(argv []string, r *redact.Redactor) Source            // argv as is, no substitution
//	func NewOAuth2(o OAuth2, hc *http.Client, r *redact.Redactor) Source // hc from client.Client.HTTPClient
//	func NewRFC7009(o RFC7009, c *client.Client, r *redact.Redactor) Hook
//	func NewHTTPHook(h HTTPHook, c *client.Client, r *redact.Redactor) Hook
//	func NewCommandHook(argv []string, r *redact.Redactor) Hook          // {{token}} in argv; token also in env TOCSIN_TOKEN
//
// OAuth2 {Grant ("password"|"client_credentials"), TokenURL, ClientID, ClientSecret, AuthStyle ("basic"|"post"),
// Username, Password string; Scopes []string}
// RFC7009 {URL, ClientID, ClientSecret, AuthStyle, TokenTypeHint string}
// HTTPHook {Method, URL string; Headers map[string]string; Body string; Expect []int} ({{token}} substituted)
