package lab

import (
	"crypto/subtle"
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Accounts the way most APIs hand out tokens, beside the OAuth2 endpoints: POST /register creates an
// account, POST /login {"username", "password"} answers {"token", "token_id", "expires_in"}, DELETE
// /tokens/{id} revokes a token by its id (as its owner or the admin), DELETE /account removes the
// caller's account. A new account may use items:read and items:write.
//
// POST /bonus/claim is a welcome bonus, one per account: the vulnerable flavour checks "not claimed
// yet", pauses as a database round trip would, then marks it claimed, so synchronised claims of one
// account all succeed; the fixed flavour decides and marks in one step. A scan needs a new account
// per experiment to test it (fresh: per-experiment), since the sequential baseline spends the
// bonus of the account it uses.

// maxAccounts bounds registration: the lab runs unattended in demos.
const maxAccounts = 10_000

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{3,64}$`)

// newAccountScopes are what a registered account may use.
var newAccountScopes = []string{"items:read", "items:write"}

type bonuses struct {
	atomic bool
	mu     sync.Mutex
	paid   map[string]bool // by subject
}

func (p *idp) accountRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /register", p.handleRegister)
	mux.HandleFunc("POST /login", p.handleLogin)
	mux.HandleFunc("DELETE /tokens/{id}", p.handleRevokeByID)
	mux.HandleFunc("DELETE /account", p.handleDeleteAccount)
}

type credentialsBody struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func readCredentials(w http.ResponseWriter, r *http.Request) (credentialsBody, bool) {
	var body credentialsBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes)).Decode(&body); err != nil || body.Username == "" || body.Password == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", `body must be {"username": "...", "password": "..."}`)
		return body, false
	}
	return body, true
}

func (p *idp) handleRegister(w http.ResponseWriter, r *http.Request) {
	body, ok := readCredentials(w, r)
	if !ok {
		return
	}
	if !usernamePattern.MatchString(body.Username) || len(body.Password) < 8 {
		writeError(w, http.StatusBadRequest, "invalid_request", "username: 3 to 64 of A-Z a-z 0-9 . _ -; password: at least 8 characters")
		return
	}
	p.mu.Lock()
	_, taken := p.passwords[body.Username]
	full := len(p.passwords) >= maxAccounts
	if !taken && !full {
		p.passwords[body.Username] = body.Password
		p.subjects[body.Username] = append([]string(nil), newAccountScopes...)
		p.registered++
	}
	p.mu.Unlock()
	switch {
	case taken:
		writeError(w, http.StatusConflict, "username_taken", "that username is taken")
	case full:
		writeError(w, http.StatusServiceUnavailable, "too_many_accounts", "the lab holds too many accounts; restart it")
	default:
		writeJSON(w, http.StatusCreated, map[string]any{"username": body.Username, "scopes": newAccountScopes})
	}
}

func (p *idp) handleLogin(w http.ResponseWriter, r *http.Request) {
	body, ok := readCredentials(w, r)
	if !ok {
		return
	}
	if !p.checkPassword(body.Username, body.Password) {
		writeError(w, http.StatusUnauthorized, "invalid_credentials", "wrong username or password")
		return
	}
	scopes := p.subjectScopes(body.Username)
	token, _, err := p.issue(r, body.Username, scopes, false)
	if err != nil {
		p.logger.Error("issue token", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error", "could not issue a token")
		return
	}
	claims, err := p.verify(token)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "could not issue a token")
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{"token": token, "token_id": claims.ID, "expires_in": int(p.lifetime / time.Second), "scope": strings.Join(scopes, " ")})
}

// handleRevokeByID revokes the token with id, for its owner (authenticated by any live token of the
// same subject) or the admin. In the fixed flavour it answers only after guard.Revoke returned.
func (p *idp) handleRevokeByID(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	caller, ok := bearerToken(r)
	if !ok {
		writeInvalidToken(w, "missing bearer token")
		return
	}
	admin := subtle.ConstantTimeCompare([]byte(caller), []byte(p.adminKey)) == 1
	var subject string
	if !admin {
		in := p.introspect(caller)
		if !in.Active {
			writeInvalidToken(w, "token is not active")
			return
		}
		subject = in.Subject
	}
	p.mu.Lock()
	rec, found := p.tokens[id]
	owned := found && (admin || rec.subject == subject)
	if owned {
		rec.revoked = true
	}
	p.mu.Unlock()
	if !owned {
		writeError(w, http.StatusNotFound, "not_found", "no such token of yours")
		return
	}
	if p.guard != nil {
		if err := p.guard.Revoke(r.Context(), id); err != nil {
			writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "revoked; running actions not yet finished")
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleDeleteAccount removes the caller's registered account (the lab's own alice and bob stay).
func (p *idp) handleDeleteAccount(w http.ResponseWriter, r *http.Request) {
	token, ok := bearerToken(r)
	if !ok {
		writeInvalidToken(w, "missing bearer token")
		return
	}
	in := p.introspect(token)
	if !in.Active {
		writeInvalidToken(w, "token is not active")
		return
	}
	if in.Subject == "alice" || in.Subject == "bob" || in.Subject == clientID {
		writeError(w, http.StatusForbidden, "forbidden", "the lab's built-in accounts cannot be deleted")
		return
	}
	p.mu.Lock()
	_, had := p.passwords[in.Subject]
	delete(p.passwords, in.Subject)
	delete(p.subjects, in.Subject)
	for _, rec := range p.tokens {
		if rec.subject == in.Subject {
			rec.revoked = true
		}
	}
	if had {
		p.registered--
	}
	p.mu.Unlock()
	if p.accountDeleted != nil {
		p.accountDeleted(in.Subject)
	}
	w.WriteHeader(http.StatusNoContent)
}

// accountNames lists every account that can log in, sorted.
func (p *idp) accountNames() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Sorted(maps.Keys(p.passwords))
}

// Registered counts the accounts registered and not deleted.
func (p *idp) registeredAccounts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.registered
}

func (b *bonuses) claim(w http.ResponseWriter, r *http.Request, subject string) {
	b.mu.Lock()
	paid := b.paid[subject]
	if b.atomic && !paid {
		b.paid[subject] = true
	}
	b.mu.Unlock()
	if !b.atomic && !paid {
		// The flaw: the decision above is acted on after a pause, without looking again.
		if !pause(r, couponGap) {
			return
		}
		b.mu.Lock()
		b.paid[subject] = true
		b.mu.Unlock()
	}
	if paid {
		writeError(w, http.StatusConflict, "already_claimed", "this account has had its welcome bonus")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"bonus": 10})
}
