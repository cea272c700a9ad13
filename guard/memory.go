package guard

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// memStore keeps everything under one mutex. Waiters (Revoke, SetScopes) sleep on a channel that the
// last action to finish closes; a closed channel cannot be reopened, so a fresh one is made for the
// next wait. Waiting on a channel rather than a sync.Cond lets a waiter also watch its ctx.
type memStore struct {
	mu        sync.Mutex
	grants    map[string]*memGrant
	subjects  map[string]*memSubject
	lastSweep time.Time
}

type memGrant struct {
	Grant
	revoked  bool
	inFlight int
	idle     chan struct{} // made by a waiter; closed when inFlight drops to zero
}

type memSubject struct {
	allowed  map[string]bool // nil until SetScopes is called: the grants' own scopes apply
	inFlight map[string]int  // running actions per scope
	changed  chan struct{}   // made by a waiter; closed when an in-flight count drops to zero
}

// sweepEvery bounds how often put scans for expired grants to drop, so memory stays bounded by the
// grants still valid rather than by every grant ever issued.
const sweepEvery = time.Minute

func newMemStore() *memStore {
	return &memStore{grants: map[string]*memGrant{}, subjects: map[string]*memSubject{}}
}

func (s *memStore) put(_ context.Context, gr Grant, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastSweep) >= sweepEvery {
		s.sweep(now)
	}
	if _, ok := s.grants[gr.ID]; ok {
		return fmt.Errorf("guard: grant %q already recorded", gr.ID)
	}
	s.grants[gr.ID] = &memGrant{Grant: gr}
	return nil
}

// sweep forgets expired grants that nothing is using, and subjects with nothing to remember (no
// SetScopes, no running action). Do refuses forgotten grants either way (as unknown rather than
// expired). Subjects are kept between actions rather than dropped as each ends, so the hot path
// does not allocate one per action. s.mu must be held.
func (s *memStore) sweep(now time.Time) {
	s.lastSweep = now
	for id, g := range s.grants {
		if !g.Expires.IsZero() && !now.Before(g.Expires) && g.inFlight == 0 {
			delete(s.grants, id)
		}
	}
	for name, sub := range s.subjects {
		if sub.allowed == nil && !busy(sub) {
			delete(s.subjects, name)
		}
	}
}

func (s *memStore) acquire(_ context.Context, grantID, scope string, now time.Time) (func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.grants[grantID]
	switch {
	case !ok:
		return nil, ErrUnknownGrant
	case g.revoked:
		return nil, ErrRevoked
	case !g.Expires.IsZero() && !now.Before(g.Expires):
		return nil, ErrExpired
	}
	sub := s.subjects[g.Subject]
	if scope != "" {
		if !slices.Contains(g.Scopes, scope) || (sub != nil && sub.allowed != nil && !sub.allowed[scope]) {
			return nil, fmt.Errorf("%w: %q", ErrScope, scope)
		}
	}
	if sub == nil {
		sub = &memSubject{inFlight: map[string]int{}}
		s.subjects[g.Subject] = sub
	}
	g.inFlight++
	sub.inFlight[scope]++

	// Do calls release exactly once (deferred), so it needs no guard against a second call.
	return func() { s.release(g, sub, scope) }, nil
}

func (s *memStore) release(g *memGrant, sub *memSubject, scope string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g.inFlight--
	if g.inFlight == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
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
// them. s.mu must be held.
func busy(sub *memSubject) bool {
	for _, n := range sub.inFlight {
		if n > 0 {
			return true
		}
	}
	return false
}

func (s *memStore) revoke(ctx context.Context, grantID string) (bool, error) {
	s.mu.Lock()
	g, ok := s.grants[grantID]
	if !ok {
		s.mu.Unlock()
		return false, nil
	}
	g.revoked = true // from here on acquire refuses the grant
	for g.inFlight > 0 {
		if g.idle == nil {
			g.idle = make(chan struct{})
		}
		idle := g.idle
		s.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return true, fmt.Errorf("guard: revoke %q: waiting for running actions: %w", grantID, ctx.Err())
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
	return true, nil
}

func (s *memStore) setScopes(ctx context.Context, subject string, scopes []string) error {
	allowed := make(map[string]bool, len(scopes))
	for _, sc := range scopes {
		allowed[sc] = true
	}
	s.mu.Lock()
	sub := s.subjects[subject]
	if sub == nil {
		sub = &memSubject{inFlight: map[string]int{}}
		s.subjects[subject] = sub
	}
	sub.allowed = allowed // from here on acquire refuses the removed scopes
	// Once allowed is set the subject is never deleted, so sub stays the live entry while we wait.
	for usesRemoved(sub, allowed) {
		if sub.changed == nil {
			sub.changed = make(chan struct{})
		}
		changed := sub.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("guard: set scopes of %q: waiting for running actions: %w", subject, ctx.Err())
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
	return nil
}

// usesRemoved reports whether sub has a running action on a scope outside allowed. The empty scope
// (a live grant, no scope) is never removed. s.mu must be held.
func usesRemoved(sub *memSubject, allowed map[string]bool) bool {
	for scope, n := range sub.inFlight {
		if n > 0 && scope != "" && !allowed[scope] {
			return true
		}
	}
	return false
}
