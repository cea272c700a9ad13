package guard

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"
)

// memStore spreads its state over locks so that actions on different grants do not contend:
//
//   - grants live in grantShards, picked by a hash of the grant ID; a shard's mutex guards its map
//     and the mutable fields (revoked, inFlight, idle, sub, releases) of its grants;
//   - subjects live in subjectShards, picked by a hash of the subject; a shard's mutex guards only
//     its map, and each memSubject has its own mutex for allowed, inFlight and changed;
//   - regMu guards grants (the registry of every recorded ID, used by put and sweep only, never by
//     Do) and lastSweep. The registry holds the same grants as the shards' maps, changed under
//     regMu and the shard together; it costs a map entry per grant and lets tests look a grant up.
//
// Lock order, always: regMu, then one grant shard, then one subject shard, then one subject. No
// code holds two grant shards, two subject shards or two subjects at once, and any lock may be
// skipped (acquire goes from the grant's shard straight to the subject it cached in the grant;
// release takes the grant's shard, drops it, then takes the subject), so no cycle and no deadlock
// is possible. acquire holds the grant's shard from the check
// of revoked and expiry until the grant's count is raised, so a revoke (which sets revoked under
// that shard) either sees the count raised or makes acquire refuse; likewise acquire holds the
// subject from the check of allowed until the per-scope count is raised, so setScopes (which sets
// allowed under the subject) either sees the count raised or makes acquire refuse.
//
// Waiters (Revoke, SetScopes) sleep on a channel that the last action to finish closes; a closed
// channel cannot be reopened, so a fresh one is made for the next wait. Waiting on a channel rather
// than a sync.Cond lets a waiter also watch its ctx.
type memStore struct {
	seed          maphash.Seed
	grantShards   [memShards]grantShard
	subjectShards [memShards]subjectShard

	regMu     sync.Mutex
	grants    map[string]*memGrant // every recorded grant; the same set as the shards' maps
	lastSweep time.Time
}

// memShards is the number of grant shards and of subject shards.
const memShards = 64

// The shards are padded to a cache line each, so that goroutines locking neighbouring shards do
// not slow each other down by writing to the same line.
type grantShard struct {
	mu     sync.Mutex
	grants map[string]*memGrant
	_      [48]byte
}

type subjectShard struct {
	mu       sync.Mutex
	subjects map[string]*memSubject
	_        [48]byte
}

type memGrant struct {
	Grant
	revoked  bool          // guarded by the grant's shard, as are the fields below
	inFlight int           // running actions on the grant
	idle     chan struct{} // made by a waiter; closed when inFlight drops to zero

	// sub is the subject's entry as last found, so that acquire need not look it up each time;
	// acquire checks under sub.mu that sweep has not dropped it. It does not change while the grant
	// has a running action, since sweep keeps a subject with a running action.
	sub *memSubject
	// releases[i] drops a pin on Scopes[i], and the last one a pin without a scope; each is made on
	// first use and then reused, so that acquire does not allocate.
	releases []func()
}

type memSubject struct {
	mu       sync.Mutex
	dead     bool            // dropped from its shard by sweep: look the subject up again
	allowed  map[string]bool // nil until SetScopes is called: the grants' own scopes apply
	inFlight map[string]int  // running actions per scope
	changed  chan struct{}   // made by a waiter; closed when an in-flight count drops to zero
}

// sweepEvery bounds how often put scans for expired grants to drop, so memory stays bounded by the
// grants still valid rather than by every grant ever issued.
const sweepEvery = time.Minute

func newMemStore() *memStore {
	s := &memStore{seed: maphash.MakeSeed(), grants: map[string]*memGrant{}}
	for i := range s.grantShards {
		s.grantShards[i].grants = map[string]*memGrant{}
	}
	for i := range s.subjectShards {
		s.subjectShards[i].subjects = map[string]*memSubject{}
	}
	return s
}

func (s *memStore) grantShard(id string) *grantShard {
	return &s.grantShards[maphash.String(s.seed, id)%memShards]
}

func (s *memStore) subjectShard(subject string) *subjectShard {
	return &s.subjectShards[maphash.String(s.seed, subject)%memShards]
}

// lockSubject returns the subject's entry, made if missing, with its mutex held. It holds the
// subject's shard only while locking the entry, so sweep (which deletes under both) cannot drop
// the entry between the lookup and the lock.
func (s *memStore) lockSubject(subject string) *memSubject {
	sh := s.subjectShard(subject)
	sh.mu.Lock()
	sub := sh.subjects[subject]
	if sub == nil {
		sub = &memSubject{inFlight: map[string]int{}}
		sh.subjects[subject] = sub
	}
	sub.mu.Lock()
	sh.mu.Unlock()
	return sub
}

func (s *memStore) put(_ context.Context, gr Grant, now time.Time) error {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	if now.Sub(s.lastSweep) >= sweepEvery {
		s.sweep(now)
	}
	if _, ok := s.grants[gr.ID]; ok {
		return fmt.Errorf("guard: grant %q already recorded", gr.ID)
	}
	g := &memGrant{Grant: gr}
	s.grants[gr.ID] = g
	sh := s.grantShard(gr.ID)
	sh.mu.Lock()
	sh.grants[gr.ID] = g
	sh.mu.Unlock()
	return nil
}

// sweep forgets expired grants that nothing is using, and subjects with nothing to remember (no
// SetScopes, no running action). Do refuses forgotten grants either way (as unknown rather than
// expired). Subjects are kept between actions rather than dropped as each ends, so the hot path
// does not allocate one per action. It runs at most once per sweepEvery and holds one shard at a
// time, so actions on the other shards go on meanwhile. s.regMu must be held.
func (s *memStore) sweep(now time.Time) {
	s.lastSweep = now
	for i := range s.grantShards {
		sh := &s.grantShards[i]
		sh.mu.Lock()
		for id, g := range sh.grants {
			if !g.Expires.IsZero() && !now.Before(g.Expires) && g.inFlight == 0 {
				delete(sh.grants, id)
				delete(s.grants, id)
			}
		}
		sh.mu.Unlock()
	}
	for i := range s.subjectShards {
		sh := &s.subjectShards[i]
		sh.mu.Lock()
		for name, sub := range sh.subjects {
			sub.mu.Lock()
			if sub.allowed == nil && !busy(sub) {
				sub.dead = true
				delete(sh.subjects, name)
			}
			sub.mu.Unlock()
		}
		sh.mu.Unlock()
	}
}

func (s *memStore) acquire(_ context.Context, grantID, scope string, now time.Time) (func(), error) {
	sh := s.grantShard(grantID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	g, ok := sh.grants[grantID]
	switch {
	case !ok:
		return nil, ErrUnknownGrant
	case g.revoked:
		return nil, ErrRevoked
	case !g.Expires.IsZero() && !now.Before(g.Expires):
		return nil, ErrExpired
	}
	i := len(g.Scopes) // the index of scope in g.releases
	if scope != "" {
		if i = slices.Index(g.Scopes, scope); i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrScope, scope)
		}
	}
	sub := g.sub
	if sub != nil {
		sub.mu.Lock()
		if sub.dead {
			sub.mu.Unlock()
			sub = nil
		}
	}
	if sub == nil {
		sub = s.lockSubject(g.Subject)
		g.sub = sub
	}
	if scope != "" && sub.allowed != nil && !sub.allowed[scope] {
		sub.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", ErrScope, scope)
	}
	sub.inFlight[scope]++
	sub.mu.Unlock()
	g.inFlight++

	// Do calls release exactly once (deferred), so it needs no guard against a second call.
	if g.releases == nil {
		g.releases = make([]func(), len(g.Scopes)+1)
	}
	if g.releases[i] == nil {
		g.releases[i] = func() { s.release(sh, g, scope) }
	}
	return g.releases[i], nil
}

// release drops a pin taken by acquire.
func (s *memStore) release(sh *grantShard, g *memGrant, scope string) {
	sh.mu.Lock()
	g.inFlight--
	if g.inFlight == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
	sub := g.sub // the entry acquire counted on: it cannot have changed while the pin was held
	sh.mu.Unlock()

	sub.mu.Lock()
	defer sub.mu.Unlock()
	// The entry stays at zero rather than being deleted: the next action on this scope would only
	// insert it again, and that churn was a measurable part of what guard adds to a request.
	n := sub.inFlight[scope] - 1
	sub.inFlight[scope] = n
	if n > 0 {
		return
	}
	if sub.changed != nil {
		close(sub.changed)
		sub.changed = nil
	}
}

// busy reports whether sub has a running action; release leaves counts at zero rather than deleting
// them. sub.mu must be held.
func busy(sub *memSubject) bool {
	for _, n := range sub.inFlight {
		if n > 0 {
			return true
		}
	}
	return false
}

func (s *memStore) revoke(ctx context.Context, grantID string) (bool, error) {
	sh := s.grantShard(grantID)
	sh.mu.Lock()
	g, ok := sh.grants[grantID]
	if !ok {
		sh.mu.Unlock()
		return false, nil
	}
	g.revoked = true // from here on acquire refuses the grant
	for g.inFlight > 0 {
		if g.idle == nil {
			g.idle = make(chan struct{})
		}
		idle := g.idle
		sh.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return true, fmt.Errorf("guard: revoke %q: waiting for running actions: %w", grantID, ctx.Err())
		}
		sh.mu.Lock()
	}
	sh.mu.Unlock()
	return true, nil
}

func (s *memStore) setScopes(ctx context.Context, subject string, scopes []string) error {
	allowed := make(map[string]bool, len(scopes))
	for _, sc := range scopes {
		allowed[sc] = true
	}
	sub := s.lockSubject(subject)
	sub.allowed = allowed // from here on acquire refuses the removed scopes
	// Once allowed is set the subject is never deleted, so sub stays the live entry while we wait.
	for usesRemoved(sub, allowed) {
		if sub.changed == nil {
			sub.changed = make(chan struct{})
		}
		changed := sub.changed
		sub.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("guard: set scopes of %q: waiting for running actions: %w", subject, ctx.Err())
		}
		sub.mu.Lock()
	}
	sub.mu.Unlock()
	return nil
}

// usesRemoved reports whether sub has a running action on a scope outside allowed. The empty scope
// (a live grant, no scope) is never removed. sub.mu must be held.
func usesRemoved(sub *memSubject, allowed map[string]bool) bool {
	for scope, n := range sub.inFlight {
		if n > 0 && scope != "" && !allowed[scope] {
			return true
		}
	}
	return false
}
