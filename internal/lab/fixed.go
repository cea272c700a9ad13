package lab

import (
	"context"
	"errors"
	"net/http"

	"github.com/tocsin/tocsin/guard"
)

// fixed checks at request start only what a token says of itself (signature, issuer, expiry), which
// cannot change. Everything that can change (revocation, the subject's scopes) is decided by
// guard.Do at the moment the handler runs, and the handler runs inside Do, so the identity provider's
// Revoke and SetScopes wait for it. There is no cache that could outlive a revocation.
type fixed struct {
	idp   *idp
	guard *guard.Guard
}

// verifiedToken is what fixed.authenticate learned from a token's signature.
type verifiedToken struct {
	id, subject string
}

type verifiedKey struct{}

func (f *fixed) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		if !ok {
			writeInvalidToken(w, "missing bearer token")
			return
		}
		c, err := f.idp.verify(token)
		if err != nil {
			writeInvalidToken(w, "token signature, issuer or expiry is invalid")
			return
		}
		ctx := context.WithValue(r.Context(), verifiedKey{}, verifiedToken{id: c.ID, subject: c.Subject})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (f *fixed) require(scope string, h func(http.ResponseWriter, *http.Request, string)) http.Handler {
	grantID := func(r *http.Request) (string, error) {
		v, ok := r.Context().Value(verifiedKey{}).(verifiedToken)
		if !ok {
			return "", errors.New("no verified token")
		}
		return v.id, nil
	}
	return f.guard.Middleware(scope, grantID, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := r.Context().Value(verifiedKey{}).(verifiedToken)
		h(w, r, v.subject)
	}))
}
