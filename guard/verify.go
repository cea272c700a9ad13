package guard

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Verifier checks what a bearer token says of itself (signature or the issuer's word, issuer,
// expiry) and returns the grant it carries. It never decides whether the grant may act now: that is
// [Guard.Do]'s check, made at the moment of the action. [JWT] and [Introspection] are Verifiers.
type Verifier interface {
	Verify(ctx context.Context, token string) (Grant, error)
}

// JWT verifies signed JSON Web Tokens. A token must carry exp, jti (the grant ID) and sub, and be
// signed with one of Algorithms; scopes come from the "scope" claim (space separated, RFC 8693) or
// an "scp" array.
type JWT struct {
	Key        any      // []byte for HS*, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	Algorithms []string // the accepted "alg" values, such as {"ES256"}; required, so "none" or a swapped algorithm never passes
	Issuer     string   // required "iss", unless empty
	Audience   string   // required in "aud", unless empty
	Leeway     time.Duration
}

// jwtClaims are the claims JWT reads.
type jwtClaims struct {
	Scope string   `json:"scope"`
	Scp   []string `json:"scp"`
	jwt.RegisteredClaims
}

// Verify implements [Verifier].
func (j *JWT) Verify(_ context.Context, token string) (Grant, error) {
	if len(j.Algorithms) == 0 {
		return Grant{}, errors.New("guard: JWT: no Algorithms set (hint: pin the one your issuer signs with, such as ES256)")
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(j.Algorithms), jwt.WithExpirationRequired(), jwt.WithLeeway(j.Leeway)}
	if j.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(j.Issuer))
	}
	if j.Audience != "" {
		opts = append(opts, jwt.WithAudience(j.Audience))
	}
	var c jwtClaims
	if _, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return j.Key, nil }, opts...); err != nil {
		return Grant{}, fmt.Errorf("guard: JWT: %w", err)
	}
	if c.ID == "" || c.Subject == "" {
		return Grant{}, errors.New("guard: JWT: token lacks jti or sub, so it names no grant")
	}
	scopes := c.Scp
	if c.Scope != "" {
		scopes = strings.Fields(c.Scope)
	}
	return Grant{ID: c.ID, Subject: c.Subject, Scopes: scopes, Expires: c.ExpiresAt.Time}, nil
}

// Introspection asks an OAuth 2.0 authorization server about a token (RFC 7662). The answer must
// say active, and carry jti, sub and exp.
type Introspection struct {
	URL          string // the introspection endpoint
	ClientID     string // sent with HTTP Basic authentication
	ClientSecret string
	Client       *http.Client // nil: http.DefaultClient; set a timeout on it
}

// maxIntrospectionBytes bounds how much of an answer is read.
const maxIntrospectionBytes = 64 << 10

// Verify implements [Verifier].
func (in *Introspection) Verify(ctx context.Context, token string) (Grant, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return Grant{}, fmt.Errorf("guard: introspection: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if in.ClientID != "" {
		req.SetBasicAuth(url.QueryEscape(in.ClientID), url.QueryEscape(in.ClientSecret))
	}
	client := in.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return Grant{}, fmt.Errorf("%w: introspection at %s: %w", ErrUnavailable, in.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Grant{}, fmt.Errorf("%w: introspection at %s answered %s (hint: check ClientID and ClientSecret)", ErrUnavailable, in.URL, resp.Status)
	}
	return parseIntrospection(io.LimitReader(resp.Body, maxIntrospectionBytes))
}

func parseIntrospection(r io.Reader) (Grant, error) {
	var ans struct {
		Active  bool   `json:"active"`
		Scope   string `json:"scope"`
		Subject string `json:"sub"`
		Expires int64  `json:"exp"`
		ID      string `json:"jti"`
	}
	if err := json.NewDecoder(r).Decode(&ans); err != nil {
		return Grant{}, fmt.Errorf("guard: introspection: reading the answer: %w", err)
	}
	switch {
	case !ans.Active:
		return Grant{}, errors.New("guard: introspection: token is not active")
	case ans.ID == "" || ans.Subject == "" || ans.Expires == 0:
		return Grant{}, errors.New("guard: introspection: answer lacks jti, sub or exp (hint: the server must return them for guard to name the grant)")
	}
	return Grant{ID: ans.ID, Subject: ans.Subject, Scopes: strings.Fields(ans.Scope), Expires: time.Unix(ans.Expires, 0)}, nil
}

// Bearer returns a grantID function for [Guard.Require]: it takes the request's bearer token,
// verifies it with v and returns its grant ID, refusing a token whose expiry has passed. Its errors
// match [ErrDenied], except a verifier's that match [ErrUnavailable] (an introspection endpoint
// down), so that [WriteError] answers them as Require does.
//
// Verified tokens are cached until they expire, so a token presented again skips the signature
// check or the introspection call, and tokens of grants this Guard knows are revoked are refused
// at once. The cache never allows an action: the request still goes through the store's check,
// which is the final word.
func (g *Guard) Bearer(v Verifier) func(*http.Request) (string, error) {
	g.mustBeUsable("Bearer")
	if v == nil {
		panic("guard: Bearer: the Verifier is nil (hint: pass a *guard.JWT or a *guard.Introspection)")
	}
	return func(r *http.Request) (string, error) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			return "", &invalidToken{errors.New("no bearer token")}
		}
		now := g.now()
		key := sha256.Sum256([]byte(token))
		gr, ok := g.cache.verified(key)
		if !ok {
			var err error
			if gr, err = v.Verify(r.Context(), token); err != nil {
				if errors.Is(err, ErrUnavailable) {
					return "", err
				}
				return "", &invalidToken{err}
			}
			g.cache.remember(key, gr)
		}
		if !gr.Expires.IsZero() && !now.Before(gr.Expires) {
			return "", ErrExpired
		}
		if g.cache.isRevoked(gr.ID) {
			return "", ErrRevoked
		}
		return gr.ID, nil
	}
}

// maxCached bounds the cache; when full it is emptied, which costs only speed.
const maxCached = 100_000

// cache speeds up verification and denials. Nothing in it can allow an action: a verified token
// still needs the store's check, and a grant is marked revoked only once it is (revocation is for
// good). A nil *cache caches nothing.
type cache struct {
	mu       sync.Mutex
	tokens   map[[sha256.Size]byte]Grant
	revoked  map[string]bool
	disabled bool // the invalidation channel is down: do not use what may be stale
}

func newCache() *cache {
	return &cache{tokens: map[[sha256.Size]byte]Grant{}, revoked: map[string]bool{}}
}

func (c *cache) verified(key [sha256.Size]byte) (Grant, bool) {
	if c == nil {
		return Grant{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disabled {
		return Grant{}, false
	}
	gr, ok := c.tokens[key]
	return gr, ok
}

func (c *cache) remember(key [sha256.Size]byte, gr Grant) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disabled {
		return
	}
	if len(c.tokens) >= maxCached {
		clear(c.tokens)
	}
	c.tokens[key] = gr
}

func (c *cache) isRevoked(grantID string) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.revoked[grantID]
}

func (c *cache) markRevoked(grantID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.revoked) >= maxCached {
		clear(c.revoked)
	}
	c.revoked[grantID] = true
}

// flush forgets everything and, while disabled, stops caching: used when invalidations may have
// been missed.
func (c *cache) flush(disabled bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.tokens)
	clear(c.revoked)
	c.disabled = disabled
}
