package lab

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// vulnerable reproduces the seed's Flask patterns, each a way to act on a decision that is no
// longer true:
//
//   - introspection results are cached per token for introspectionTTL, and hits do not refresh
//     them, so a revoked token is accepted until its entry runs out (the window is a lifetime
//     counted from the token's first use);
//   - or, in place of introspection, the token is verified offline: with no revocation check at all
//     (a revoked token works until its exp), against a revocation list pulled every denylistSync
//     (the window depends on the phase of the pull), or against a revocation store read from a
//     replica that lags propagationDelay behind (the window is that delay after the revocation);
//   - a subject's scopes are read once and cached for permissionTTL, so a downgrade lands late;
//   - the claims are decided at request start and kept in the request context (Flask's g), and the
//     handler acts on them however long it takes, so a revocation during a DELETE loses.
type vulnerable struct {
	idp              *idp
	introspectionTTL time.Duration // <= 0: no cache
	permissionTTL    time.Duration // <= 0: no cache
	latency          Latency       // of each introspection call
	stampOnAnswer    bool          // a cached introspection lives from its answer, not from the request
	offline          bool          // verify tokens locally (any of the three offline patterns)
	denylistSync     time.Duration // > 0: refuse the IDs of a revocation list pulled this often
	propagationDelay time.Duration // > 0: refuse tokens revoked at least this long ago

	mu             sync.Mutex
	introspections map[string]cached[introspection] // by token
	permissions    map[string]cached[[]string]      // by subject
	denylist       atomic.Pointer[map[string]bool]  // the last revocation list pulled
}

type cached[T any] struct {
	value   T
	expires time.Time
}

// maxCacheEntries bounds each cache; past it, expired entries are dropped on the next fill.
const maxCacheEntries = 10_000

func newVulnerable(p *idp, o Options) *vulnerable {
	return &vulnerable{
		idp:              p,
		introspectionTTL: o.IntrospectionTTL,
		permissionTTL:    o.PermissionTTL,
		latency:          o.IntrospectionLatency,
		stampOnAnswer:    o.StampOnAnswer,
		offline:          o.OfflineJWT || o.DenylistSync > 0 || o.PropagationDelay > 0,
		denylistSync:     o.DenylistSync,
		propagationDelay: o.PropagationDelay,
		introspections:   map[string]cached[introspection]{},
		permissions:      map[string]cached[[]string]{},
	}
}

// start runs the API's background work, the denylist pull, and returns what stops it.
func (v *vulnerable) start() (stop func()) {
	if v.denylistSync <= 0 {
		return func() {}
	}
	pull := func() {
		list := v.idp.revokedIDs()
		v.denylist.Store(&list)
	}
	pull()
	ticker := time.NewTicker(v.denylistSync)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ticker.C:
				pull()
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			ticker.Stop()
			close(done)
		})
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
		in := v.tokenState(r.Context(), token)
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

// tokenState decides whether token is good, the way this API was configured to.
func (v *vulnerable) tokenState(ctx context.Context, token string) introspection {
	if !v.offline {
		return v.introspect(ctx, token)
	}
	c, err := v.idp.verify(token) // signature, issuer, exp: what the token says of itself
	if err != nil {
		return introspection{}
	}
	switch {
	case v.denylistSync > 0:
		if list := v.denylist.Load(); list != nil && (*list)[c.ID] {
			return introspection{}
		}
	case v.propagationDelay > 0:
		if v.idp.revokedAsOf(c.ID, time.Now().Add(-v.propagationDelay)) {
			return introspection{}
		}
	}
	return c.introspection()
}

// introspect asks the identity provider, or returns what it said up to introspectionTTL ago. Only
// active answers are cached, and never beyond the token's own expiry: the flaw here is revocation.
// The entry's lifetime starts when the request arrived, or, with stampOnAnswer, when the identity
// provider's answer did.
func (v *vulnerable) introspect(ctx context.Context, token string) introspection {
	now := time.Now()
	v.mu.Lock()
	entry, ok := v.introspections[token]
	v.mu.Unlock()
	if ok && now.Before(entry.expires) {
		return entry.value
	}
	if err := v.latency.wait(ctx); err != nil {
		return introspection{} // the client left
	}
	in := v.idp.introspect(token)
	if !in.Active || v.introspectionTTL <= 0 {
		return in
	}
	if v.stampOnAnswer {
		now = time.Now()
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
