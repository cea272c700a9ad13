package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Require returns middleware that runs the handler only if the grant that grantID finds in the
// request may use scope when the handler starts, and keeps the grant pinned while it runs, so that
// a revocation waits for it. It fits any router that takes a func(http.Handler) http.Handler, such
// as chi's and gorilla/mux's Use, and wraps a handler for the standard mux:
//
//	mux.Handle("DELETE /items/{id}", g.Require("items:delete", g.Bearer(verifier))(deleteItem))
//
// grantID returns the ID of the request's grant, typically [Guard.Bearer]'s; an error from it
// means the token is missing or invalid. Refusals follow RFC 6750, as [WriteError] writes them: 401
// with WWW-Authenticate: Bearer error="invalid_token" for a missing, invalid, unknown, revoked or
// expired grant, 403 with error="insufficient_scope" for a scope not granted, and 503 with
// error="temporarily_unavailable" when the store (or the token's verifier) cannot decide, such as
// a database down; the handler does not run.
//
// The handler's request context carries the grant ([GrantFrom]). On a Guard made by
// [NewPostgres] it also carries the transaction that pins the grant ([Tx]): run the handler's
// queries in it, on the one connection the request holds. Require ends the transaction after the
// handler returns: it commits unless the handler panicked or answered with a status of 500 or
// more, in which case it rolls back. A handler that must know its writes committed before it
// answers (say, to answer 201) commits Tx itself. If Require's own commit fails, the handler's
// answer must not stand: Require answers 500 if the handler wrote nothing, and otherwise aborts the
// response (panicking with [http.ErrAbortHandler]), so the client sees a broken answer rather than
// a success. A recovery middleware around Require must let that panic through, as net/http's
// server expects and chi's Recoverer does.
//
// The whole handler, including writing the response, runs while the grant is pinned.
func (g *Guard) Require(scope string, grantID func(*http.Request) (string, error)) func(http.Handler) http.Handler {
	g.mustBeUsable("Require")
	if grantID == nil {
		panic("guard: Require: grantID is nil (hint: pass g.Bearer(verifier))")
	}
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic(fmt.Sprintf("guard: Require(%q): the handler is nil", scope))
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g.serve(w, r, scope, grantID, next)
		})
	}
}

// Middleware is Require(scope, grantID)(next), for a single handler.
func (g *Guard) Middleware(scope string, grantID func(*http.Request) (string, error), next http.Handler) http.Handler {
	g.mustBeUsable("Middleware")
	return g.Require(scope, grantID)(next)
}

func (g *Guard) serve(w http.ResponseWriter, r *http.Request, scope string, grantID func(*http.Request) (string, error), next http.Handler) {
	id, err := grantID(r)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = &invalidToken{err}
		}
		WriteError(w, scope, err)
		return
	}
	release, act, err := g.pin(r.Context(), id, scope)
	if err != nil {
		WriteError(w, scope, err)
		return
	}
	// As Do does, without a closure: the handler runs while the grant is pinned, and the pin is
	// dropped (the transaction rolled back) even if it panics.
	defer release()
	r = r.WithContext(act.context(r.Context()))
	if act.tx == nil {
		next.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	next.ServeHTTP(sw, r)
	if sw.status >= http.StatusInternalServerError {
		return // release rolls the transaction back
	}
	if err := act.commit(r.Context()); err != nil {
		if sw.status == 0 {
			WriteError(w, scope, err)
			return
		}
		panic(http.ErrAbortHandler) // the answer is out, or on its way: break it
	}
}

// statusWriter records the status of the handler's answer, for Require to decide whether to commit.
type statusWriter struct {
	http.ResponseWriter
	status int // 0 until the handler starts its answer
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // 1xx are interim answers
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming handlers that test for http.Flusher working.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the writer's other abilities (Hijack, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// invalidToken is a token that grantID refused: missing, or failing verification. It is a denial;
// its detail is for the server's logs, since it may say more about the token than its bearer
// should learn.
type invalidToken struct{ err error }

func (e *invalidToken) Error() string        { return "guard: invalid bearer token: " + e.err.Error() }
func (e *invalidToken) Unwrap() error        { return e.err }
func (e *invalidToken) Is(target error) bool { return target == ErrDenied }

// WriteError answers a request that err refused, the way [Guard.Require] does, so that a handler
// using [DoTx] or [Guard.Do] answers like the middleware: for err from [Guard.Bearer]'s function,
// Do, DoTx or the transaction they ran in. The body is JSON, {"error": ..., "error_description":
// ...}, and the status and WWW-Authenticate header follow RFC 6750:
//
//   - a scope not granted ([ErrScope]): 403, error="insufficient_scope", with the scope asked for;
//   - any other denial ([ErrDenied]: a missing or invalid token, an unknown, revoked or expired
//     grant): 401, error="invalid_token";
//   - the store unreachable ([ErrUnavailable]) or the request's context ended: 503,
//     error="temporarily_unavailable", with Retry-After;
//   - anything else (the action failed): 500, error="server_error", without the error's text.
func WriteError(w http.ResponseWriter, scope string, err error) {
	var bad *invalidToken
	switch {
	case errors.Is(err, ErrScope):
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_scope", scope=%q`, scope))
		writeJSONError(w, http.StatusForbidden, "insufficient_scope", err.Error())
	case errors.As(err, &bad):
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSONError(w, http.StatusUnauthorized, "invalid_token", "missing or invalid bearer token")
	case errors.Is(err, ErrDenied):
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSONError(w, http.StatusUnauthorized, "invalid_token", err.Error())
	case errors.Is(err, ErrUnavailable):
		// Fail closed: nothing ran. The client may retry; the detail is for the server's logs.
		w.Header().Set("Retry-After", "1")
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable",
			"the authorization store is unreachable, so the request was not run; retry later")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client is usually gone by now; the status is for logs.
		w.Header().Set("Retry-After", "1")
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the request ended before it was authorized")
	default:
		writeJSONError(w, http.StatusInternalServerError, "server_error", "the request failed")
	}
}

func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
