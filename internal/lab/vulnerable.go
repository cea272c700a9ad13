package lab

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// vulnerable reproduces the seed's Flask patterns, each a way to act on a decision that is no
// longer true:
//
//   - introspection results are cached per token for introspectionTTL from the first request, and
//     hits do not refresh them, so a revoked token is accepted until its entry runs out;
//   - a subject's scopes are read once and cached for permissionTTL, so a downgrade lands late;
//   - the claims are decided at request start and kept in the request context (Flask's g), and the
//     handler acts on them however long it takes, so a revocation during a DELETE loses.
type vulnerable struct {
	idp              *idp
	introspectionTTL time.Duration // <= 0: no cache
	permissionTTL    time.Duration // <= 0: no cache

	mu             sync.Mutex
	introspections map[string]cached[introspection] // by token
	permissions    map[string]cached[[]string]      // by subject
}

type cached[T any] struct {
	value   T
	expires time.Time
}

// maxCacheEntries bounds each cache; past it, expired entries are dropped on the next fill.
const maxCacheEntries = 10_000

func newVulnerable(p *idp, introspectionTTL, permissionTTL time.Duration) *vulnerable {
	return &vulnerable{
		idp:              p,
		introspectionTTL: introspectionTTL,
		permissionTTL:    permissionTTL,
		introspections:   map[string]cached[introspection]{},
		permissions:      map[string]cached[[]string]{},
	}
}

// claims are what the vulnerable API decided about a request at its start.
type claims struct {
	subject string
	scopes  []string // the token's scopes that the subject was allowed, as known at request start
}

type claimsKey struct{}

func (v *vulnerable) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		if !ok {
			writeInvalidToken(w, "missing bearer token")
			return
		}
		in := v.introspect(token)
		if !in.Active {
			writeInvalidToken(w, "token is not active")
			return
		}
		allowed := v.subjectScopes(in.Subject)
		var scopes []string
		for _, s := range strings.Fields(in.Scope) {
			if slices.Contains(allowed, s) {
				scopes = append(scopes, s)
			}
		}
		ctx := context.WithValue(r.Context(), claimsKey{}, claims{subject: in.Subject, scopes: scopes})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// require trusts the claims decided at request start and never looks again.
func (v *vulnerable) require(scope string, h func(http.ResponseWriter, *http.Request, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(claimsKey{}).(claims)
		if !slices.Contains(c.scopes, scope) {
			writeInsufficientScope(w, scope)
			return
		}
		h(w, r, c.subject)
	})
}

// introspect asks the identity provider, or returns what it said up to introspectionTTL ago. Only
// active answers are cached, and never beyond the token's own expiry: the flaw here is revocation.
func (v *vulnerable) introspect(token string) introspection {
	now := time.Now()
	v.mu.Lock()
	entry, ok := v.introspections[token]
	v.mu.Unlock()
	if ok && now.Before(entry.expires) {
		return entry.value
	}
	in := v.idp.introspect(token)
	if !in.Active || v.introspectionTTL <= 0 {
		return in
	}
	expires := now.Add(v.introspectionTTL)
	if exp := time.Unix(in.Expires, 0); exp.Before(expires) {
		expires = exp
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	fill(v.introspections, token, cached[introspection]{in, expires}, now)
	return in
}

// subjectScopes returns the subject's allowed scopes as read up to permissionTTL ago.
func (v *vulnerable) subjectScopes(subject string) []string {
	now := time.Now()
	v.mu.Lock()
	entry, ok := v.permissions[subject]
	v.mu.Unlock()
	if ok && now.Before(entry.expires) {
		return entry.value
	}
	scopes := v.idp.subjectScopes(subject)
	if v.permissionTTL <= 0 {
		return scopes
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	fill(v.permissions, subject, cached[[]string]{scopes, now.Add(v.permissionTTL)}, now)
	return scopes
}

// fill stores an entry, first dropping expired ones if the cache has grown large. The caller holds
// the lock.
func fill[T any](cache map[string]cached[T], key string, entry cached[T], now time.Time) {
	if len(cache) >= maxCacheEntries {
		for k, e := range cache {
			if !now.Before(e.expires) {
				delete(cache, k)
			}
		}
	}
	cache[key] = entry
}
