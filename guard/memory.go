package guard

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// memStore keeps grants and subjects in memory. The path every action takes (acquire, then
// release) takes no mutex and writes no map: it finds the grant in a sync.Map, pins it with a
// compare-and-swap on the grant's state word, and pins the scope with an atomic add on a counter the
// grant shares with its subject. Revocation and scope changes are the rare, slow side:
//
//   - A grant's state word holds its running actions (pinMask), revokedBit and goneBit (forgotten by
//     sweep). acquire raises the count only with a CAS that sees neither bit, and revoke sets
//     revokedBit and then waits for the count to reach zero, so every action either started before
//     the bit was set (and revoke waits for it) or is refused.
//   - A subject's allowed scopes are an atomic pointer, mirrored in each of its grants' cut word, and
//     each scope has a pin counter. acquire raises the scope's counter and then loads the cut word;
//     setScopes stores allowed and the cut words and then reads the counters. Go's atomics are sequentially consistent, so at least one side sees the other: the
//     action is refused (and drops its pins), or setScopes sees it running and waits.
//   - Waiters sleep on a channel made under a mutex (the grant's mu, the subject's mu). The release
//     that brings a count to zero takes that mutex and closes the channel only when a waiter may be
//     there (revokedBit set; the subject's waiters count above zero), so an action that nobody waits
//     for touches no mutex. A waiter re-reads the count under the mutex before it sleeps, so no
//     wake-up is lost.
//
// A subject lives while it has recorded grants or SetScopes was called for it, so a grant's pointer
// to its subject and to the subject's counters never goes stale. put and sweep, which change the set
// of grants, run under putMu; subjects live in shards whose mutexes guard only the maps. Lock order:
// putMu, a subject shard, a subject's mu; a grant's mu is never held with another lock.
//
// A revocation of an ID not recorded leaves a tombstone, under putMu too, so that a put of the ID
// either came first (and revoke finds the grant) or comes after and is refused.
type memStore struct {
	grants        sync.Map // grant ID -> *memGrant
	seed          maphash.Seed
	subjectShards [memShards]subjectShard

	putMu      sync.Mutex // serialises put and sweep; guards lastSweep and the tombstones
	lastSweep  time.Time
	tombstones []tombstone          // oldest first; each ID once
	buried     map[string]time.Time // the IDs in tombstones, until when put refuses them
}

// tombstone is a revocation that came before its grant.
type tombstone struct {
	id    string
	until time.Time
}

// How long a revocation of an unknown grant is remembered, and how many such revocations at most
// (the oldest are dropped first). Revoke cannot know when an unknown grant expires; a grant is
// recorded late by seconds, not hours. 100,000 tombstones of UUID-sized IDs hold 15.7 MB.
const (
	tombstoneTTL  = time.Hour
	maxTombstones = 100_000
)

// memShards is the number of subject shards.
const memShards = 64

// subjectShard is padded to a cache line, so that goroutines locking neighbouring shards do not slow
// each other down by writing to the same line.
type subjectShard struct {
	mu       sync.Mutex
	subjects map[string]*memSubject
	_        [48]byte
}

// The bits of memGrant.state above the count of running actions.
const (
	revokedBit = uint64(1) << 63
	goneBit    = uint64(1) << 62
	pinMask    = goneBit - 1
)

type memGrant struct {
	Grant
	sub *memSubject // the grant's subject, kept alive while the grant is recorded
	// recorded is put's reading of the clock (with the monotonic reading when the clock is real), and
	// ttl is Expires less that reading: with no time given, acquire checks expiry as
	// time.Since(recorded) >= ttl, one monotonic clock read, which also keeps a step of the wall
	// clock from stretching or cutting the grant.
	recorded time.Time
	ttl      time.Duration
	// pins[i] counts the subject's running actions on Scopes[i]; it is the subject's counter.
	pins []*pinCount
	// releases[i] drops a pin on Scopes[i], and the last one a pin without a scope; made by put so
	// that acquire does not allocate, like act, which every action on the grant shares (it holds no
	// transaction, so nothing in it changes).
	releases []func()
	act      *acting

	mu   sync.Mutex    // guards idle
	idle chan struct{} // made by a waiting revoke; closed when the count drops to zero

	// state is written by every action on the grant, the fields above are only read: padding keeps
	// them off its cache line, so that two CPUs acting on one grant do not also miss on the reads.
	_     [64]byte
	state atomic.Uint64 // running actions | revokedBit | goneBit
	// cut has bit i set when the subject's SetScopes does not allow Scopes[i] (i < 64): acquire
	// reads it on the line it has just written instead of the subject's allowed map. setScopes sets
	// it for every grant of the subject, under the subject's mu, before it reads the pin counters.
	cut atomic.Uint64
	_   [48]byte
}

// cutMask is the cut word for scopes under allowed (nil: everything allowed).
func cutMask(scopes []string, allowed map[string]bool) uint64 {
	var m uint64
	if allowed == nil {
		return 0
	}
	for i, sc := range scopes {
		if i < 64 && !allowed[sc] {
			m |= 1 << i
		}
	}
	return m
}

// pinCount is a counter alone on its cache line, so that actions of different subjects running on
// different CPUs do not write to the same line.
type pinCount struct {
	n atomic.Int64
	_ [56]byte
}

type memSubject struct {
	allowed atomic.Pointer[map[string]bool] // nil until SetScopes: the grants' own scopes apply
	waiters atomic.Int32                    // setScopes calls waiting for running actions

	mu      sync.Mutex             // guards the fields below and serialises setScopes' waits
	grants  map[*memGrant]struct{} // recorded grants: while any (or allowed is set) the subject is kept
	pins    map[string]*pinCount   // per scope; entries are never removed while the subject lives
	changed chan struct{}          // made by a waiter; closed when a counter drops to zero
}

// sweepEvery bounds how often put scans for expired grants to drop, so memory stays bounded by the
// grants still valid rather than by every grant ever issued.
const sweepEvery = time.Minute

func newMemStore() *memStore {
	s := &memStore{seed: maphash.MakeSeed(), buried: map[string]time.Time{}}
	for i := range s.subjectShards {
		s.subjectShards[i].subjects = map[string]*memSubject{}
	}
	return s
}

func (s *memStore) subjectShard(subject string) *subjectShard {
	return &s.subjectShards[maphash.String(s.seed, subject)%memShards]
}

// lockSubject returns the subject's entry, made if missing, with its mutex held. It holds the
// subject's shard while locking the entry, so sweep (which deletes under both) cannot drop the
// entry between the lookup and the lock.
func (s *memStore) lockSubject(subject string) *memSubject {
	sh := s.subjectShard(subject)
	sh.mu.Lock()
	sub := sh.subjects[subject]
	if sub == nil {
		sub = &memSubject{pins: map[string]*pinCount{}, grants: map[*memGrant]struct{}{}}
		sh.subjects[subject] = sub
	}
	sub.mu.Lock()
	sh.mu.Unlock()
	return sub
}

func (s *memStore) grant(id string) *memGrant {
	v, ok := s.grants.Load(id)
	if !ok {
		return nil
	}
	return v.(*memGrant)
}

func (s *memStore) put(_ context.Context, gr Grant, now time.Time) error {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if now.Sub(s.lastSweep) >= sweepEvery {
		s.sweep(now)
	}
	if s.grant(gr.ID) != nil {
		return fmt.Errorf("guard: grant %q already recorded", gr.ID)
	}
	s.dropTombstones(now)
	if _, ok := s.buried[gr.ID]; ok {
		return fmt.Errorf("%w: %q was revoked before it was recorded (hint: do not hand out its token)", ErrRevoked, gr.ID)
	}
	g := &memGrant{Grant: gr, recorded: now, ttl: gr.Expires.Sub(now), pins: make([]*pinCount, len(gr.Scopes)),
		releases: make([]func(), len(gr.Scopes)+1), act: &acting{grant: gr}}
	sub := s.lockSubject(gr.Subject)
	sub.grants[g] = struct{}{}
	if allowed := sub.allowed.Load(); allowed != nil {
		g.cut.Store(cutMask(gr.Scopes, *allowed)) // before the grant is published below
	}
	for i, sc := range gr.Scopes {
		p := sub.pins[sc]
		if p == nil {
			p = new(pinCount)
			sub.pins[sc] = p
		}
		g.pins[i] = p
	}
	sub.mu.Unlock()
	g.sub = sub
	for i := range g.releases {
		g.releases[i] = func() { g.release(i) }
	}
	s.grants.Store(gr.ID, g)
	return nil
}

// sweep forgets expired grants that nothing is using, and subjects left with no grant and no
// SetScopes. Do refuses forgotten grants either way (as unknown rather than expired). It runs at most
// once per sweepEvery; actions go on meanwhile. s.putMu must be held.
func (s *memStore) sweep(now time.Time) {
	s.lastSweep = now
	s.grants.Range(func(key, v any) bool {
		g := v.(*memGrant)
		if g.Expires.IsZero() || now.Before(g.Expires) {
			return true
		}
		st := g.state.Load()
		// Only an idle grant is forgotten; goneBit makes any acquire that already found it refuse.
		if st&pinMask != 0 || !g.state.CompareAndSwap(st, st|goneBit) {
			return true
		}
		s.grants.CompareAndDelete(key, g)
		sh := s.subjectShard(g.Subject)
		sh.mu.Lock()
		sub := g.sub
		sub.mu.Lock()
		delete(sub.grants, g)
		if len(sub.grants) == 0 && sub.allowed.Load() == nil && sub.waiters.Load() == 0 && sh.subjects[g.Subject] == sub {
			delete(sh.subjects, g.Subject)
		}
		sub.mu.Unlock()
		sh.mu.Unlock()
		return true
	})
}

func (s *memStore) acquire(_ context.Context, grantID, scope string, now time.Time) (func(), *acting, error) {
	g := s.grant(grantID)
	if g == nil {
		return nil, nil, ErrUnknownGrant
	}
	expired := false
	switch {
	case g.Expires.IsZero():
	case now.IsZero():
		expired = time.Since(g.recorded) >= g.ttl
	default:
		expired = !now.Before(g.Expires)
	}
	i := len(g.Scopes) // the index of scope in g.releases
	if scope != "" {
		i = slices.Index(g.Scopes, scope)
	}
	for {
		st := g.state.Load()
		switch {
		case st&revokedBit != 0:
			return nil, nil, ErrRevoked
		case st&goneBit != 0:
			return nil, nil, ErrUnknownGrant
		case expired:
			return nil, nil, ErrExpired
		case i < 0:
			return nil, nil, fmt.Errorf("%w: %q", ErrScope, scope)
		}
		if g.state.CompareAndSwap(st, st+1) {
			break
		}
	}
	if i < len(g.pins) {
		g.pins[i].n.Add(1)
		var refused bool
		if i < 64 {
			refused = g.cut.Load()&(1<<i) != 0
		} else if allowed := g.sub.allowed.Load(); allowed != nil {
			refused = !(*allowed)[scope]
		}
		if refused {
			g.release(i)
			return nil, nil, fmt.Errorf("%w: %q", ErrScope, scope)
		}
	}
	return g.releases[i], g.act, nil
}

// release drops the pins acquire took for g.Scopes[i] (i == len(g.Scopes): no scope). Do calls it
// exactly once (deferred).
func (g *memGrant) release(i int) {
	if i < len(g.pins) {
		if g.pins[i].n.Add(-1) == 0 && g.sub.waiters.Load() > 0 {
			sub := g.sub
			sub.mu.Lock()
			if sub.changed != nil {
				close(sub.changed)
				sub.changed = nil
			}
			sub.mu.Unlock()
		}
	}
	if st := g.state.Add(^uint64(0)); st&pinMask == 0 && st&revokedBit != 0 {
		g.mu.Lock()
		if g.idle != nil {
			close(g.idle)
			g.idle = nil
		}
		g.mu.Unlock()
	}
}

func (s *memStore) revoke(ctx context.Context, grantID string, now time.Time) (bool, error) {
	g := s.grant(grantID)
	if g == nil {
		s.putMu.Lock()
		if g = s.grant(grantID); g == nil { // not recorded by a put that took putMu first either
			s.bury(grantID, now)
			s.putMu.Unlock()
			return false, nil
		}
		s.putMu.Unlock()
	}
	g.state.Or(revokedBit) // from here on acquire refuses the grant
	g.mu.Lock()
	for g.state.Load()&pinMask != 0 {
		if g.idle == nil {
			g.idle = make(chan struct{})
		}
		idle := g.idle
		g.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return true, fmt.Errorf("guard: revoke %q: waiting for running actions: %w", grantID, ctx.Err())
		}
		g.mu.Lock()
	}
	g.mu.Unlock()
	return true, nil
}

func (s *memStore) setScopes(ctx context.Context, subject string, scopes []string) error {
	allowed := make(map[string]bool, len(scopes))
	for _, sc := range scopes {
		allowed[sc] = true
	}
	sub := s.lockSubject(subject)
	// From here on acquire refuses the removed scopes (the cut words for the first 64 scopes of a
	// grant, allowed for the others); a subject with allowed set is never deleted.
	sub.allowed.Store(&allowed)
	for g := range sub.grants {
		g.cut.Store(cutMask(g.Scopes, allowed))
	}
	sub.waiters.Add(1)
	defer sub.waiters.Add(-1)
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

// bury lays a tombstone for grantID, which is not recorded, dropping the oldest one when there are
// maxTombstones. s.putMu must be held.
func (s *memStore) bury(grantID string, now time.Time) {
	s.dropTombstones(now)
	if _, ok := s.buried[grantID]; ok {
		return
	}
	if len(s.tombstones) >= maxTombstones {
		s.dropOldestTombstone()
	}
	until := now.Add(tombstoneTTL)
	s.buried[grantID] = until
	s.tombstones = append(s.tombstones, tombstone{grantID, until})
}

// dropTombstones forgets the tombstones that have expired: all laid with the same TTL, they expire
// oldest first. s.putMu must be held.
func (s *memStore) dropTombstones(now time.Time) {
	for len(s.tombstones) > 0 && !now.Before(s.tombstones[0].until) {
		s.dropOldestTombstone()
	}
}

func (s *memStore) dropOldestTombstone() {
	delete(s.buried, s.tombstones[0].id)
	s.tombstones[0] = tombstone{} // free the ID; append reallocates once the front is used up
	s.tombstones = s.tombstones[1:]
}

// usesRemoved reports whether sub has a running action on a scope outside allowed. sub.mu must be
// held.
func usesRemoved(sub *memSubject, allowed map[string]bool) bool {
	for scope, p := range sub.pins {
		if !allowed[scope] && p.n.Load() > 0 {
			return true
		}
	}
	return false
}
