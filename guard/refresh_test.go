package guard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// refreshGuards makes a memory Guard or a PostgreSQL Guard, clock at epoch, for tests that both
// stores must pass; without PostgreSQL only the memory half is skipped.
var refreshGuards = map[string]func(t *testing.T) *Guard{
	"memory":   func(t *testing.T) *Guard { g, _ := newTestGuard(t); return g },
	"postgres": func(t *testing.T) *Guard { gs, _, _ := pgReplicas(t, 1); return gs[0] },
}

func TestRotateAndReuse(t *testing.T) {
	for name, newGuard := range refreshGuards {
		t.Run(name, func(t *testing.T) {
			g := newGuard(t)
			ctx := context.Background()
			do := func(id string) error { return g.Do(ctx, id, "items:read", func(context.Context) error { return nil }) }
			r1, err := g.StartFamily(ctx, Grant{ID: "a1", Subject: "alice", Scopes: []string{"items:read"}, Expires: epoch.Add(time.Minute)}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			gr, r2, err := g.Rotate(ctx, r1, "a2", epoch.Add(2*time.Minute), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if gr.ID != "a2" || gr.Subject != "alice" || len(gr.Scopes) != 1 || gr.Scopes[0] != "items:read" || r2 == r1 || r2 == "" {
				t.Fatalf("Rotate = %+v, %q", gr, r2)
			}
			for _, id := range []string{"a1", "a2"} {
				if err := do(id); err != nil {
					t.Fatalf("Do(%s) before reuse = %v", id, err)
				}
			}
			// r1 again: a copy is in use. The whole family goes.
			if _, _, err := g.Rotate(ctx, r1, "a3", epoch.Add(3*time.Minute), time.Hour); !errors.Is(err, ErrRefreshReused) || !errors.Is(err, ErrDenied) {
				t.Fatalf("reusing a refresh token: err = %v; want %v", err, ErrRefreshReused)
			}
			for _, id := range []string{"a1", "a2", "a3"} {
				if err := do(id); !errors.Is(err, ErrDenied) {
					t.Errorf("Do(%s) after reuse = %v; want a denial", id, err)
				}
			}
			if _, _, err := g.Rotate(ctx, r2, "a4", epoch.Add(3*time.Minute), time.Hour); !errors.Is(err, ErrRefreshInvalid) {
				t.Errorf("the newest refresh token after reuse: err = %v; want %v", err, ErrRefreshInvalid)
			}
			if _, _, err := g.Rotate(ctx, "made-up", "a5", epoch, time.Hour); !errors.Is(err, ErrRefreshInvalid) {
				t.Errorf("unknown refresh token: err = %v; want %v", err, ErrRefreshInvalid)
			}
			// An expired refresh token is refused, not treated as reuse.
			r, err := g.StartFamily(ctx, Grant{ID: "b1", Subject: "bob"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := g.Rotate(ctx, r, "b2", epoch, time.Hour); !errors.Is(err, ErrRefreshInvalid) {
				t.Errorf("expired refresh token: err = %v; want %v", err, ErrRefreshInvalid)
			}
			if err := g.Do(ctx, "b1", "", func(context.Context) error { return nil }); err != nil {
				t.Errorf("an expired refresh token revoked its family: Do(b1) = %v", err)
			}
		})
	}
}

// TestRotateRace: a client and a thief present the same refresh token at once. One may win the
// rotation, but the other is a reuse, so in the end the family is revoked, the winner's grant too.
func TestRotateRace(t *testing.T) {
	for name, newGuard := range refreshGuards {
		t.Run(name, func(t *testing.T) {
			g := newGuard(t)
			ctx := context.Background()
			r1, err := g.StartFamily(ctx, Grant{ID: "f", Subject: "alice"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			const n = 8
			var wg sync.WaitGroup
			errs := make([]error, n)
			won := make([]Grant, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					won[i], _, errs[i] = g.Rotate(ctx, r1, fmt.Sprintf("f%d", i), epoch.Add(time.Minute), time.Hour)
				}()
			}
			wg.Wait()
			var wins, reuses int
			var winner string
			for i, err := range errs {
				switch {
				case err == nil:
					wins++
					winner = won[i].ID
				case errors.Is(err, ErrRefreshReused), errors.Is(err, ErrRefreshInvalid):
					reuses++
				default:
					t.Errorf("Rotate = %v", err)
				}
			}
			if wins != 1 || reuses != n-1 {
				t.Fatalf("%d rotations won and %d were refused; want exactly 1 and %d", wins, reuses, n-1)
			}
			for _, id := range []string{"f", winner} {
				if err := g.Do(ctx, id, "", func(context.Context) error { return nil }); !errors.Is(err, ErrRevoked) {
					t.Errorf("Do(%s) after the race = %v; want %v", id, err, ErrRevoked)
				}
			}
		})
	}
}
