package guard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tocsin/tocsin/internal/pgtest"
)

// pgReplicas returns n Guards on one fresh database, each with its own pool, as n replicas of a
// service would have. Their clocks stand at epoch until the test moves *now.
func pgReplicas(t testing.TB, n int, opts ...Option) ([]*Guard, *time.Time, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.Shared(t).NewDatabase(t)
	ctx := context.Background()
	now := epoch
	var guards []*Guard
	var first *pgxpool.Pool
	for i := range n {
		// More connections than the default 4, so tests with many concurrent actions do not
		// queue on the pool instead of on the database.
		pool, err := pgxpool.New(ctx, url+"&pool_max_conns=20")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		if i == 0 {
			first = pool
			if err := Migrate(ctx, pool); err != nil {
				t.Fatal(err)
			}
		}
		g := NewPostgres(pool, opts...)
		g.now = func() time.Time { return now }
		guards = append(guards, g)
	}
	return guards, &now, first
}

func TestPostgresDecides(t *testing.T) {
	gs, now, _ := pgReplicas(t, 2)
	g, other := gs[0], gs[1]
	ctx := context.Background()
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"items:read", "reports:read"}, Expires: epoch.Add(time.Hour)})
	mustGrant(t, g, Grant{ID: "a2", Subject: "alice", Scopes: []string{"items:read"}})
	mustGrant(t, g, Grant{ID: "b1", Subject: "bob", Scopes: []string{"reports:read"}})
	if err := g.Grant(ctx, Grant{ID: "a1", Subject: "alice"}); err == nil || !strings.Contains(err.Error(), "already recorded") {
		t.Fatalf("recording a1 twice = %v; want an error saying it is already recorded", err)
	}
	do := func(g *Guard, id, scope string) error {
		return g.Do(ctx, id, scope, func(context.Context) error { return nil })
	}
	steps := []struct {
		name      string
		change    func() error
		g         *Guard
		id, scope string
		want      error
	}{
		{name: "granted", g: g, id: "a1", scope: "items:read"},
		{name: "granted, seen by another replica", g: other, id: "a1", scope: "reports:read"},
		{name: "empty scope", g: other, id: "a1"},
		{name: "unknown", g: g, id: "nope", scope: "items:read", want: ErrUnknownGrant},
		{name: "scope not granted", g: g, id: "a1", scope: "items:delete", want: ErrScope},
		{name: "subject cut on one replica, seen on the other", g: other, id: "a1", scope: "reports:read", want: ErrScope,
			change: func() error { return g.SetScopes(ctx, "alice", []string{"items:read"}) }},
		{name: "other subjects untouched", g: other, id: "b1", scope: "reports:read"},
		{name: "subject scope does not widen a grant", g: g, id: "a2", scope: "reports:read", want: ErrScope,
			change: func() error { return other.SetScopes(ctx, "alice", []string{"items:read", "reports:read"}) }},
		{name: "subject scope restored", g: g, id: "a1", scope: "reports:read"},
		{name: "revoked on one replica, refused on the other", g: other, id: "a1", scope: "items:read", want: ErrRevoked,
			change: func() error { return g.Revoke(ctx, "a1") }},
		{name: "other grants of the subject untouched", g: other, id: "a2", scope: "items:read"},
		{name: "revoking an unknown grant leaves the others alone", g: g, id: "a2", scope: "items:read",
			change: func() error { return g.Revoke(ctx, "nope") }},
		{name: "expired", g: g, id: "b1", scope: "reports:read",
			change: func() error {
				mustGrant(t, g, Grant{ID: "b2", Subject: "bob", Scopes: []string{"reports:read"}, Expires: epoch})
				return nil
			}},
	}
	for _, s := range steps {
		if s.change != nil {
			if err := s.change(); err != nil {
				t.Fatalf("%s: change: %v", s.name, err)
			}
		}
		if err := do(s.g, s.id, s.scope); !errors.Is(err, s.want) || (s.want == nil && err != nil) {
			t.Errorf("%s: Do(%q, %q) = %v; want %v", s.name, s.id, s.scope, err, s.want)
		}
	}
	if err := do(g, "b2", "reports:read"); !errors.Is(err, ErrExpired) {
		t.Errorf("expired grant: Do = %v; want %v", err, ErrExpired)
	}
	*now = epoch.Add(-time.Nanosecond)
	if err := do(g, "b2", "reports:read"); err != nil {
		t.Errorf("one tick before expiry: Do = %v; want nil", err)
	}
}

// TestPostgresRevokeWaitsAcrossReplicas: an action pinned on one replica holds back a Revoke made
// on another, for both Do (its own transaction) and DoTx (the caller's).
func TestPostgresRevokeWaitsAcrossReplicas(t *testing.T) {
	gs, _, pool := pgReplicas(t, 2)
	ctx := context.Background()
	for _, viaTx := range []bool{false, true} {
		id := "do"
		if viaTx {
			id = "dotx"
		}
		mustGrant(t, gs[0], Grant{ID: id, Subject: "alice", Scopes: []string{"items:delete"}})
		running, finish := make(chan struct{}), make(chan struct{})
		var committed atomic.Bool
		actionDone := make(chan error, 1)
		go func() {
			action := func(context.Context) error {
				close(running)
				<-finish
				committed.Store(true)
				return nil
			}
			if !viaTx {
				actionDone <- gs[0].Do(ctx, id, "items:delete", action)
				return
			}
			actionDone <- pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				return DoTx(ctx, tx, id, "items:delete", action)
			})
		}()
		select {
		case <-running:
		case err := <-actionDone:
			t.Fatalf("%s: action did not start: %v", id, err)
		}
		revoked := make(chan error, 1)
		go func() { revoked <- gs[1].Revoke(ctx, id) }()
		// The replica that did not run the action refuses the grant while Revoke still waits.
		waitRefused(t, gs[1], id, "items:delete", ErrRevoked)
		select {
		case err := <-revoked:
			t.Fatalf("%s: Revoke returned (%v) while an action on the grant was running on another replica", id, err)
		case <-time.After(50 * time.Millisecond):
		}
		close(finish)
		if err := <-revoked; err != nil {
			t.Fatalf("%s: Revoke = %v", id, err)
		}
		if !committed.Load() {
			t.Fatalf("%s: Revoke returned before the running action committed", id)
		}
		if err := <-actionDone; err != nil {
			t.Fatalf("%s: action = %v", id, err)
		}
	}
}

// TestPostgresRevokeIsNotStarved: with actions pinning the grant back to back from several
// replicas, so that the grant's row is never free, Revoke returns after about one action's length,
// and no action runs after it has. In PostgreSQL a new FOR SHARE does not queue behind a waiting
// UPDATE, so a Revoke that only updated the row would wait until the stream happened to pause
// (measured here: 0.6-1.4 s, against about 52 ms with the two-step revoke).
func TestPostgresRevokeIsNotStarved(t *testing.T) {
	gs, _, _ := pgReplicas(t, 3)
	ctx := context.Background()
	mustGrant(t, gs[0], Grant{ID: "hot", Subject: "alice", Scopes: []string{"s"}})
	const (
		workers = 12
		hold    = 50 * time.Millisecond
	)
	var revokeReturned atomic.Bool
	var ran, late atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := gs[i%3].Do(ctx, "hot", "s", func(context.Context) error {
					ran.Add(1)
					time.Sleep(hold)
					if revokeReturned.Load() {
						late.Add(1)
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
	deadline := time.Now().Add(10 * time.Second)
	for ran.Load() < 3*workers && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	start := time.Now()
	err := gs[1].Revoke(rctx, "hot")
	took := time.Since(start)
	cancel()
	revokeReturned.Store(true)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Revoke under a steady stream of actions = %v; want it to return", err)
	}
	if ran.Load() < 3*workers {
		t.Fatalf("only %d actions ran before the revocation; the test did not load the grant", ran.Load())
	}
	if n := late.Load(); n > 0 {
		t.Fatalf("%d actions were running after Revoke returned", n)
	}
	// One action's length plus slack for a slow machine; a starved Revoke takes many.
	if limit := 10 * hold; took > limit {
		t.Fatalf("Revoke took %v under a stream of %v actions; want under %v (is it queued behind new pins?)", took, hold, limit)
	}
	t.Logf("Revoke took %v with %d workers holding the grant %v each", took, workers, hold)
}

func TestPostgresSetScopesWaits(t *testing.T) {
	gs, _, _ := pgReplicas(t, 2)
	ctx := context.Background()
	mustGrant(t, gs[0], Grant{ID: "a1", Subject: "alice", Scopes: []string{"items:read", "items:write"}})
	finish := make(chan struct{})
	var committed atomic.Bool
	actionDone := startAction(t, gs[0], "a1", "items:write", finish, &committed)
	cut := make(chan error, 1)
	go func() { cut <- gs[1].SetScopes(ctx, "alice", []string{"items:read"}) }()
	waitRefused(t, gs[1], "a1", "items:write", ErrScope)
	select {
	case err := <-cut:
		t.Fatalf("SetScopes returned (%v) while an action using the removed scope was running", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(finish)
	if err := <-cut; err != nil {
		t.Fatal(err)
	}
	if !committed.Load() {
		t.Fatal("SetScopes returned before the running action committed")
	}
	if err := <-actionDone; err != nil {
		t.Fatal(err)
	}
}

func TestPostgresLockTimeout(t *testing.T) {
	gs, _, _ := pgReplicas(t, 2, WithLockTimeout(50*time.Millisecond))
	ctx := context.Background()
	mustGrant(t, gs[0], Grant{ID: "a1", Subject: "alice", Scopes: []string{"s"}})
	finish := make(chan struct{})
	var committed atomic.Bool
	actionDone := startAction(t, gs[0], "a1", "s", finish, &committed)
	err := gs[1].Revoke(ctx, "a1")
	if err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("Revoke with an action pinned past the lock timeout = %v; want an error saying actions are still running", err)
	}
	// The revocation itself stands: new actions are refused.
	if err := gs[1].Do(ctx, "a1", "s", func(context.Context) error { return nil }); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Do after a timed-out Revoke = %v; want %v", err, ErrRevoked)
	}
	close(finish)
	<-actionDone
	if err := gs[1].Revoke(ctx, "a1"); err != nil {
		t.Fatalf("Revoke again once the action finished = %v", err)
	}
}

// TestPostgresFailsClosed: with the database unreachable nothing runs, and the error says so.
func TestPostgresFailsClosed(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.Start(t)
	pool, err := pgxpool.New(ctx, srv.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	g := NewPostgres(pool)
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"s"}})
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	var ran bool
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err = g.Do(short, "a1", "s", func(context.Context) error { ran = true; return nil })
	if ran || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrDenied) {
		t.Fatalf("Do with the database down: ran=%v, err=%v; want not run and %v", ran, err, ErrUnavailable)
	}
	// Every call that needs the store says it is unavailable, not a raw driver error.
	calls := map[string]error{
		"Revoke":    g.Revoke(short, "a1"),
		"Grant":     g.Grant(short, Grant{ID: "a2", Subject: "alice"}),
		"SetScopes": g.SetScopes(short, "alice", nil),
	}
	_, calls["StartFamily"] = g.StartFamily(short, Grant{ID: "a3", Subject: "alice"}, time.Hour)
	_, _, calls["Rotate"] = g.Rotate(short, "refresh", "a4", time.Now().Add(time.Hour), time.Hour)
	for call, err := range calls {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with the database down = %v; want an error matching %v", call, err, ErrUnavailable)
		}
	}
	// Middleware answers 503 and says why, without running the handler.
	h := g.Middleware("s", func(*http.Request) (string, error) { return "a1", nil },
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = true }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(short, http.MethodGet, "/", nil))
	if ran || rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "authorization store is unreachable") {
		t.Fatalf("Middleware with the database down: ran=%v, %d %s; want 503 saying the store is unreachable", ran, rec.Code, rec.Body)
	}
	// The service recovers once the database is back.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = g.Do(ctx, "a1", "s", func(context.Context) error { return nil })
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Do after the database came back = %v", err)
	}
}

// TestPostgresTombstonesAreBounded: revocations of unknown IDs are kept for tombstoneTTL and at most
// maxTombstones of them, the oldest deleted first, except one whose grant was recorded after all,
// which is what refuses that grant.
func TestPostgresTombstonesAreBounded(t *testing.T) {
	gs, _, pool := pgReplicas(t, 1)
	g := gs[0]
	ctx := context.Background()
	mustGrant(t, g, Grant{ID: "raced", Subject: "alice"})
	_, err := pool.Exec(ctx, `INSERT INTO guard_revocations (grant_id, until)
		SELECT 'flood-' || i, now() + interval '1 hour' + i * interval '1 millisecond' FROM generate_series(1, $1::int) i
		UNION ALL VALUES ('expired', now() - interval '1 second'), ('raced', now() - interval '1 second')`, maxTombstones+5)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Revoke(ctx, "made-up"); err != nil { // lays a tombstone and sweeps
		t.Fatal(err)
	}
	var tombstones int
	var expired, raced, oldest, newest bool
	err = pool.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE until IS NOT NULL),
		bool_or(grant_id = 'expired'), bool_or(grant_id = 'raced'), bool_or(grant_id = 'flood-1'), bool_or(grant_id = 'made-up')
		FROM guard_revocations`).Scan(&tombstones, &expired, &raced, &oldest, &newest)
	if err != nil {
		t.Fatal(err)
	}
	// The tombstone of "raced" is kept beside the newest maxTombstones.
	if tombstones != maxTombstones+1 || expired || !raced || oldest || !newest {
		t.Fatalf("after a sweep: %d tombstones, expired kept %v, raced kept %v, oldest kept %v, newest kept %v; "+
			"want %d, false, true, false, true", tombstones, expired, raced, oldest, newest, maxTombstones+1)
	}
	if err := g.Do(ctx, "raced", "", func(context.Context) error { return nil }); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Do on a grant whose revocation came first = %v; want %v", err, ErrRevoked)
	}
}

// A database where Migrate was never run: every call fails closed with an error matching
// ErrUnavailable (docs/guard.md says so) that names the cause, and no action runs.
func TestPostgresWithoutMigrateFailsClosed(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.Shared(t).NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	g := NewPostgres(pool)
	var ran bool
	err = g.Do(ctx, "a1", "s", func(context.Context) error { ran = true; return nil })
	if ran || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrDenied) {
		t.Fatalf("Do without the tables: ran=%v, err=%v; want not run and %v", ran, err, ErrUnavailable)
	}
	calls := map[string]error{
		"Grant":     g.Grant(ctx, Grant{ID: "a1", Subject: "alice"}),
		"Revoke":    g.Revoke(ctx, "a1"),
		"SetScopes": g.SetScopes(ctx, "alice", nil),
	}
	for call, err := range calls {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s without the tables = %v; want an error matching %v", call, err, ErrUnavailable)
		}
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	err = DoTx(ctx, tx, "a1", "s", func(context.Context) error { ran = true; return nil })
	if ran || !errors.Is(err, ErrUnavailable) {
		t.Errorf("DoTx without the tables: ran=%v, err=%v; want not run and %v", ran, err, ErrUnavailable)
	}
	// A nil transaction or function is the caller's mistake, said as such, never a run.
	if err := DoTx(ctx, nil, "a1", "s", func(context.Context) error { ran = true; return nil }); err == nil || ran || !strings.Contains(err.Error(), "must not be nil") {
		t.Errorf("DoTx with a nil tx: ran=%v, err=%v; want an error saying so", ran, err)
	}
	if err := DoTx(ctx, tx, "a1", "s", nil); err == nil || !strings.Contains(err.Error(), "must not be nil") {
		t.Errorf("DoTx with a nil fn = %v; want an error saying so", err)
	}
}
