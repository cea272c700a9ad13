package guard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// acting is what a guarded action finds in its context: the grant its check allowed and, on
// PostgreSQL, the transaction that pins it.
type acting struct {
	grant Grant
	tx    pgx.Tx // nil on the memory store
	// txUsed is set once Tx has handed tx out: only then can the action have written through it,
	// and only then is it committed rather than rolled back (which costs the same and cannot fail
	// in a way that matters).
	txUsed atomic.Bool
	owned  bool // guard began tx and so ends it; DoTx's tx is the caller's
}

type actingKey struct{}

// context returns ctx carrying a, for Tx and GrantFrom.
func (a *acting) context(ctx context.Context) context.Context {
	return context.WithValue(ctx, actingKey{}, a)
}

// commit ends the action's transaction after the action succeeded, if guard began it and the
// action was handed it. The commit is not cancelled with ctx: the action has done its work, and a
// caller gone meanwhile does not undo it.
func (a *acting) commit(ctx context.Context) error {
	if a.tx == nil || !a.owned || !a.txUsed.Load() {
		return nil // release rolls back a transaction that only pinned
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	err := a.tx.Commit(ctx)
	if err == nil || errors.Is(err, pgx.ErrTxClosed) { // ErrTxClosed: the action committed or rolled back itself
		return nil
	}
	return fmt.Errorf("guard: committing the transaction of the action on grant %q: %w", a.grant.ID, err)
}

// Tx returns the transaction of the guarded action that ctx belongs to: within a handler run by
// [Guard.Require] or [Guard.Middleware], an action run by [Guard.Do] on a Guard made by
// [NewPostgres], or fn run by [DoTx]. The grant is pinned in it, so run the handler's queries in
// it: they share the pin's connection (a handler that takes a second connection from the pool holds
// two while it runs) and commit together with the end of the pin, so no write can commit after a
// revocation of the grant has returned.
//
// Guard ends the transaction: see Require and Do for when it commits. A handler may commit it
// itself, to answer only once its writes are committed; that ends the pin too, so do it last.
// Tx returns nil on the memory store and outside a guarded action.
func Tx(ctx context.Context) pgx.Tx {
	a, _ := ctx.Value(actingKey{}).(*acting)
	if a == nil || a.tx == nil {
		return nil
	}
	a.txUsed.Store(true)
	return a.tx
}

// GrantFrom returns the grant that the check of the guarded action ctx belongs to allowed, as
// [Guard.Grant] recorded it: its ID, subject (for an ownership check), scopes and expiry. It comes
// from the check itself, so the handler needs neither to verify the token again nor to ask the
// store. Scopes are the grant's own; [Guard.SetScopes] may have narrowed what it may use. GrantFrom
// reports false outside a guarded action.
func GrantFrom(ctx context.Context) (Grant, bool) {
	a, _ := ctx.Value(actingKey{}).(*acting)
	if a == nil {
		return Grant{}, false
	}
	gr := a.grant
	gr.Scopes = slices.Clone(gr.Scopes) // the caller may change its copy
	return gr, true
}
