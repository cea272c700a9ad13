package lab

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// authorizer is where the flavours differ: when the token is judged, and whether the judgement
// still holds while the handler acts. The handlers themselves are the same in both.
type authorizer interface {
	// authenticate runs first on every API request, like Flask's before_request.
	authenticate(next http.Handler) http.Handler
	// require runs h only if the request's token may use scope, passing the token's subject.
	require(scope string, h func(w http.ResponseWriter, r *http.Request, subject string)) http.Handler
}

// api is the resource server: items, and a report about them.
type api struct {
	authz authorizer
	gap   time.Duration
	onGap func(ctx context.Context)
	// singleWriter: token-bearing requests write a last-used stamp under the database's write lock,
	// which a DELETE holds from load to commit (Options.SingleWriter).
	singleWriter bool

	// The resources live apart from the handlers so that replicas of a lab (StartReplica) share
	// them, as replicas of a real service share their database.
	*resources
}

type resources struct {
	// db stands for a single-writer database's write lock (Options.SingleWriter); lastUsed is
	// what token-bearing requests write under it.
	db        sync.Mutex
	lastUsed  map[string]time.Time
	mu        sync.Mutex
	items     map[string]item
	coupons   *coupons
	bonuses   *bonuses
	referrals *referrals
	// notes, profiles and admin routes: authz.go
	accountsAPI *accountsAPI
}

type item struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Owner string `json:"owner"`
}

const maxItemName = 200

func newAPI(authz authorizer, gap time.Duration, onGap func(context.Context)) *api {
	_, isFixed := authz.(*fixed)
	res := &resources{
		items:     map[string]item{},
		lastUsed:  map[string]time.Time{},
		coupons:   &coupons{atomic: isFixed, used: map[string]bool{}, owners: map[string]string{}},
		bonuses:   &bonuses{atomic: isFixed, paid: map[string]bool{}},
		referrals: newReferrals(isFixed),
		// The fixed flavour asks guard's grant whose request it is (guard.GrantFrom).
		accountsAPI: newAccountsAPI(isFixed),
	}
	return &api{authz: authz, gap: gap, onGap: onGap, resources: res}
}

func (a *api) routes(mux *http.ServeMux) {
	handle := func(pattern, scope string, h func(http.ResponseWriter, *http.Request, string)) {
		mux.Handle(pattern, a.stampLastUsed(a.authz.authenticate(a.authz.require(scope, h))))
	}
	// Anyone may ask whether an item exists (a public catalogue): no token, and no write.
	mux.HandleFunc("GET /public/items/{id}", a.publicItem)
	handle("POST /items", "items:write", a.createItem)
	handle("GET /items/{id}", "items:read", a.getItem)
	handle("DELETE /items/{id}", "items:delete", a.deleteItem)
	handle("GET /reports/summary", "reports:read", a.summary)
	// The same summary on a route whose author forgot the auth decorator in the vulnerable flavour:
	// it checks no token at all (missing authentication, OWASP API2). A scanner must not mistake it
	// for a stale decision: a revoked token is "accepted" because nothing is checked.
	if _, isFixed := a.authz.(*fixed); isFixed {
		handle("GET /reports/daily", "reports:read", a.summary)
	} else {
		mux.HandleFunc("GET /reports/daily", func(w http.ResponseWriter, r *http.Request) { a.summary(w, r, "") })
	}
	a.couponRoutes(handle)                                      // coupon.go
	handle("POST /bonus/claim", "items:write", a.bonuses.claim) // accounts.go
	a.referralRoutes(handle)                                    // referrals.go
	a.authzRoutes(handle)                                       // authz.go
}

// count returns how many items and coupons each owner has: tests check that a scan leaves the
// target as it found it.
func (res *resources) count() map[string]int {
	out := map[string]int{}
	res.mu.Lock()
	for _, it := range res.items {
		out[it.Owner]++
	}
	res.mu.Unlock()
	res.coupons.mu.Lock()
	for _, owner := range res.coupons.owners {
		out[owner]++
	}
	res.coupons.mu.Unlock()
	res.referrals.count(out)
	res.accountsAPI.count(out)
	return out
}

func (a *api) createItem(w http.ResponseWriter, r *http.Request, subject string) {
	var body struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", `body must be {"name": "..."}`)
		return
	}
	if body.Name == "" || len(body.Name) > maxItemName {
		writeError(w, http.StatusBadRequest, "invalid_request", "name must have 1 to 200 bytes")
		return
	}
	it := item{ID: strings.ToLower(randomText()), Name: body.Name, Owner: subject}
	a.mu.Lock()
	a.items[it.ID] = it
	a.mu.Unlock()
	w.Header().Set("Location", "/items/"+it.ID)
	writeJSON(w, http.StatusCreated, it)
}

func (a *api) getItem(w http.ResponseWriter, r *http.Request, _ string) {
	it, ok := a.load(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such item")
		return
	}
	writeJSON(w, http.StatusOK, it)
}

// deleteItem is the seed's route: authorized already, it loads the item, pauses (standing for the
// slow work real handlers do between check and use), then deletes. Whether a revocation can land in
// that pause and still lose depends on the flavour's require.
func (a *api) deleteItem(w http.ResponseWriter, r *http.Request, _ string) {
	id := r.PathValue("id")
	if a.singleWriter {
		// Load, pause and delete in one write transaction, as a single-writer database runs it.
		a.db.Lock()
		defer a.db.Unlock()
	}
	if _, ok := a.load(id); !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such item")
		return
	}
	if a.onGap != nil {
		a.onGap(r.Context())
	}
	select {
	case <-time.After(a.gap):
	case <-r.Context().Done():
		return // the client left; nothing was deleted
	}
	a.mu.Lock()
	_, ok := a.items[id]
	delete(a.items, id)
	a.mu.Unlock()
	if !ok { // deleted by someone else during the pause
		writeError(w, http.StatusNotFound, "not_found", "no such item")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// stampLastUsed writes a token's last-used time before the request is handled, as many
// applications do, under the single-writer database's lock: a token-bearing request waits while a
// DELETE holds it.
func (a *api) stampLastUsed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token, ok := bearerToken(r); ok && a.singleWriter {
			a.db.Lock()
			if len(a.lastUsed) >= maxCacheEntries {
				clear(a.lastUsed)
			}
			a.lastUsed[token] = time.Now()
			a.db.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// publicItem says whether an item exists, to anyone.
func (a *api) publicItem(w http.ResponseWriter, r *http.Request) {
	it, ok := a.load(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such item")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": it.ID})
}

func (a *api) summary(w http.ResponseWriter, _ *http.Request, _ string) {
	a.mu.Lock()
	byOwner := map[string]int{}
	for _, it := range a.items {
		byOwner[it.Owner]++
	}
	n := len(a.items)
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"items": n, "by_owner": byOwner})
}

func (a *api) load(id string) (item, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	it, ok := a.items[id]
	return it, ok
}

// bearerToken returns the request's bearer token. The scheme is case-insensitive (RFC 7235).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// The error responses below have the shape package guard writes, so both flavours answer alike.

func writeInvalidToken(w http.ResponseWriter, description string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	writeError(w, http.StatusUnauthorized, "invalid_token", description)
}

func writeInsufficientScope(w http.ResponseWriter, scope string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+scope+`"`)
	writeError(w, http.StatusForbidden, "insufficient_scope", "the token lacks scope "+scope)
}

func writeError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a failed write means the client left
}
