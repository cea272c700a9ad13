package guard

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
