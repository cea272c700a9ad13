package lab

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tocsin/tocsin/guard"
)

const (
	clientID     = "tocsin-scanner"
	maxFormBytes = 64 << 10
	tokenTypeJWT = "Bearer"
)

// knownScopes lists every scope the lab understands, in the order responses list them.
var knownScopes = []string{"items:read", "items:write", "items:delete", "reports:read"}

// idp is the lab's identity provider. It is the authority on token state: which tokens exist, which
// are revoked, and which scopes each subject may use now.
type idp struct {
	issuer       string
	signingKey   []byte
	clientSecret string
	adminKey     string
	lifetime     time.Duration
	logger       *slog.Logger
	guard        *guard.Guard // fixed flavour: told of every issue, revocation and scope change
	// accountDeleted, when set, is told of each account DELETE /account removed, so that the API
	// drops what it held for it.
	accountDeleted func(username string)

	mu         sync.Mutex
	passwords  map[string]string       // username -> password; POST /register adds to it
	registered int                     // accounts POST /register created and DELETE /account did not remove
	subjects   map[string][]string     // subject -> scopes it may use now
	tokens     map[string]*tokenRecord // jti -> record
}

type tokenRecord struct {
	subject   string
	scopes    []string
	expires   time.Time
	revoked   bool
	revokedAt time.Time // when the revocation was recorded, before it was acknowledged
}

// tokenClaims are the claims of the lab's access tokens.
type tokenClaims struct {
	Scope    string `json:"scope"`
	ClientID string `json:"client_id"`
	jwt.RegisteredClaims
}

func newIDP(issuer string, lifetime time.Duration, logger *slog.Logger) *idp {
	return &idp{
		issuer:       issuer,
		signingKey:   randomKey(),
		clientSecret: randomText(),
		adminKey:     randomText(),
		lifetime:     lifetime,
		logger:       logger,
		passwords:    map[string]string{"alice": "alice-password", "bob": "bob-password"},
		subjects: map[string][]string{
			"alice":  {"items:read", "items:write", "items:delete", "reports:read"},
			"bob":    {"items:read", "items:write"},
			clientID: {"items:read", "reports:read"}, // the client_credentials service account reads only
		},
		tokens: map[string]*tokenRecord{},
	}
}

// randomKey returns a fresh HS256 key: 256 bits, as RFC 7518 asks for.
func randomKey() []byte {
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand, Go 1.24+)
	return key
}

func (p *idp) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /oauth/token", p.handleToken)
	mux.HandleFunc("POST /oauth/introspect", p.handleIntrospect)
	mux.HandleFunc("POST /oauth/revoke", p.handleRevoke)
	mux.HandleFunc("GET /idp/subjects/{sub}/scopes", p.handleGetScopes)
	mux.HandleFunc("PUT /idp/subjects/{sub}/scopes", p.handleSetScopes)
	p.accountRoutes(mux) // accounts.go
}

// oauthError is an RFC 6749 section 5.2 error response.
type oauthError struct {
	status      int
	code        string
	description string
}

func (e *oauthError) write(w http.ResponseWriter, r *http.Request) {
	if e.code == "invalid_client" && r.Header.Get("Authorization") != "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="tocsin-lab"`)
	}
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.description})
}

func errInvalidRequest(desc string) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_request", desc}
}

var errInvalidClient = &oauthError{http.StatusUnauthorized, "invalid_client", "client authentication failed"}

// parseClientForm reads the form body and authenticates the client by HTTP Basic or by
// client_id/client_secret in the body (RFC 6749 section 2.3.1), never both, never in the URL.
func (p *idp) parseClientForm(w http.ResponseWriter, r *http.Request) *oauthError {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return errInvalidRequest("malformed form body")
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		var errID, errSecret error
		// RFC 6749 form-encodes the Basic credentials before base64.
		id, errID = url.QueryUnescape(id)
		secret, errSecret = url.QueryUnescape(secret)
		if errID != nil || errSecret != nil {
			return errInvalidClient
		}
	}
	if r.PostForm.Has("client_secret") {
		if basic {
			return errInvalidRequest("use one client authentication method, not both")
		}
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	} else if !basic {
		return errInvalidClient
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(clientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(p.clientSecret)) == 1
	if !idOK || !secretOK {
		return errInvalidClient
	}
	return nil
}

func (p *idp) handleToken(w http.ResponseWriter, r *http.Request) {
	if e := p.parseClientForm(w, r); e != nil {
		e.write(w, r)
		return
	}
	var subject string
	switch r.PostFormValue("grant_type") {
	case "password":
		user, password := r.PostFormValue("username"), r.PostFormValue("password")
		if user == "" || password == "" {
			errInvalidRequest("username and password are required").write(w, r)
			return
		}
		p.mu.Lock()
		want, ok := p.passwords[user]
		p.mu.Unlock()
		if !ok || subtle.ConstantTimeCompare([]byte(password), []byte(want)) != 1 {
			(&oauthError{http.StatusBadRequest, "invalid_grant", "wrong username or password"}).write(w, r)
			return
		}
		subject = user
	case "client_credentials":
		subject = clientID
	case "refresh_token":
		p.refresh(w, r)
		return
	case "":
		errInvalidRequest("grant_type is required").write(w, r)
		return
	default:
		(&oauthError{http.StatusBadRequest, "unsupported_grant_type", "use password, client_credentials or refresh_token"}).write(w, r)
		return
	}

	scopes := grantableScopes(strings.Fields(r.PostFormValue("scope")), p.subjectScopes(subject))
	if len(scopes) == 0 {
		(&oauthError{http.StatusBadRequest, "invalid_scope", "none of the requested scopes is allowed"}).write(w, r)
		return
	}
	// A refresh token goes with a user's login only: a client can always ask for a new token.
	withRefresh := subject != clientID
	token, refresh, err := p.issue(r, subject, scopes, withRefresh)
	if err != nil {
		p.logger.Error("issue token", "err", err)
		(&oauthError{http.StatusInternalServerError, "server_error", "could not issue a token"}).write(w, r)
		return
	}
	body := map[string]any{
		"access_token": token,
		"token_type":   tokenTypeJWT,
		"expires_in":   int(p.lifetime / time.Second),
		"scope":        strings.Join(scopes, " "),
	}
	if refresh != "" {
		body["refresh_token"] = refresh
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, body)
}

// grantableScopes is requested ∩ allowed in allowed's order; an empty request asks for all allowed.
func grantableScopes(requested, allowed []string) []string {
	if len(requested) == 0 {
		return slices.Clone(allowed)
	}
	var out []string
	for _, s := range allowed {
		if slices.Contains(requested, s) {
			out = append(out, s)
		}
	}
	return out
}

// issue signs a token, records it, and, in the fixed flavour, records its grant before anyone can
// present it.
func (p *idp) issue(r *http.Request, subject string, scopes []string, withRefresh bool) (token, refresh string, err error) {
	id, expires := randomText(), p.expiry(time.Now())
	if p.guard != nil && withRefresh {
		// The fixed flavour hands out a refresh token with each login: a family on guard, so that a
		// refresh token works once and a replayed one revokes everything the family issued.
		gr := guard.Grant{ID: id, Subject: subject, Scopes: scopes, Expires: expires}
		if refresh, err = p.guard.StartFamily(r.Context(), gr, refreshLifetime); err != nil {
			return "", "", err
		}
	} else if p.guard != nil {
		gr := guard.Grant{ID: id, Subject: subject, Scopes: scopes, Expires: expires}
		if err = p.guard.Grant(r.Context(), gr); err != nil {
			return "", "", err
		}
	}
	token, err = p.sign(id, subject, scopes, expires)
	return token, refresh, err
}

// refreshLifetime bounds a refresh family: long enough for a demo session, short for a lab.
const refreshLifetime = 12 * time.Hour

// expiry is when a token issued at now expires, in the whole seconds a JWT carries, so that every
// check agrees on it.
func (p *idp) expiry(now time.Time) time.Time {
	return jwt.NewNumericDate(now.Add(p.lifetime)).Time
}

// sign makes the JWT for an access grant and records it.
func (p *idp) sign(id, subject string, scopes []string, expires time.Time) (string, error) {
	now := time.Now()
	claims := tokenClaims{
		Scope:    strings.Join(scopes, " "),
		ClientID: clientID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    p.issuer,
			Subject:   subject,
			ID:        id,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(expires),
		},
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(p.signingKey)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, t := range p.tokens { // drop expired records so a long-running lab stays small
		if now.After(t.expires) {
			delete(p.tokens, id)
		}
	}
	p.tokens[id] = &tokenRecord{subject: subject, scopes: scopes, expires: expires}
	return token, nil
}

// refresh trades a refresh token for the next access token of its family (fixed flavour only).
func (p *idp) refresh(w http.ResponseWriter, r *http.Request) {
	if p.guard == nil {
		(&oauthError{http.StatusBadRequest, "unsupported_grant_type", "the vulnerable lab issues no refresh tokens; use the fixed flavour"}).write(w, r)
		return
	}
	rt := r.PostFormValue("refresh_token")
	if rt == "" {
		errInvalidRequest("refresh_token is required").write(w, r)
		return
	}
	id, expires := randomText(), p.expiry(time.Now())
	gr, next, err := p.guard.Rotate(r.Context(), rt, id, expires, refreshLifetime)
	switch {
	case errors.Is(err, guard.ErrRefreshReused):
		(&oauthError{http.StatusBadRequest, "invalid_grant", "refresh token used twice: its whole family is revoked; log in again"}).write(w, r)
		return
	case errors.Is(err, guard.ErrDenied):
		(&oauthError{http.StatusBadRequest, "invalid_grant", "refresh token unknown, expired or revoked"}).write(w, r)
		return
	case err != nil:
		p.logger.Error("rotate refresh token", "err", err)
		(&oauthError{http.StatusServiceUnavailable, "temporarily_unavailable", "could not rotate the refresh token"}).write(w, r)
		return
	}
	token, err := p.sign(gr.ID, gr.Subject, gr.Scopes, gr.Expires)
	if err != nil {
		p.logger.Error("issue token", "err", err)
		(&oauthError{http.StatusInternalServerError, "server_error", "could not issue a token"}).write(w, r)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  token,
		"token_type":    tokenTypeJWT,
		"expires_in":    int(time.Until(gr.Expires) / time.Second),
		"scope":         strings.Join(gr.Scopes, " "),
		"refresh_token": next,
	})
}

// verify checks a token's signature, issuer and expiry: what the token says of itself. Whether it
// was revoked is the token records' business.
func (p *idp) verify(token string) (*tokenClaims, error) {
	return p.parse(token, jwt.WithExpirationRequired())
}

func (p *idp) parse(token string, opts ...jwt.ParserOption) (*tokenClaims, error) {
	opts = append(opts, jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer(p.issuer))
	var claims tokenClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return p.signingKey, nil }, opts...)
	if err != nil {
		return nil, err
	}
	if claims.ID == "" || claims.Subject == "" {
		return nil, errors.New("token lacks jti or sub")
	}
	return &claims, nil
}

// introspection is the RFC 7662 view of a token.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Subject   string `json:"sub,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Expires   int64  `json:"exp,omitempty"`
	IssuedAt  int64  `json:"iat,omitempty"`
	TokenID   string `json:"jti,omitempty"`
	Issuer    string `json:"iss,omitempty"`
}

// introspect answers whether token is active now: well signed, not expired, issued here and not
// revoked.
func (p *idp) introspect(token string) introspection {
	claims, err := p.verify(token)
	if err != nil {
		return introspection{}
	}
	p.mu.Lock()
	rec, ok := p.tokens[claims.ID]
	active := ok && !rec.revoked
	p.mu.Unlock()
	if !active {
		return introspection{}
	}
	return claims.introspection()
}

// introspection is the RFC 7662 view of an active token with these claims.
func (c *tokenClaims) introspection() introspection {
	return introspection{
		Active:    true,
		Scope:     c.Scope,
		ClientID:  c.ClientID,
		Subject:   c.Subject,
		TokenType: tokenTypeJWT,
		Expires:   c.ExpiresAt.Unix(),
		IssuedAt:  c.IssuedAt.Unix(),
		TokenID:   c.ID,
		Issuer:    c.Issuer,
	}
}

func (p *idp) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	if e := p.parseClientForm(w, r); e != nil {
		e.write(w, r)
		return
	}
	token := r.PostFormValue("token")
	if token == "" {
		errInvalidRequest("token is required").write(w, r)
		return
	}
	writeJSON(w, http.StatusOK, p.introspect(token))
}

// handleRevoke implements RFC 7009. In the fixed flavour it answers only after guard.Revoke has
// returned, so the acknowledgement means no action authorized by the token is still running.
func (p *idp) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if e := p.parseClientForm(w, r); e != nil {
		e.write(w, r)
		return
	}
	token := r.PostFormValue("token")
	if token == "" {
		errInvalidRequest("token is required").write(w, r)
		return
	}
	// token_type_hint is only a hint (RFC 7009 section 2.1): access tokens are all there is here.
	// An expired token can still be revoked; an unknown or forged one is answered 200 all the same.
	claims, err := p.parse(token, jwt.WithoutClaimsValidation())
	if err != nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	if claims.ClientID != clientID {
		(&oauthError{http.StatusBadRequest, "unauthorized_client", "the token was issued to another client"}).write(w, r)
		return
	}
	p.mu.Lock()
	if rec, ok := p.tokens[claims.ID]; ok && !rec.revoked {
		rec.revoked, rec.revokedAt = true, time.Now()
	}
	p.mu.Unlock()
	if p.guard != nil {
		if err := p.guard.Revoke(r.Context(), claims.ID); err != nil {
			// The token is revoked, but the running actions were not waited for: do not say 200.
			(&oauthError{http.StatusServiceUnavailable, "temporarily_unavailable", "revoked; running actions not yet finished"}).write(w, r)
			return
		}
	}
	p.logger.Info("token revoked", "sub", claims.Subject)
	w.WriteHeader(http.StatusOK)
}

// revokedIDs lists the IDs of the revoked tokens that have not expired: the revocation list an API
// that verifies tokens itself pulls from time to time.
func (p *idp) revokedIDs() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]bool{}
	for id, rec := range p.tokens {
		if rec.revoked {
			out[id] = true
		}
	}
	return out
}

// activeTokens counts subject's access tokens that are neither revoked nor expired.
func (p *idp) activeTokens(subject string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, now := 0, time.Now()
	for _, rec := range p.tokens {
		if rec.subject == subject && !rec.revoked && rec.expires.After(now) {
			n++
		}
	}
	return n
}

// revokedAsOf reports whether the token with this ID had been revoked by the moment at: what a read
// of the revocation store at a bounded staleness (a replica that lags by a fixed time) sees.
func (p *idp) revokedAsOf(id string, at time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	rec, ok := p.tokens[id]
	return ok && rec.revoked && !rec.revokedAt.After(at)
}

// subjectScopes returns the scopes subject may use now, nil for an unknown subject.
func (p *idp) subjectScopes(subject string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.subjects[subject])
}

// adminAuthorized checks the admin key in constant time.
func (p *idp) adminAuthorized(w http.ResponseWriter, r *http.Request) bool {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok && subtle.ConstantTimeCompare([]byte(key), []byte(p.adminKey)) == 1 {
		return true
	}
	writeInvalidToken(w, "admin key required")
	return false
}

type scopesBody struct {
	Subject string   `json:"subject,omitempty"`
	Scopes  []string `json:"scopes"`
}

func (p *idp) handleGetScopes(w http.ResponseWriter, r *http.Request) {
	if !p.adminAuthorized(w, r) {
		return
	}
	sub := r.PathValue("sub")
	p.mu.Lock()
	scopes, ok := p.subjects[sub]
	scopes = slices.Clone(scopes)
	p.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no subject %q", sub))
		return
	}
	if scopes == nil {
		scopes = []string{}
	}
	writeJSON(w, http.StatusOK, scopesBody{Subject: sub, Scopes: scopes})
}

// handleSetScopes downgrades or restores a subject. In the fixed flavour it answers only after
// guard.SetScopes has returned, so no action using a removed scope is still running.
func (p *idp) handleSetScopes(w http.ResponseWriter, r *http.Request) {
	if !p.adminAuthorized(w, r) {
		return
	}
	sub := r.PathValue("sub")
	var body scopesBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", `body must be {"scopes": ["..."]}`)
		return
	}
	var scopes []string
	for _, s := range knownScopes { // known scopes only, deduplicated, in a stable order
		if slices.Contains(body.Scopes, s) {
			scopes = append(scopes, s)
		}
	}
	if len(scopes) != len(body.Scopes) {
		writeError(w, http.StatusBadRequest, "invalid_scope", "unknown or repeated scope; known scopes: "+strings.Join(knownScopes, " "))
		return
	}
	p.mu.Lock()
	_, ok := p.subjects[sub]
	if ok {
		p.subjects[sub] = scopes
	}
	p.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no subject %q", sub))
		return
	}
	if p.guard != nil {
		if err := p.guard.SetScopes(r.Context(), sub, scopes); err != nil {
			writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "changed; running actions not yet finished")
			return
		}
	}
	p.logger.Info("subject scopes set", "sub", sub, "scopes", scopes)
	w.WriteHeader(http.StatusNoContent)
}
