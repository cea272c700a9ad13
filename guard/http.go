package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Middleware runs next inside [Guard.Do] for the grant that grantID finds in the request, so the
// handler runs only if the grant may use scope when it starts, and a revocation waits for it.
//
// grantID returns the ID of the request's grant, typically the jti of a bearer JWT whose signature
// and expiry it has verified; an error from it means the token is missing or invalid. Refusals follow
// RFC 6750: 401 with WWW-Authenticate: Bearer error="invalid_token" for a missing, unknown, revoked
// or expired grant, and 403 with error="insufficient_scope" for a scope not granted, each with a
// JSON body {"error": ..., "error_description": ...}. When the store cannot decide (a database
// down), the handler does not run and the answer is 503 with error="temporarily_unavailable".
//
// The whole handler, including writing the response, runs while the grant is pinned.
func (g *Guard) Middleware(scope string, grantID func(*http.Request) (string, error), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := grantID(r)
		if err != nil {
			// The description is fixed: grantID's error may say more about the token than a caller should see.
			writeDenial(w, scope, ErrUnknownGrant, "missing or invalid bearer token")
			return
		}
		release, err := g.pin(r.Context(), id, scope)
		if err == nil {
			// As Do does, without a closure: the handler runs while the grant is pinned, and the pin
			// is dropped even if it panics.
			defer release()
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case errors.Is(err, ErrDenied):
			writeDenial(w, scope, err, err.Error())
		case errors.Is(err, ErrUnavailable):
			// Fail closed: nothing ran. The client may retry; the detail is for the server's logs.
			w.Header().Set("Retry-After", "1")
			writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable",
				"the authorization store is unreachable, so the request was not run; retry later")
		default:
			// Only the request's context ending gets here, and then the
			// client is gone; the status is for logs.
			writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "request ended before it was authorized")
		}
	})
}

func writeDenial(w http.ResponseWriter, scope string, err error, description string) {
	if errors.Is(err, ErrScope) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_scope", scope=%q`, scope))
		writeJSONError(w, http.StatusForbidden, "insufficient_scope", description)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	writeJSONError(w, http.StatusUnauthorized, "invalid_token", description)
}

func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
