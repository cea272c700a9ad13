package guard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// newTestGuard returns a Guard whose clock stands at epoch until the test moves it.
func newTestGuard(t testing.TB) (*Guard, *time.Time) {
	t.Helper()
	g := New()
	now := epoch
	g.now = func() time.Time { return now }
	g.monotonic = false
	return g, &now
}

func mustGrant(t testing.TB, g *Guard, gr Grant) {
	t.Helper()
	if err := g.Grant(context.Background(), gr); err != nil {
		t.Fatalf("Grant(%q): %v", gr.ID, err)
	}
}

func TestDoDecides(t *testing.T) {
	alice := Grant{ID: "a1", Subject: "alice", Scopes: []string{"items:read", "reports:read"}, Expires: epoch.Add(time.Hour)}
	tests := []struct {
		name    string
		setup   func(t *testing.T, g *Guard, now *time.Time)
		grantID string
		scope   string
		want    error // nil: the action runs
	}{
		{name: "granted scope", grantID: "a1", scope: "items:read"},
		{name: "empty scope asks only for a live grant", grantID: "a1", scope: ""},
		{name: "no expiry", grantID: "forever", scope: "items:read", setup: func(t *testing.T, g *Guard, _ *time.Time) {
			mustGrant(t, g, Grant{ID: "forever", Subject: "alice", Scopes: []string{"items:read"}})
		}},
		{name: "unknown grant", grantID: "nope", scope: "items:read", want: ErrUnknownGrant},
		{name: "revoked", grantID: "a1", scope: "items:read", want: ErrRevoked, setup: func(t *testing.T, g *Guard, _ *time.Time) {
			if err := g.Revoke(context.Background(), "a1"); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "expired at the instant of expiry", grantID: "a1", scope: "items:read", want: ErrExpired, setup: func(_ *testing.T, _ *Guard, now *time.Time) {
			*now = epoch.Add(time.Hour)
		}},
		{name: "one tick before expiry", grantID: "a1", scope: "items:read", setup: func(_ *testing.T, _ *Guard, now *time.Time) {
			*now = epoch.Add(time.Hour - time.Nanosecond)
		}},
		{name: "scope not granted", grantID: "a1", scope: "items:delete", want: ErrScope},
		{name: "scope removed from the subject", grantID: "a1", scope: "reports:read", want: ErrScope, setup: func(t *testing.T, g *Guard, _ *time.Time) {
			if err := g.SetScopes(context.Background(), "alice", []string{"items:read"}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "scope restored to the subject", grantID: "a1", scope: "reports:read", setup: func(t *testing.T, g *Guard, _ *time.Time) {
			ctx := context.Background()
			if err := g.SetScopes(ctx, "alice", nil); err != nil {
				t.Fatal(err)
			}
			if err := g.SetScopes(ctx, "alice", []string{"items:read", "reports:read"}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "subject scope does not widen the grant", grantID: "a1", scope: "items:delete", want: ErrScope, setup: func(t *testing.T, g *Guard, _ *time.Time) {
			if err := g.SetScopes(context.Background(), "alice", []string{"items:read", "items:delete"}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "another subject's scopes do not apply", grantID: "a1", scope: "reports:read", setup: func(t *testing.T, g *Guard, _ *time.Time) {
			if err := g.SetScopes(context.Background(), "bob", nil); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, now := newTestGuard(t)
			mustGrant(t, g, alice)
			if tt.setup != nil {
				tt.setup(t, g, now)
			}
			ran := false
			err := g.Do(context.Background(), tt.grantID, tt.scope, func(context.Context) error {
				ran = true
				return nil
			})
			if tt.want == nil {
				if err != nil || !ran {
					t.Fatalf("Do = %v, ran = %v; want nil, ran", err, ran)
				}
				return
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrDenied) {
				t.Fatalf("Do = %v; want %v, matching ErrDenied", err, tt.want)
			}
			if ran {
				t.Fatal("action ran although Do denied it")
			}
		})
	}
}

func TestDoReturnsActionError(t *testing.T) {
	g, _ := newTestGuard(t)
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"s"}})
	boom := errors.New("boom")
	err := g.Do(context.Background(), "a1", "s", func(context.Context) error { return boom })
	if err != boom {
		t.Fatalf("Do = %v; want the action's error", err)
	}
	if errors.Is(err, ErrDenied) {
		t.Fatal("an action error must not look like a denial")
	}
}

func TestDoRefusesDoneContext(t *testing.T) {
	g, _ := newTestGuard(t)
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"s"}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := g.Do(ctx, "a1", "s", func(context.Context) error { t.Error("action ran"); return nil })
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrDenied) {
		t.Fatalf("Do = %v; want context.Canceled, not a denial", err)
	}
}

func TestGrantRefusesBadGrants(t *testing.T) {
	g, _ := newTestGuard(t)
	ctx := context.Background()
	if err := g.Grant(ctx, Grant{Subject: "alice"}); err == nil {
		t.Error("Grant without ID succeeded")
	}
	if err := g.Grant(ctx, Grant{ID: "x"}); err == nil {
		t.Error("Grant without subject succeeded")
	}
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice"})
	if err := g.Revoke(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	// Re-recording a revoked ID must not bring it back.
	if err := g.Grant(ctx, Grant{ID: "a1", Subject: "alice"}); err == nil {
		t.Error("second Grant of the same ID succeeded")
	}
	if err := g.Do(ctx, "a1", "", func(context.Context) error { return nil }); !errors.Is(err, ErrRevoked) {
		t.Errorf("Do after re-Grant = %v; want ErrRevoked", err)
	}
}

func TestGrantCopiesScopes(t *testing.T) {
	g, _ := newTestGuard(t)
	scopes := []string{"items:read"}
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice", Scopes: scopes})
	scopes[0] = "items:delete" // the caller reusing its slice must not widen the grant
	err := g.Do(context.Background(), "a1", "items:delete", func(context.Context) error { return nil })
	if !errors.Is(err, ErrScope) {
		t.Fatalf("Do = %v; want ErrScope", err)
	}
}

// TestRevokeBeforeGrant: a revocation that arrives before its grant is recorded (a token revoked
// the moment it was issued) is not lost on either store: recording the grant afterwards fails, and
// no action runs with it.
func TestRevokeBeforeGrant(t *testing.T) {
	for _, store := range []string{"memory", "postgres"} {
		t.Run(store, func(t *testing.T) {
			g, _ := newTestGuard(t)
			if store == "postgres" {
				gs, _, _ := pgReplicas(t, 1)
				g = gs[0]
			}
			ctx := context.Background()
			if err := g.Revoke(ctx, "early"); err != nil {
				t.Fatalf("Revoke of an ID not recorded yet = %v; want nil", err)
			}
			err := g.Grant(ctx, Grant{ID: "early", Subject: "alice"})
			if !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "revoked before it was recorded") {
				t.Fatalf("Grant after Revoke = %v; want an error matching ErrRevoked saying it was revoked first", err)
			}
			if err := g.Do(ctx, "early", "", func(context.Context) error { return nil }); !errors.Is(err, ErrDenied) {
				t.Fatalf("Do on a grant revoked before it was recorded = %v; want a denial", err)
			}
			// Other IDs are untouched, and revoking the ID again is harmless.
			mustGrant(t, g, Grant{ID: "other", Subject: "alice"})
			if err := g.Revoke(ctx, "early"); err != nil {
				t.Fatalf("second Revoke = %v", err)
			}
		})
	}
}

// TestTombstonesAreBounded: the memory store keeps a tombstone for tombstoneTTL and at most
// maxTombstones of them, dropping the oldest first, so a flood of revocations of made-up IDs cannot
// grow memory without bound.
func TestTombstonesAreBounded(t *testing.T) {
	g, now := newTestGuard(t)
	ctx := context.Background()
	s := g.store.(*memStore)
	for i := range maxTombstones + 10 {
		if err := g.Revoke(ctx, fmt.Sprint("made-up-", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.buried); n != maxTombstones || len(s.tombstones) != maxTombstones {
		t.Fatalf("%d tombstones (%d queued) after %d revocations of unknown IDs; want at most %d",
			n, len(s.tombstones), maxTombstones+10, maxTombstones)
	}
	// The oldest were dropped, the newest kept.
	mustGrant(t, g, Grant{ID: "made-up-0", Subject: "alice"})
	last := fmt.Sprint("made-up-", maxTombstones+9)
	if err := g.Grant(ctx, Grant{ID: last, Subject: "alice"}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Grant of the newest tombstoned ID = %v; want ErrRevoked", err)
	}
	// Once tombstoneTTL has passed, the ID may be recorded, and the tombstones are gone.
	*now = epoch.Add(tombstoneTTL)
	mustGrant(t, g, Grant{ID: last, Subject: "alice"})
	if len(s.buried) != 0 || len(s.tombstones) != 0 {
		t.Fatalf("%d tombstones left after they all expired", len(s.buried))
	}
}

// TestZeroGuard: a Guard no constructor made refuses with an error that says what to do, instead of
// panicking on a nil pointer, and so does Do with no action.
func TestZeroGuard(t *testing.T) {
	ctx := context.Background()
	action := func(context.Context) error { t.Error("action ran"); return nil }
	for name, g := range map[string]*Guard{"nil": nil, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			calls := map[string]error{
				"Grant":     g.Grant(ctx, Grant{ID: "a", Subject: "s"}),
				"Do":        g.Do(ctx, "a", "", action),
				"Revoke":    g.Revoke(ctx, "a"),
				"SetScopes": g.SetScopes(ctx, "s", nil),
				"Listen":    g.Listen(ctx),
			}
			_, calls["StartFamily"] = g.StartFamily(ctx, Grant{ID: "a", Subject: "s"}, time.Hour)
			_, _, calls["Rotate"] = g.Rotate(ctx, "r", "b", time.Time{}, time.Hour)
			for call, err := range calls {
				if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "guard.New") {
					t.Errorf("%s on a %s Guard = %v; want ErrUnavailable saying to use guard.New", call, name, err)
				}
			}
			for call, setUp := range map[string]func(){
				"Require":    func() { g.Require("s", headerGrantID) },
				"Middleware": func() { g.Middleware("s", headerGrantID, http.NotFoundHandler()) },
				"Bearer":     func() { g.Bearer(&JWT{}) },
			} {
				if msg := panicMessage(setUp); !strings.Contains(msg, "guard.New") {
					t.Errorf("%s on a %s Guard panicked with %q; want a message saying to use guard.New", call, name, msg)
				}
			}
		})
	}
	g, _ := newTestGuard(t)
	mustGrant(t, g, Grant{ID: "a", Subject: "s"})
	if err := g.Do(ctx, "a", "", nil); err == nil || !strings.Contains(err.Error(), "action is nil") {
		t.Errorf("Do with a nil action = %v; want an error saying so", err)
	}
	if msg := panicMessage(func() { g.Require("s", headerGrantID)(nil) }); !strings.Contains(msg, "handler is nil") {
		t.Errorf("Require around a nil handler panicked with %q; want a message saying so", msg)
	}
}

// panicMessage runs f and returns what it panicked with, formatted; "" if it did not panic.
func panicMessage(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

func TestSweepForgetsExpiredGrants(t *testing.T) {
	g, now := newTestGuard(t)
	mustGrant(t, g, Grant{ID: "old", Subject: "alice", Expires: epoch.Add(time.Second)})
	*now = epoch.Add(sweepEvery + time.Second)
	mustGrant(t, g, Grant{ID: "new", Subject: "alice"})
	s := g.store.(*memStore)
	if s.grant("old") != nil {
		t.Fatal("expired grant still held after a sweep")
	}
	if s.grant("new") == nil {
		t.Fatal("live grant dropped by the sweep")
	}
}

// startAction runs an action on grantID in the background and returns once it is running. The
// action blocks until finish is closed, then records that it committed.
func startAction(t *testing.T, g *Guard, grantID, scope string, finish <-chan struct{}, committed *atomic.Bool) <-chan error {
	t.Helper()
	running := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- g.Do(context.Background(), grantID, scope, func(context.Context) error {
			close(running)
			<-finish
			committed.Store(true)
			return nil
		})
	}()
	select {
	case <-running:
	case err := <-done:
		t.Fatalf("action did not start: %v", err)
	}
	return done
}

// waitRefused spins until Do on grantID and scope is refused with want, which tells the test that a
// concurrent Revoke or SetScopes has taken effect without sleeping for an arbitrary time.
func waitRefused(t *testing.T, g *Guard, grantID, scope string, want error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := g.Do(context.Background(), grantID, scope, func(context.Context) error { return nil })
		if errors.Is(err, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Do still = %v; want %v", err, want)
		}
		runtime.Gosched()
	}
}

func TestRevokeWaitsForRunningAction(t *testing.T) {
	g, _ := newTestGuard(t)
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"items:delete"}})
	finish := make(chan struct{})
	var committed atomic.Bool
	actionDone := startAction(t, g, "a1", "items:delete", finish, &committed)

	revoked := make(chan error, 1)
	go func() { revoked <- g.Revoke(context.Background(), "a1") }()

	// New actions are refused while the running one still holds the grant...
	waitRefused(t, g, "a1", "items:delete", ErrRevoked)
	// ...and Revoke has not returned, because that action has not finished.
	select {
	case err := <-revoked:
		t.Fatalf("Revoke returned (%v) while an action on the grant was running", err)
	default:
	}

	close(finish)
	if err := <-revoked; err != nil {
		t.Fatalf("Revoke = %v", err)
	}
	if !committed.Load() {
		t.Fatal("Revoke returned before the running action committed")
	}
	if err := <-actionDone; err != nil {
		t.Fatalf("running action = %v; want nil (it was authorized before the revocation)", err)
	}
}

func TestNoActionAfterRevokeReturns(t *testing.T) {
	g, _ := newTestGuard(t)
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"items:delete"}})

	var revokeReturned atomic.Bool
	var ran, violations atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				err := g.Do(context.Background(), "a1", "items:delete", func(context.Context) error {
					ran.Add(1)
					runtime.Gosched() // widen the action so Revoke often lands during it
					// The action is about to commit: Revoke must not have returned yet.
					if revokeReturned.Load() {
						violations.Add(1)
					}
					return nil
				})
				if errors.Is(err, ErrRevoked) {
					return
				}
				if err != nil {
					t.Errorf("Do = %v", err)
					return
				}
			}
		}()
	}
	close(start)
	// Let the workers get going before revoking, ordered by the actions they run rather than a sleep.
	for ran.Load() < 100 {
		runtime.Gosched()
	}
	if err := g.Revoke(context.Background(), "a1"); err != nil {
		t.Fatal(err)
	}
	revokeReturned.Store(true)
	wg.Wait()
	if n := violations.Load(); n > 0 {
		t.Fatalf("%d actions committed after Revoke returned", n)
	}
}

func TestRevokeHonoursContext(t *testing.T) {
	g, _ := newTestGuard(t)
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"s"}})
	finish := make(chan struct{})
	var committed atomic.Bool
	actionDone := startAction(t, g, "a1", "s", finish, &committed)

	ctx, cancel := context.WithCancel(context.Background())
	revoked := make(chan error, 1)
	go func() { revoked <- g.Revoke(ctx, "a1") }()
	waitRefused(t, g, "a1", "s", ErrRevoked)
	cancel()
	if err := <-revoked; !errors.Is(err, context.Canceled) {
		t.Fatalf("Revoke = %v; want context.Canceled", err)
	}
	// Giving up the wait does not undo the revocation.
	waitRefused(t, g, "a1", "s", ErrRevoked)
	close(finish)
	<-actionDone
}

func TestPanickingActionReleasesGrant(t *testing.T) {
	g, _ := newTestGuard(t)
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"s"}})
	func() {
		defer func() { _ = recover() }()
		_ = g.Do(context.Background(), "a1", "s", func(context.Context) error { panic("boom") })
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Revoke(ctx, "a1"); err != nil {
		t.Fatalf("Revoke after a panicking action = %v; the pin leaked", err)
	}
}

func TestSetScopesWaitsForRemovedScopeOnly(t *testing.T) {
	g, _ := newTestGuard(t)
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"items:read", "reports:read"}})
	mustGrant(t, g, Grant{ID: "a2", Subject: "alice", Scopes: []string{"items:read", "reports:read"}})

	finishReport := make(chan struct{})
	finishItems := make(chan struct{})
	defer close(finishItems)
	var reportCommitted, itemsCommitted atomic.Bool
	reportDone := startAction(t, g, "a1", "reports:read", finishReport, &reportCommitted)
	startAction(t, g, "a2", "items:read", finishItems, &itemsCommitted)

	set := make(chan error, 1)
	go func() { set <- g.SetScopes(context.Background(), "alice", []string{"items:read"}) }()

	// Every grant of the subject loses the scope at once, not only the one in flight.
	waitRefused(t, g, "a2", "reports:read", ErrScope)
	select {
	case err := <-set:
		t.Fatalf("SetScopes returned (%v) while an action using the removed scope was running", err)
	default:
	}
	close(finishReport)
	// The items:read action still runs: its scope was kept, so SetScopes does not wait for it.
	if err := <-set; err != nil {
		t.Fatalf("SetScopes = %v", err)
	}
	if !reportCommitted.Load() {
		t.Fatal("SetScopes returned before the action using the removed scope committed")
	}
	if itemsCommitted.Load() {
		t.Fatal("items action finished early; the test proves nothing")
	}
	if err := <-reportDone; err != nil {
		t.Fatal(err)
	}
}

func TestSetScopesHonoursContext(t *testing.T) {
	g, _ := newTestGuard(t)
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"reports:read"}})
	finish := make(chan struct{})
	var committed atomic.Bool
	actionDone := startAction(t, g, "a1", "reports:read", finish, &committed)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.SetScopes(ctx, "alice", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("SetScopes = %v; want context.Canceled", err)
	}
	waitRefused(t, g, "a1", "reports:read", ErrScope)
	close(finish)
	<-actionDone
}

func BenchmarkDo(b *testing.B) {
	ctx := context.Background()
	action := func(context.Context) error { return nil }
	b.Run("uncontended", func(b *testing.B) {
		g := New()
		mustGrant(b, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"items:read"}})
		for b.Loop() {
			if err := g.Do(ctx, "a1", "items:read", action); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		// All goroutines share one grant, the worst case for the single mutex.
		g := New()
		mustGrant(b, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"items:read"}})
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := g.Do(ctx, "a1", "items:read", action); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
