package guard

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestMemStoreStress runs actions on many grants and subjects while other goroutines revoke
// grants, cut and restore subjects' scopes, record short-lived grants and sweep. It checks that no
// action runs once the Revoke of its grant, or a SetScopes removing its scope, has returned.
func TestMemStoreStress(t *testing.T) {
	const (
		nGrants   = 256
		nSubjects = 8 // the first half get SetScopes; the others are swept and made again
		nWorkers  = 16
		duration  = time.Second
	)
	scopes := []string{"a", "b", "c"}
	g := New()
	s := g.store.(*memStore)
	ctx := context.Background()

	revoked := make([]atomic.Bool, nGrants) // set once Revoke of grant i returned nil
	cut := make([]atomic.Uint32, nSubjects) // bit k: a SetScopes removing scopes[k] returned
	for i := range nGrants {
		mustGrant(t, g, Grant{ID: fmt.Sprintf("g%d", i), Subject: fmt.Sprintf("s%d", i%nSubjects), Scopes: scopes})
	}

	var violations atomic.Int64
	var firstViolation atomic.Value
	violate := func(format string, args ...any) {
		if violations.Add(1) == 1 {
			firstViolation.Store(fmt.Sprintf(format, args...))
		}
	}
	check := func(grant, subject, scope int, when string) {
		if grant >= 0 && revoked[grant].Load() {
			violate("action on g%d ran (%s) after its Revoke returned", grant, when)
		}
		if scope >= 0 && cut[subject].Load()&(1<<scope) != 0 {
			violate("action of s%d on %q ran (%s) after SetScopes removed it", subject, scopes[scope], when)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ran atomic.Int64

	for w := range nWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				grant, id := r.IntN(nGrants), ""
				if r.IntN(8) == 0 {
					id, grant = fmt.Sprintf("e%d", r.IntN(64)), -1 // short-lived, swept
				} else {
					id = fmt.Sprintf("g%d", grant)
				}
				subject := grant % nSubjects
				scope, name := r.IntN(len(scopes)+1)-1, ""
				if scope >= 0 {
					name = scopes[scope]
				}
				if grant < 0 {
					scope = -1 // its subject is not tracked
				}
				err := g.Do(ctx, id, name, func(context.Context) error {
					check(grant, subject, scope, "at start")
					for range r.IntN(4) {
						runtime.Gosched()
					}
					check(grant, subject, scope, "at end")
					ran.Add(1)
					return nil
				})
				if err != nil && !errors.Is(err, ErrDenied) {
					violate("Do(%s, %q): unexpected error %v", id, name, err)
				}
			}
		}()
	}

	// Revoker: revokes half the grants in turn, some first with a ctx that ends before the actions finish.
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(99, 2))
		for _, i := range r.Perm(nGrants)[:nGrants/2] {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(r.IntN(3)) * time.Millisecond):
			}
			id := fmt.Sprintf("g%d", i)
			if r.IntN(3) == 0 {
				short, cancel := context.WithTimeout(ctx, time.Microsecond)
				err := g.Revoke(short, id)
				cancel()
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					violate("Revoke(%s) with a short ctx: %v", id, err)
				}
			}
			if err := g.Revoke(ctx, id); err != nil {
				violate("Revoke(%s): %v", id, err)
				return
			}
			revoked[i].Store(true)
		}
	}()

	// Setters: one per subject of the first half, so each owns its subject's cut mask.
	for subject := range nSubjects / 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(subject), 3))
			name := fmt.Sprintf("s%d", subject)
			for {
				select {
				case <-stop:
					return
				default:
				}
				keep := uint32(r.IntN(1 << len(scopes)))
				var allowed []string
				for k, sc := range scopes {
					if keep&(1<<k) != 0 {
						allowed = append(allowed, sc)
					}
				}
				// Scopes being restored are no longer cut from the moment SetScopes is called.
				cut[subject].Store(cut[subject].Load() &^ keep)
				if err := g.SetScopes(ctx, name, allowed); err != nil {
					violate("SetScopes(%s): %v", name, err)
					return
				}
				cut[subject].Store(^keep & (1<<len(scopes) - 1))
				time.Sleep(time.Duration(r.IntN(500)) * time.Microsecond)
			}
		}()
	}

	// Churn: records grants that expire at once, and sweeps as put does once a minute.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
			gr := Grant{ID: fmt.Sprintf("e%d", n%64), Subject: fmt.Sprintf("s%d", nSubjects/2+n%(nSubjects/2)), Scopes: scopes, Expires: time.Now().Add(time.Millisecond)}
			// The ID is reused once the sweep has forgotten it; before that, put refuses it.
			_ = g.Grant(ctx, gr)
			if n%8 == 0 {
				s.putMu.Lock()
				s.sweep(time.Now())
				s.putMu.Unlock()
			}
		}
	}()

	time.Sleep(duration)
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("stress goroutines did not stop: a waiter or an action is stuck")
	}
	if n := violations.Load(); n > 0 {
		t.Fatalf("%d violations; first: %v", n, firstViolation.Load())
	}
	if ran.Load() == 0 {
		t.Fatal("no action ran")
	}
	t.Logf("%d actions ran", ran.Load())

	// Nothing is left pinned: every grant and subject count is back to zero.
	s.grants.Range(func(id, v any) bool {
		if n := v.(*memGrant).state.Load() & pinMask; n != 0 {
			t.Errorf("grant %s: %d in flight after every action returned", id, n)
		}
		return true
	})
	for i := range s.subjectShards {
		for name, sub := range s.subjectShards[i].subjects {
			if busy(sub) {
				t.Errorf("subject %s still busy after every action returned", name)
			}
		}
	}
}

// TestMemSweepKeepsBusySubject checks that a sweep keeps a subject with a running action, so that
// a SetScopes made meanwhile still waits for that action.
func TestMemSweepKeepsBusySubject(t *testing.T) {
	g, now := newTestGuard(t)
	s := g.store.(*memStore)
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"items:write"}})
	finish := make(chan struct{})
	var committed atomic.Bool
	done := startAction(t, g, "a1", "items:write", finish, &committed)

	s.putMu.Lock()
	s.sweep(*now)
	s.putMu.Unlock()

	cut := make(chan error, 1)
	go func() { cut <- g.SetScopes(context.Background(), "alice", nil) }()
	select {
	case err := <-cut:
		t.Fatalf("SetScopes returned (%v) while an action on the removed scope was running", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(finish)
	if err := <-done; err != nil {
		t.Fatalf("Do = %v", err)
	}
	if err := <-cut; err != nil {
		t.Fatalf("SetScopes = %v", err)
	}
	if !committed.Load() {
		t.Fatal("action did not commit")
	}
}

// TestMemSweptSubjectSeesNewScopes checks the subject's life: a sweep keeps a subject that still has
// a grant, so the grant's cached subject sees a later SetScopes; a subject whose grants all expired
// is forgotten, and a grant recorded after that gets a fresh entry that SetScopes reaches too.
func TestMemSweptSubjectSeesNewScopes(t *testing.T) {
	g, now := newTestGuard(t)
	s := g.store.(*memStore)
	ctx := context.Background()
	nop := func(context.Context) error { return nil }
	sweep := func() {
		s.putMu.Lock()
		s.sweep(*now)
		s.putMu.Unlock()
	}
	subjects := func() int {
		n := 0
		for i := range s.subjectShards {
			n += len(s.subjectShards[i].subjects)
		}
		return n
	}
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"items:read", "items:write"}})
	mustGrant(t, g, Grant{ID: "b1", Subject: "bob", Scopes: []string{"items:write"}, Expires: now.Add(time.Second)})
	if err := g.Do(ctx, "a1", "items:write", nop); err != nil {
		t.Fatalf("Do = %v", err)
	}
	*now = now.Add(2 * time.Second)
	sweep() // b1 expired: bob is forgotten; alice keeps her grant and her entry
	if n := subjects(); n != 1 {
		t.Fatalf("%d subjects after the sweep; want 1 (alice)", n)
	}
	if err := g.SetScopes(ctx, "alice", []string{"items:read"}); err != nil {
		t.Fatalf("SetScopes = %v", err)
	}
	if err := g.Do(ctx, "a1", "items:write", nop); !errors.Is(err, ErrScope) {
		t.Fatalf("Do after the cut = %v; want ErrScope", err)
	}
	if err := g.Do(ctx, "a1", "items:read", nop); err != nil {
		t.Fatalf("Do on a kept scope = %v", err)
	}
	mustGrant(t, g, Grant{ID: "b2", Subject: "bob", Scopes: []string{"items:write"}})
	if err := g.SetScopes(ctx, "bob", nil); err != nil {
		t.Fatalf("SetScopes = %v", err)
	}
	if err := g.Do(ctx, "b2", "items:write", nop); !errors.Is(err, ErrScope) {
		t.Fatalf("Do of a grant recorded after its subject was forgotten = %v; want ErrScope", err)
	}
	if err := g.Do(ctx, "b1", "", nop); !errors.Is(err, ErrUnknownGrant) {
		t.Fatalf("Do of a swept grant = %v; want ErrUnknownGrant", err)
	}
}

// TestMemExpiryOnRealClock checks expiry as New's guard measures it, on the monotonic clock from the
// moment the grant was recorded.
func TestMemExpiryOnRealClock(t *testing.T) {
	g := New()
	ctx := context.Background()
	nop := func(context.Context) error { return nil }
	mustGrant(t, g, Grant{ID: "short", Subject: "alice", Expires: time.Now().Add(50 * time.Millisecond)})
	mustGrant(t, g, Grant{ID: "past", Subject: "alice", Expires: time.Now().Add(-time.Second)})
	mustGrant(t, g, Grant{ID: "forever", Subject: "alice"})
	if err := g.Do(ctx, "short", "", nop); err != nil {
		t.Fatalf("Do before expiry = %v", err)
	}
	if err := g.Do(ctx, "past", "", nop); !errors.Is(err, ErrExpired) {
		t.Fatalf("Do of a grant recorded already expired = %v; want ErrExpired", err)
	}
	time.Sleep(80 * time.Millisecond)
	if err := g.Do(ctx, "short", "", nop); !errors.Is(err, ErrExpired) {
		t.Fatalf("Do after expiry = %v; want ErrExpired", err)
	}
	if err := g.Do(ctx, "forever", "", nop); err != nil {
		t.Fatalf("Do of a grant without expiry = %v", err)
	}
}

// busy reports whether sub has a running action on any scope. sub.mu must be held.
func busy(sub *memSubject) bool {
	for _, p := range sub.pins {
		if p.n.Load() > 0 {
			return true
		}
	}
	return false
}
