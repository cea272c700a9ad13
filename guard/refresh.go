package guard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Refresh-token errors of [Guard.Rotate]. Both match [ErrDenied].
var (
	ErrRefreshInvalid error = &denial{"guard: refresh token unknown, expired or revoked"}
	ErrRefreshReused  error = &denial{"guard: refresh token used twice: its family is revoked"}
)

// StartFamily records first, an access grant, as the start of a refresh family, and returns the
// family's first refresh token, valid for ttl. Hand the client both; it trades the refresh token
// for the next access grant with [Guard.Rotate].
//
// Short-lived access grants with rotated refresh tokens bound what a stolen token is worth: an
// access token dies soon, and a refresh token works once.
func (g *Guard) StartFamily(ctx context.Context, first Grant, ttl time.Duration) (refresh string, err error) {
	if err := g.usable(); err != nil {
		return "", err
	}
	if first.ID == "" || first.Subject == "" {
		return "", errors.New("guard: start family: the grant needs an ID and a subject")
	}
	first.Scopes = slices.Clone(first.Scopes)
	token, hash, err := newRefreshToken()
	if err != nil {
		return "", err
	}
	now := g.now()
	if err := g.families.startFamily(ctx, first, hash, now.Add(ttl), now); err != nil {
		return "", err
	}
	return token, nil
}

// Rotate spends refresh and records the next access grant of its family (ID nextID, expiring at
// expires, with the family's subject and scopes); it returns that grant and the family's next
// refresh token, valid for ttl. A refresh token works once: presented again, it has been copied
// (the client or a thief holds the newer one), so Rotate revokes the family, then every access
// grant it issued, waiting as [Guard.Revoke] does, and returns [ErrRefreshReused].
func (g *Guard) Rotate(ctx context.Context, refresh, nextID string, expires time.Time, ttl time.Duration) (Grant, string, error) {
	if err := g.usable(); err != nil {
		return Grant{}, "", err
	}
	if nextID == "" {
		return Grant{}, "", errors.New("guard: rotate: the next grant needs an ID")
	}
	token, next, err := newRefreshToken()
	if err != nil {
		return Grant{}, "", err
	}
	now := g.now()
	old := sha256.Sum256([]byte(refresh))
	gr, revoke, err := g.families.rotate(ctx, old, nextID, expires, next, now.Add(ttl), now)
	if errors.Is(err, ErrRefreshReused) {
		var errs []error
		for _, id := range revoke {
			if rerr := g.Revoke(ctx, id); rerr != nil {
				errs = append(errs, rerr)
			}
		}
		if len(errs) > 0 {
			return Grant{}, "", errors.Join(append([]error{err}, errs...)...)
		}
	}
	if err != nil {
		return Grant{}, "", err
	}
	return gr, token, nil
}

func newRefreshToken() (string, [sha256.Size]byte, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", [sha256.Size]byte{}, fmt.Errorf("guard: making a refresh token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	return token, sha256.Sum256([]byte(token)), nil // only the hash is stored
}

// familyStore keeps refresh families. rotate returns ErrRefreshReused and the IDs of the grants
// to revoke when old was already spent; it has marked the family revoked by then, so no grant
// joins it afterwards.
type familyStore interface {
	startFamily(ctx context.Context, first Grant, hash [sha256.Size]byte, refreshExpires, now time.Time) error
	rotate(ctx context.Context, old [sha256.Size]byte, nextID string, expires time.Time, next [sha256.Size]byte, refreshExpires, now time.Time) (Grant, []string, error)
}

// memFamilies is the memory familyStore; it records grants in the Guard's memory store.
type memFamilies struct {
	grants    *memStore
	mu        sync.Mutex
	lastSweep time.Time
	tokens    map[[sha256.Size]byte]*memRefresh
	fams      map[string]*memFamily
}

type memRefresh struct {
	family  *memFamily
	expires time.Time
	used    bool
}

type memFamily struct {
	subject string
	scopes  []string
	grants  []string
	revoked bool
}

func newMemFamilies(grants *memStore) *memFamilies {
	return &memFamilies{grants: grants, tokens: map[[sha256.Size]byte]*memRefresh{}, fams: map[string]*memFamily{}}
}

func (m *memFamilies) startFamily(ctx context.Context, first Grant, hash [sha256.Size]byte, refreshExpires, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.lastSweep) >= sweepEvery {
		// Drop expired refresh tokens, and families none of whose tokens is left, so memory stays
		// bounded by the families still in use.
		m.lastSweep = now
		live := map[*memFamily]bool{}
		for h, r := range m.tokens {
			if !now.Before(r.expires) {
				delete(m.tokens, h)
			} else {
				live[r.family] = true
			}
		}
		for id, f := range m.fams {
			if !live[f] {
				delete(m.fams, id)
			}
		}
	}
	if err := m.grants.put(ctx, first, now); err != nil {
		return err
	}
	f := &memFamily{subject: first.Subject, scopes: first.Scopes, grants: []string{first.ID}}
	m.fams[first.ID] = f
	m.tokens[hash] = &memRefresh{family: f, expires: refreshExpires}
	return nil
}

func (m *memFamilies) rotate(ctx context.Context, old [sha256.Size]byte, nextID string, expires time.Time, next [sha256.Size]byte, refreshExpires, now time.Time) (Grant, []string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.tokens[old]
	switch {
	case !ok || r.family.revoked || !now.Before(r.expires):
		return Grant{}, nil, ErrRefreshInvalid
	case r.used:
		r.family.revoked = true
		return Grant{}, slices.Clone(r.family.grants), ErrRefreshReused
	}
	f := r.family
	gr := Grant{ID: nextID, Subject: f.subject, Scopes: slices.Clone(f.scopes), Expires: expires}
	if err := m.grants.put(ctx, gr, now); err != nil {
		return Grant{}, nil, err
	}
	r.used = true
	f.grants = append(f.grants, nextID)
	m.tokens[next] = &memRefresh{family: f, expires: refreshExpires}
	return gr, nil, nil
}
