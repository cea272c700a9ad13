package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMiddleware(t *testing.T) {
	g, _ := newTestGuard(t)
	ctx := context.Background()
	mustGrant(t, g, Grant{ID: "live", Subject: "alice", Scopes: []string{"reports:read"}})
	mustGrant(t, g, Grant{ID: "narrow", Subject: "bob", Scopes: []string{"items:read"}})
	mustGrant(t, g, Grant{ID: "old", Subject: "alice", Scopes: []string{"reports:read"}, Expires: epoch})
	mustGrant(t, g, Grant{ID: "gone", Subject: "alice", Scopes: []string{"reports:read"}})
	if err := g.Revoke(ctx, "gone"); err != nil {
		t.Fatal(err)
	}

	grantID := func(r *http.Request) (string, error) {
		id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return "", errors.New("no bearer token")
		}
		return id, nil
	}
	var pinned bool
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The handler runs inside Do, so revoking from here cannot finish before it ends. This revokes
		// "live" for good, which is why "allowed" is the last case.
		short, cancel := context.WithTimeout(r.Context(), 10*time.Millisecond)
		defer cancel()
		pinned = g.Revoke(short, "live") != nil
		w.WriteHeader(http.StatusTeapot)
	})
	h := g.Middleware("reports:read", grantID, next)

	tests := []struct {
		name, auth string
		status     int
		challenge  string // WWW-Authenticate
		code       string // JSON error
	}{
		{"no token", "", 401, `Bearer error="invalid_token"`, "invalid_token"},
		{"unknown", "Bearer who", 401, `Bearer error="invalid_token"`, "invalid_token"},
		{"revoked", "Bearer gone", 401, `Bearer error="invalid_token"`, "invalid_token"},
		{"expired", "Bearer old", 401, `Bearer error="invalid_token"`, "invalid_token"},
		{"scope", "Bearer narrow", 403, `Bearer error="insufficient_scope", scope="reports:read"`, "insufficient_scope"},
		{"allowed", "Bearer live", http.StatusTeapot, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/reports", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status = %d; want %d (body %s)", rec.Code, tt.status, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q; want %q", got, tt.challenge)
			}
			if tt.code == "" {
				if !pinned {
					t.Error("handler ran without the grant pinned")
				}
				return
			}
			var body struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error != tt.code {
				t.Errorf("body = %s (%v); want error %q", rec.Body, err, tt.code)
			}
		})
	}
}

// TestWriteError: a handler that checks with Do or DoTx answers every refusal as Require does.
func TestWriteError(t *testing.T) {
	g, _ := newTestGuard(t)
	bearer := g.Bearer(&JWT{Key: testKey, Algorithms: []string{"HS256"}})
	noToken := httptest.NewRequest(http.MethodGet, "/", nil)
	_, bearerErr := bearer(noToken)
	tests := []struct {
		name      string
		err       error
		status    int
		code      string
		challenge string
	}{
		{"bearer refused the token", bearerErr, 401, "invalid_token", `Bearer error="invalid_token"`},
		{"revoked", ErrRevoked, 401, "invalid_token", `Bearer error="invalid_token"`},
		{"scope", fmt.Errorf("%w: %q", ErrScope, "items:delete"), 403, "insufficient_scope", `Bearer error="insufficient_scope", scope="items:delete"`},
		{"store down", fmt.Errorf("%w: checking grant: connection refused", ErrUnavailable), 503, "temporarily_unavailable", ""},
		{"request ended", fmt.Errorf("guard: %w", context.Canceled), 503, "temporarily_unavailable", ""},
		{"the action failed", errors.New("duplicate key value violates unique constraint"), 500, "server_error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, "items:delete", tt.err)
			var body struct{ Error string }
			json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tt.status || body.Error != tt.code || rec.Header().Get("WWW-Authenticate") != tt.challenge {
				t.Errorf("WriteError(%v) = %d %q %s; want %d %q with error %q", tt.err, rec.Code,
					rec.Header().Get("WWW-Authenticate"), rec.Body, tt.status, tt.challenge, tt.code)
			}
			if strings.Contains(rec.Body.String(), "constraint") {
				t.Errorf("WriteError leaked the action's error to the client: %s", rec.Body)
			}
		})
	}
	if !errors.Is(bearerErr, ErrDenied) {
		t.Errorf("Bearer's error for a missing token = %v; want it to match ErrDenied", bearerErr)
	}
}

// TestRequireUnavailableVerifier: a verifier that cannot decide (introspection down) is a 503, not a
// 401 that would tell the client its token is bad.
func TestRequireUnavailableVerifier(t *testing.T) {
	g, _ := newTestGuard(t)
	down := func(*http.Request) (string, error) {
		return "", fmt.Errorf("%w: introspection: connection refused", ErrUnavailable)
	}
	h := g.Require("s", down)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("handler ran") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d; want 503", rec.Code)
	}
}

// TestGrantFrom: the handler, the action and DoTx's fn get the grant the check allowed, on both
// stores, and Tx is there on PostgreSQL only.
func TestGrantFrom(t *testing.T) {
	exp := epoch.Add(time.Hour)
	want := Grant{ID: "a1", Subject: "alice", Scopes: []string{"items:read"}, Expires: exp}
	for _, store := range []string{"memory", "postgres"} {
		t.Run(store, func(t *testing.T) {
			g, _ := newTestGuard(t)
			var pool *pgxpool.Pool
			if store == "postgres" {
				var gs []*Guard
				gs, _, pool = pgReplicas(t, 1)
				g = gs[0]
			}
			mustGrant(t, g, want)
			check := func(where string, ctx context.Context) {
				t.Helper()
				got, ok := GrantFrom(ctx)
				if !ok || got.ID != want.ID || got.Subject != want.Subject || !slices.Equal(got.Scopes, want.Scopes) || !got.Expires.Equal(exp) {
					t.Errorf("%s: GrantFrom = %+v, %v; want %+v", where, got, ok, want)
				}
				if hasTx := Tx(ctx) != nil; hasTx != (store == "postgres") {
					t.Errorf("%s: Tx present = %v on the %s store", where, hasTx, store)
				}
			}
			ctx := context.Background()
			if _, ok := GrantFrom(ctx); ok {
				t.Error("GrantFrom outside an action reported a grant")
			}
			if err := g.Do(ctx, "a1", "items:read", func(ctx context.Context) error { check("Do", ctx); return nil }); err != nil {
				t.Fatal(err)
			}
			h := g.Require("items:read", headerGrantID)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				check("Require", r.Context())
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Authorization", "Bearer a1")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("Require: status %d %s", rec.Code, rec.Body)
			}
			if pool != nil {
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					return DoTx(ctx, tx, "a1", "items:read", func(ctx context.Context) error { check("DoTx", ctx); return nil })
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
