// Package guard authorizes bearer-token actions without a time-of-check/time-of-use gap.
//
// An API that decides "this token may do X" at one moment and does X later can act after the token
// was revoked or lost the scope: the check was true, the use is not. Guard closes that gap by
// construction. [Guard.Do] checks the grant at the moment the action starts (known, not revoked, not
// expired, scope allowed) and pins the grant while the action runs. [Guard.Revoke] refuses new
// actions at once and returns only after every action already running on that grant has finished,
// so when Revoke returns, no action holding the grant is running and none can start.
// [Guard.SetScopes] does the same for a subject whose scopes are cut.
//
// The consequence for callers: a revocation endpoint that answers only after Revoke returns never
// acknowledges a revocation while an action authorized by the revoked token can still commit.
//
// For most uses, call [New] (one process) or [Migrate] and [NewPostgres] (several replicas),
// [Guard.Grant] when a token is issued, [Guard.Require] with [Guard.Bearer] around each handler
// (router.Use(g.Require(scope, g.Bearer(verifier))), or [Guard.Do] around each action), and
// [Guard.Revoke] when a token is revoked. In the handler, [GrantFrom] says whose request it is and,
// on PostgreSQL, [Tx] is the request's transaction: run the handler's queries in it.
//
// A Guard made by [New] keeps its state in memory and protects one process. [NewPostgres] keeps
// it in PostgreSQL: the check runs inside a transaction with SELECT ... FOR SHARE on the grant's
// row, and Revoke's UPDATE of that row waits for every replica's running actions, so the guarantee
// holds across replicas. The handler (or action) runs in that same transaction, on one connection,
// so its writes commit together with the end of the pin. If the database cannot be reached, nothing
// is allowed: the error matches [ErrUnavailable] and Require answers 503. Redis ([WithRedis],
// [Guard.Listen]) only spreads revocations to the replicas' caches faster; it never allows anything.
//
// Tokens themselves are checked by a [Verifier] ([JWT], [Introspection]), whose answers
// [Guard.Bearer] caches; the cache speeds up signature checks and denials but never gives the final
// allow, which is always the store's check in Do. For short-lived access tokens with rotated refresh
// tokens, see [Guard.StartFamily] and [Guard.Rotate]. docs/guard.md explains the guarantee and
// what it costs.
package guard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// Grant is what an issued token may do.
type Grant struct {
	ID      string   // the token's ID, such as its JWT jti
	Subject string   // who the token acts for, such as its JWT sub
	Scopes  []string // what the token was issued for
	// Expires is when it stops being valid; zero means never. The memory store counts down to it on
	// the monotonic clock from when the grant is recorded, so a step of the wall clock neither
	// stretches nor cuts a grant.
	Expires time.Time
}

// ErrDenied matches every denial returned by [Guard.Do]: test for it with errors.Is.
var ErrDenied = errors.New("guard: not authorized")

// The reasons for a denial. Each also matches [ErrDenied].
var (
	ErrUnknownGrant error = &denial{"guard: unknown grant"}
	ErrRevoked      error = &denial{"guard: grant revoked"}
	ErrExpired      error = &denial{"guard: grant expired"}
	ErrScope        error = &denial{"guard: scope not granted"}
)

// denial is a specific reason that also answers to ErrDenied, so callers can test for either.
type denial struct{ msg string }

func (d *denial) Error() string        { return d.msg }
func (d *denial) Is(target error) bool { return target == ErrDenied }

// Guard decides and pins grants. It is safe for concurrent use.
//
// Make one with [New] or [NewPostgres]. A nil *Guard or a zero Guard has no store, so it allows
// nothing: its methods return an error matching [ErrUnavailable] that says so, and [Guard.Require],
// [Guard.Middleware] and [Guard.Bearer], which run at set-up, panic with that error instead of
// serving requests that could never pass.
type Guard struct {
	store    store
	families familyStore
	now      func() time.Time // a field so tests can move the clock
	// monotonic is set when the store is the memory store and now is the real clock: then Do passes
	// no time, and the store measures expiry on the monotonic clock alone, one clock read instead of
	// time.Now's two. Tests that move the clock clear it.
	monotonic bool
	cache     *cache        // speeds up verification and denials; never allows
	remote    bool          // the store is across a network, so the cache's denials save a round trip
	redis     *redis.Client // nil: no invalidation channel between replicas (WithRedis)
}

// store holds grants, subjects and pins: the memory store, or PostgreSQL, which checks and pins
// inside the action's transaction (a shared row lock on the grant).
type store interface {
	// put records gr, unless its ID is already recorded or was revoked before (a tombstone).
	put(ctx context.Context, gr Grant, now time.Time) error
	// acquire checks that grantID may use scope at now and pins the grant; release drops the pin
	// (on PostgreSQL, rolling back the action's transaction unless it was committed). act is what
	// the action finds in its context. The memory store also takes a zero now: see Guard.monotonic.
	acquire(ctx context.Context, grantID, scope string, now time.Time) (release func(), act *acting, err error)
	// revoke reports whether the grant was known, so that only known grants are cached as revoked.
	// An unknown grant gets a tombstone, so that recording it later fails.
	revoke(ctx context.Context, grantID string, now time.Time) (known bool, err error)
	setScopes(ctx context.Context, subject string, scopes []string) error
}

// errNoStore is what a nil or zero Guard answers: it was not made by a constructor.
var errNoStore = fmt.Errorf("%w: the Guard is nil or a zero value (hint: make it with guard.New or guard.NewPostgres)", ErrUnavailable)

// usable returns errNoStore for a Guard that no constructor made.
func (g *Guard) usable() error {
	if g == nil || g.store == nil {
		return errNoStore
	}
	return nil
}

// mustBeUsable panics, naming the call, for a Guard that no constructor made: for the calls that
// build handlers at set-up, where a panic stops a service that could never serve a request.
func (g *Guard) mustBeUsable(call string) {
	if err := g.usable(); err != nil {
		panic(fmt.Sprintf("guard: %s: %v", call, err))
	}
}

// New returns a Guard that keeps its state in memory.
func New() *Guard {
	s := newMemStore()
	return &Guard{store: s, families: newMemFamilies(s), now: time.Now, cache: newCache(), monotonic: true}
}

// Grant records an issued grant. Record it before handing out the token: a grant Guard has not seen
// is refused. Recording an ID that is already recorded is an error, so that a reused ID cannot bring
// a revoked grant back; an expired grant may be forgotten, freeing its ID. Recording an ID that was
// revoked before it was recorded (a token revoked the moment it was issued) fails with an error
// matching [ErrRevoked]: do not hand out its token. Such early revocations are remembered for an
// hour; see [Guard.Revoke].
func (g *Guard) Grant(ctx context.Context, gr Grant) error {
	if err := g.usable(); err != nil {
		return err
	}
	if gr.ID == "" {
		return errors.New("guard: grant has no ID")
	}
	if gr.Subject == "" {
		return fmt.Errorf("guard: grant %q has no subject", gr.ID)
	}
	gr.Scopes = slices.Clone(gr.Scopes) // the caller may reuse its slice
	return g.store.put(ctx, gr, g.now())
}

// Do runs action if the grant may use scope now, and keeps the grant pinned until action returns,
// so that a concurrent [Guard.Revoke] or [Guard.SetScopes] waits for it. The grant must be known,
// not revoked, not expired, and scope must be among its scopes and, once [Guard.SetScopes] was
// called for its subject, among the subject's scopes too. An empty scope asks only for a live grant.
//
// Do returns a denial matching [ErrDenied] without running action, ctx's error if ctx is already
// done, or action's error. Action receives a ctx from which [GrantFrom] returns the grant; keep the
// action short, since revocation waits for it.
//
// On a Guard made by [NewPostgres], action runs in the transaction that pins the grant, on one
// pool connection: [Tx] returns it from action's ctx. Do commits it when action returns nil (the
// error, if the commit fails, names it) and rolls it back when action returns an error or panics,
// so action's writes through Tx commit together with the end of the pin, before any revocation
// of the grant can return.
func (g *Guard) Do(ctx context.Context, grantID, scope string, action func(ctx context.Context) error) error {
	if action == nil {
		return errors.New("guard: Do: action is nil")
	}
	release, act, err := g.pin(ctx, grantID, scope)
	if err != nil {
		return err
	}
	defer release() // also when action panics, or Revoke would wait forever
	if err := action(act.context(ctx)); err != nil {
		return err
	}
	return act.commit(ctx)
}

// pin checks that the grant may use scope now and pins it: Do's check, for Do and Require.
func (g *Guard) pin(ctx context.Context, grantID, scope string) (release func(), act *acting, err error) {
	if err := g.usable(); err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("guard: %w", err)
	}
	if g.remote && g.cache.isRevoked(grantID) {
		return nil, nil, ErrRevoked // revocation is for good: no need to ask the store
	}
	var now time.Time // zero: the memory store reads the monotonic clock itself
	if !g.monotonic {
		now = g.now()
	}
	release, act, err = g.store.acquire(ctx, grantID, scope, now)
	if err != nil {
		if errors.Is(err, ErrRevoked) {
			g.cache.markRevoked(grantID)
		}
		return nil, nil, err
	}
	return release, act, nil
}

// Revoke revokes the grant and waits until the actions running on it have finished. New calls to
// [Guard.Do] with the grant are refused from the moment Revoke is called. If ctx ends first, Revoke
// returns an error wrapping ctx's error; the grant stays revoked and the actions still running
// finish.
//
// Revoking a grant not recorded yet leaves a tombstone, so that a later [Guard.Grant] of the ID
// fails and no action ever runs with it: the revocation of a token revoked the moment it was issued,
// or whose grant is recorded late, is not lost. Revoke cannot know when an unknown grant would
// expire, so a tombstone is kept for an hour, far longer than a grant is ever recorded late, and at
// most 100,000 are kept, the oldest dropped first, so that a public revocation endpoint fed made-up
// IDs cannot grow memory (or, on PostgreSQL, a table) without bound. A grant recorded after its
// tombstone is gone is allowed: record grants before handing out their tokens.
//
// With [WithRedis], Revoke then tells the other replicas, so their caches refuse the grant's
// tokens without asking the store; that is only for speed, as their stores refuse it already.
func (g *Guard) Revoke(ctx context.Context, grantID string) error {
	if err := g.usable(); err != nil {
		return err
	}
	known, err := g.store.revoke(ctx, grantID, g.now())
	if err != nil || !known {
		return err
	}
	g.cache.markRevoked(grantID)
	g.publishRevoked(ctx, grantID)
	return nil
}

// SetScopes sets the scopes a subject may use, cutting or restoring what its grants may do: a
// grant's effective scopes are its own scopes that are also the subject's. New calls to [Guard.Do]
// see the change at once. SetScopes then waits until the subject's running actions that use a scope
// not in scopes have finished; if ctx ends first, it returns an error wrapping ctx's error and the
// change stays made. Until SetScopes is first called for a subject, its grants' own scopes apply.
func (g *Guard) SetScopes(ctx context.Context, subject string, scopes []string) error {
	if err := g.usable(); err != nil {
		return err
	}
	if subject == "" {
		return errors.New("guard: set scopes: empty subject")
	}
	return g.store.setScopes(ctx, subject, slices.Clone(scopes))
}
