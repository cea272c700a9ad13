// Package identity holds the principals a scan acts as: where their tokens come from and how to
// revoke, downgrade and restore them.
package identity

import (
	"context"
	"sync"
	"time"

	"github.com/tocsin/tocsin/internal/probe"
)

// Token is one access token.
type Token struct {
	Value  string
	Expiry time.Time // zero when unknown
	// Fields are what the source said about the token besides its value (a command's JSON output,
	// a login's extracts): {{token.id}}, {{token.name}} in hooks and probes. Real APIs revoke a token
	// by its id or name, not by its value.
	Fields map[string]string
}

// Vars are the template variables the token stands for: {{token}} and {{token.<field>}}.
func (t Token) Vars() probe.Vars {
	v := probe.Vars{"token": t.Value}
	for k, f := range t.Fields {
		v["token."+k] = f
	}
	return v
}

// Expired reports whether the token's known expiry has passed, or will within margin.
func (t Token) Expired(margin time.Duration) bool {
	return !t.Expiry.IsZero() && time.Until(t.Expiry) < margin
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
// tok is the token acted on ({{token}}, {{token.id}} in the hook's templates): the token revoked, or
// for a downgrade the token under test; a restore gets the zero Token, and validation refuses
// {{token}} in it.
type Hook interface {
	Run(ctx context.Context, tok Token) error
	// Kind names the hook for messages: "rfc7009", "http", "command".
	Kind() string
	// Manual writes the hook out as a shell command a person can run by hand (a curl command, or
	// the argv), with {{token}} left as a placeholder and every registered secret replaced by its
	// label: what a report shows when a restore failed and must be done by hand.
	Manual() string
}

// Identity is a named principal.
type Identity struct {
	Name   string
	Source Source
	// PerExperiment asks checks for a new token for every experiment (each baseline, each race
	// batch, each in-flight attempt) instead of one per check: with a source that registers a new
	// account per token, every experiment acts as a new account (a welcome bonus per account).
	PerExperiment bool
	// Teardown removes what minting a token created (an account a login registered); it runs at
	// the end of the scan once per token in Minted.
	Teardown []*probe.Probe
	// JWKSURL is where the issuer of the identity's JWTs publishes its public keys; empty: found
	// through the issuer's OpenID discovery document.
	JWKSURL   string
	minted    *mintLog
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
// HTTPHook {Method, URL string; Headers map[string]string; Body string; Expect []int; Vars probe.Vars}
// ({{token}}, its fields and the vars substituted)

// mintLog keeps the tokens a source minted, for the identity's teardown.
type mintLog struct {
	mu     sync.Mutex
	tokens []Token
}

// recordingSource is a Source that logs every token it mints.
type recordingSource struct {
	Source
	log *mintLog
}

func (s recordingSource) Token(ctx context.Context) (Token, error) {
	tok, err := s.Source.Token(ctx)
	if err == nil {
		s.log.mu.Lock()
		s.log.tokens = append(s.log.tokens, tok)
		s.log.mu.Unlock()
	}
	return tok, err
}

// RecordMints makes id's source log every token it mints, for its teardown (Minted).
func (id *Identity) RecordMints() {
	if id.minted == nil {
		id.minted = &mintLog{}
		id.Source = recordingSource{Source: id.Source, log: id.minted}
	}
}

// Minted returns the tokens minted since RecordMints, and forgets them.
func (id *Identity) Minted() []Token {
	if id.minted == nil {
		return nil
	}
	id.minted.mu.Lock()
	defer id.minted.mu.Unlock()
	out := id.minted.tokens
	id.minted.tokens = nil
	return out
}
