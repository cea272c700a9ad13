package guard

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrUnavailable matches every error that comes from the store being unreachable or failing (a
// database down, a timeout, no free connection), whichever call returns it, and the errors of a
// Guard no constructor made. Nothing was allowed: guard fails closed. [Guard.Require] answers 503
// for it.
var ErrUnavailable = errors.New("guard: authorization store unavailable")

// schema is what Migrate creates. Actions pin two rows with SELECT ... FOR SHARE: their grant's row
// in guard_grants and their subject's row in guard_subjects. Revoke and SetScopes change state in
// two steps so that a steady stream of actions cannot starve them (a new FOR SHARE does not queue
// behind a waiting UPDATE in PostgreSQL):
//
//  1. write the change into a side table no action locks (guard_revocations, guard_scope_changes),
//     which commits at once; every check that starts afterwards reads it and refuses;
//  2. UPDATE the pinned row (revoked, or the subject's scopes), which waits until every action
//     that pinned it has committed or rolled back; checks that were waiting for that row read the
//     new version.
//
// A check refuses if either table says so, so a check that saw the side table before step 1 and
// locked the row after step 2 still refuses.
//
// A revocation of a grant not recorded yet is a row in guard_revocations with an until: recording
// the grant is refused while the row exists, and the row is deleted after until or when there are
// too many (see tombstoneTTL), unless the grant was recorded after all.
const schema = `
CREATE TABLE IF NOT EXISTS guard_subjects (
	subject text PRIMARY KEY,
	scopes  text[],                  -- NULL until SetScopes: the grants' own scopes apply
	seq     bigint NOT NULL DEFAULT 0 -- of the scope change applied, so an older one never wins
);
CREATE TABLE IF NOT EXISTS guard_grants (
	id      text PRIMARY KEY,
	subject text NOT NULL,
	scopes  text[] NOT NULL,
	expires timestamptz,             -- NULL: never
	revoked boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS guard_revocations (
	grant_id   text PRIMARY KEY,
	revoked_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE guard_revocations ADD COLUMN IF NOT EXISTS
	until timestamptz;               -- NULL: the grant was recorded; else a tombstone, kept until then
CREATE INDEX IF NOT EXISTS guard_revocations_until ON guard_revocations (until) WHERE until IS NOT NULL;
CREATE TABLE IF NOT EXISTS guard_scope_changes (
	subject text PRIMARY KEY,
	scopes  text[] NOT NULL,
	seq     bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS guard_families (
	id      text PRIMARY KEY,        -- the first grant's ID
	subject text NOT NULL,
	scopes  text[] NOT NULL,
	revoked boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS guard_family_grants (
	family   text NOT NULL,
	grant_id text NOT NULL,
	PRIMARY KEY (family, grant_id)
);
CREATE TABLE IF NOT EXISTS guard_refresh_tokens (
	hash    bytea PRIMARY KEY,       -- SHA-256 of the token: a database leak reveals no token
	family  text NOT NULL,
	expires timestamptz NOT NULL,
	used    boolean NOT NULL DEFAULT false
);
`

// migrateLock serializes Migrate across replicas starting together: concurrent CREATE TABLE IF NOT
// EXISTS can fail on PostgreSQL's catalog.
const migrateLock = 0x67756172640001

// Migrate creates guard's tables (guard_subjects, guard_grants, guard_revocations,
// guard_scope_changes, and guard_families, guard_family_grants and guard_refresh_tokens for
// refresh tokens) if they do not exist. It is safe to call from every replica at start-up.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return inTx(ctx, pool, "migrate", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLock)); err != nil {
			return fmt.Errorf("%w: migrate: taking the migration lock: %w", ErrUnavailable, err)
		}
		if _, err := tx.Exec(ctx, schema); err != nil {
			return fmt.Errorf("%w: migrate: creating tables: %w", ErrUnavailable, err)
		}
		return nil
	})
}

// inTx runs fn in a transaction on pool and commits it if fn returns nil. Failing to begin or to
// commit is the store's failure, so those errors match ErrUnavailable; fn wraps its own.
func inTx(ctx context.Context, pool *pgxpool.Pool, what string, fn func(tx pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // a no-op once committed
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	return nil
}

// Option configures a Guard made by [NewPostgres].
type Option func(*Guard)

// WithLockTimeout bounds how long [Guard.Revoke] and [Guard.SetScopes] wait, for a free pool
// connection and then for running actions (PostgreSQL's lock_timeout), before returning an error.
// If no connection came free, the change is not made; if actions were still running, it stays
// made. The default is 10 seconds; zero waits until the call's context ends.
func WithLockTimeout(d time.Duration) Option {
	return func(g *Guard) {
		if s, ok := g.store.(*pgStore); ok {
			s.lockTimeout = d
		}
	}
}

// NewPostgres returns a Guard that keeps its state in PostgreSQL, so that every replica sharing the
// database sees each revocation: when Revoke returns on one replica, no action on any replica holds
// the grant or can start with it. Call [Migrate] first.
//
// [Guard.Require] and [Guard.Do] check the grant in a transaction and hold it open while the
// handler or action runs in it; [Tx] hands it to them, so their queries share its connection and
// their writes commit with it. Each running handler or action holds one connection, and they hold
// at most all but one of the pool's: the last is left for Revoke and SetScopes, so that a
// revocation never waits for a connection behind the requests it is to stop. Size the pool for the
// guarded requests you want running at once, plus one (pgxpool's default is 4 or the number of
// CPUs, whichever is more). Use one Guard per pool. To check a grant in a transaction of your own,
// use [DoTx].
func NewPostgres(pool *pgxpool.Pool, opts ...Option) *Guard {
	if pool == nil {
		panic("guard: NewPostgres: pool is nil")
	}
	// Actions may hold all the pool's connections but one, and all of them in a pool of one.
	actions := max(pool.Stat().MaxConns()-1, 1)
	s := &pgStore{pool: pool, lockTimeout: 10 * time.Second, actionSlots: make(chan struct{}, actions)}
	g := &Guard{store: s, families: s, now: time.Now, cache: newCache(), remote: true}
	for _, o := range opts {
		o(g)
	}
	return g
}

// DoTx runs fn if the grant may use scope now, checking it inside tx and pinning it there: the
// grant's row stays share-locked until tx commits or rolls back, so a [Guard.Revoke] or
// [Guard.SetScopes] on any replica waits until then, and fn's writes through tx commit before the
// revocation can return. Commit tx after DoTx returns nil; roll it back otherwise. fn's ctx
// carries the grant for [GrantFrom], and tx for [Tx].
//
// Only writes through tx are atomic with the check. A write through another connection (the pool,
// a transaction of its own) commits on its own: it stands if tx then rolls back, and if the process
// dies just as it sends that write's COMMIT, the server can see tx's connection close, drop the pin
// and let a revocation return before it gets to the COMMIT. Write through tx.
//
// DoTx returns a denial matching [ErrDenied] without running fn, an error matching
// [ErrUnavailable] if the check failed (tx is then aborted), or fn's error. tx may use any
// isolation level; under REPEATABLE READ or SERIALIZABLE a concurrent revocation makes the check
// fail with a serialization error rather than pass on an old snapshot.
func DoTx(ctx context.Context, tx pgx.Tx, grantID, scope string, fn func(ctx context.Context) error) error {
	if tx == nil || fn == nil {
		return errors.New("guard: DoTx: tx and fn must not be nil")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("guard: %w", err)
	}
	gr, err := pgCheck(tx.QueryRow(ctx, checkSQL, grantID), grantID, scope, time.Now())
	if err != nil {
		return err
	}
	return fn((&acting{grant: gr, tx: tx}).context(ctx))
}

type pgStore struct {
	pool        *pgxpool.Pool
	lockTimeout time.Duration
	// actionSlots bounds the connections running actions hold to all but one of the pool's, so
	// that Revoke and SetScopes find one free; a send takes a slot.
	actionSlots chan struct{}

	sweepMu   sync.Mutex // guards lastSweep
	lastSweep time.Time  // of the tombstones, at most once per sweepEvery
}

// checkSQL reads the grant and the subject's scopes and pins both rows (see schema).
const checkSQL = `
SELECT g.subject, g.scopes, g.expires,
	g.revoked OR EXISTS (SELECT 1 FROM guard_revocations r WHERE r.grant_id = g.id),
	s.scopes,
	(SELECT c.scopes FROM guard_scope_changes c WHERE c.subject = g.subject)
FROM guard_grants g JOIN guard_subjects s ON s.subject = g.subject
WHERE g.id = $1
FOR SHARE OF g, s`

// pgCheck decides from row, the result of checkSQL, and returns the grant it allowed.
func pgCheck(row pgx.Row, grantID, scope string, now time.Time) (Grant, error) {
	var (
		gr                           = Grant{ID: grantID}
		subjectScopes, changedScopes []string
		expires                      *time.Time
		revoked                      bool
	)
	err := row.Scan(&gr.Subject, &gr.Scopes, &expires, &revoked, &subjectScopes, &changedScopes)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Grant{}, ErrUnknownGrant
	case err != nil:
		return Grant{}, fmt.Errorf("%w: checking grant %q: %w", ErrUnavailable, grantID, err)
	case revoked:
		return Grant{}, ErrRevoked
	case expires != nil && !now.Before(*expires):
		return Grant{}, ErrExpired
	}
	if expires != nil {
		gr.Expires = *expires
	}
	if scope == "" {
		return gr, nil
	}
	// NULL (nil) subject scopes mean SetScopes was never called: the grant's own scopes apply.
	if !slices.Contains(gr.Scopes, scope) ||
		(subjectScopes != nil && !slices.Contains(subjectScopes, scope)) ||
		(changedScopes != nil && !slices.Contains(changedScopes, scope)) {
		return Grant{}, fmt.Errorf("%w: %q", ErrScope, scope)
	}
	return gr, nil
}

func (s *pgStore) put(ctx context.Context, gr Grant, _ time.Time) error {
	return inTx(ctx, s.pool, fmt.Sprintf("recording grant %q", gr.ID), func(tx pgx.Tx) error { return putTx(ctx, tx, gr) })
}

func putTx(ctx context.Context, tx pgx.Tx, gr Grant) error {
	// Every grant's subject has a row, so every action has a subject row to pin.
	if _, err := tx.Exec(ctx, `INSERT INTO guard_subjects (subject) VALUES ($1) ON CONFLICT DO NOTHING`, gr.Subject); err != nil {
		return fmt.Errorf("%w: recording grant %q: %w", ErrUnavailable, gr.ID, err)
	}
	var expires *time.Time
	if !gr.Expires.IsZero() {
		expires = &gr.Expires
	}
	scopes := gr.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	// Not over a revocation: a tombstone, or the revocation of a grant once recorded under the ID.
	tag, err := tx.Exec(ctx, `INSERT INTO guard_grants (id, subject, scopes, expires)
		SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM guard_revocations WHERE grant_id = $1)
		ON CONFLICT DO NOTHING`, gr.ID, gr.Subject, scopes, expires)
	if err != nil {
		return fmt.Errorf("%w: recording grant %q: %w", ErrUnavailable, gr.ID, err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var recorded bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM guard_grants WHERE id = $1)`, gr.ID).Scan(&recorded); err != nil {
		return fmt.Errorf("%w: recording grant %q: %w", ErrUnavailable, gr.ID, err)
	}
	if recorded {
		return fmt.Errorf("guard: grant %q already recorded", gr.ID)
	}
	return fmt.Errorf("%w: %q was revoked before it was recorded (hint: do not hand out its token)", ErrRevoked, gr.ID)
}

func (s *pgStore) startFamily(ctx context.Context, first Grant, hash [sha256.Size]byte, refreshExpires, _ time.Time) error {
	return inTx(ctx, s.pool, fmt.Sprintf("starting refresh family %q", first.ID), func(tx pgx.Tx) error {
		if err := putTx(ctx, tx, first); err != nil {
			return err
		}
		scopes := first.Scopes
		if scopes == nil {
			scopes = []string{}
		}
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO guard_families (id, subject, scopes) VALUES ($1, $2, $3)`, first.ID, first.Subject, scopes)
		b.Queue(`INSERT INTO guard_family_grants (family, grant_id) VALUES ($1, $1)`, first.ID)
		b.Queue(`INSERT INTO guard_refresh_tokens (hash, family, expires) VALUES ($1, $2, $3)`, hash[:], first.ID, refreshExpires)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("%w: starting refresh family %q: %w", ErrUnavailable, first.ID, err)
		}
		return nil
	})
}

func (s *pgStore) rotate(ctx context.Context, old [sha256.Size]byte, nextID string, expires time.Time, next [sha256.Size]byte, refreshExpires, now time.Time) (Grant, []string, error) {
	var gr Grant
	var revoke []string
	var reused bool
	err := inTx(ctx, s.pool, "rotating a refresh token", func(tx pgx.Tx) error {
		// Lock the token, then its family, in that order everywhere: two rotations of one token
		// queue on the token; any rotation in the family queues on the family behind a reuse.
		var family string
		var refreshUntil time.Time
		var used bool
		err := tx.QueryRow(ctx, `SELECT family, expires, used FROM guard_refresh_tokens WHERE hash = $1 FOR UPDATE`, old[:]).
			Scan(&family, &refreshUntil, &used)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrRefreshInvalid
		}
		if err != nil {
			return fmt.Errorf("%w: rotating a refresh token: %w", ErrUnavailable, err)
		}
		var famRevoked bool
		gr = Grant{ID: nextID, Expires: expires}
		if err := tx.QueryRow(ctx, `SELECT subject, scopes, revoked FROM guard_families WHERE id = $1 FOR UPDATE`, family).
			Scan(&gr.Subject, &gr.Scopes, &famRevoked); err != nil {
			return fmt.Errorf("%w: rotating a refresh token of family %q: %w", ErrUnavailable, family, err)
		}
		switch {
		case famRevoked || !now.Before(refreshUntil):
			return ErrRefreshInvalid
		case used:
			reused = true
			if _, err := tx.Exec(ctx, `UPDATE guard_families SET revoked = true WHERE id = $1`, family); err != nil {
				return fmt.Errorf("%w: revoking refresh family %q: %w", ErrUnavailable, family, err)
			}
			rows, err := tx.Query(ctx, `SELECT grant_id FROM guard_family_grants WHERE family = $1`, family)
			if err != nil {
				return fmt.Errorf("%w: revoking refresh family %q: %w", ErrUnavailable, family, err)
			}
			revoke, err = pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("%w: revoking refresh family %q: %w", ErrUnavailable, family, err)
			}
			return nil // commit the family's revocation; the grants are revoked after
		}
		if err := putTx(ctx, tx, gr); err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(`UPDATE guard_refresh_tokens SET used = true WHERE hash = $1`, old[:])
		b.Queue(`INSERT INTO guard_family_grants (family, grant_id) VALUES ($1, $2)`, family, nextID)
		b.Queue(`INSERT INTO guard_refresh_tokens (hash, family, expires) VALUES ($1, $2, $3)`, next[:], family, refreshExpires)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("%w: rotating a refresh token of family %q: %w", ErrUnavailable, family, err)
		}
		return nil
	})
	if err != nil {
		return Grant{}, nil, err
	}
	if reused {
		return Grant{}, revoke, ErrRefreshReused
	}
	return gr, nil, nil
}

// releaseTimeout bounds ending the check's transaction once the action is done. If it cannot end
// (the database went away), the server ends it when it notices the connection is gone.
const releaseTimeout = 5 * time.Second

func (s *pgStore) acquire(ctx context.Context, grantID, scope string, now time.Time) (func(), *acting, error) {
	select {
	case s.actionSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("%w: checking grant %q: waiting for a database connection: %w", ErrUnavailable, grantID, ctx.Err())
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		<-s.actionSlots
		return nil, nil, fmt.Errorf("%w: checking grant %q: %w", ErrUnavailable, grantID, err)
	}
	end := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		tx.Rollback(ctx) // drops the pins; a no-op if the action's writes were committed
		<-s.actionSlots
	}
	// The transaction is idle while the action runs; a server-wide
	// idle_in_transaction_session_timeout would end it and unpin the grant while the action still
	// runs, so it is switched off for this transaction, in the same round trip as the check.
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('idle_in_transaction_session_timeout', '0', true)`)
	b.Queue(checkSQL, grantID)
	br := tx.SendBatch(ctx, b)
	var gr Grant
	_, err = br.Exec()
	if err == nil {
		gr, err = pgCheck(br.QueryRow(), grantID, scope, now)
	} else {
		err = fmt.Errorf("%w: checking grant %q: %w", ErrUnavailable, grantID, err)
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: checking grant %q: %w", ErrUnavailable, grantID, cerr)
	}
	if err != nil {
		end()
		return nil, nil, err
	}
	return end, &acting{grant: gr, tx: tx, owned: true}, nil
}

// revokeSQL is Revoke's step 1 (see schema). For a grant not recorded, the row is a tombstone.
const revokeSQL = `INSERT INTO guard_revocations (grant_id, until)
VALUES ($1, CASE WHEN EXISTS (SELECT 1 FROM guard_grants WHERE id = $1) THEN NULL
	ELSE now() + $2 * interval '1 second' END)
ON CONFLICT DO NOTHING`

// sweepSQL deletes the tombstones that have expired or are beyond the newest $1, unless their
// grant was recorded after all (by a put that raced the revocation: then the row is what refuses it).
const sweepSQL = `DELETE FROM guard_revocations r
WHERE r.until IS NOT NULL
	AND (r.until < now() OR r.grant_id IN (
		SELECT grant_id FROM guard_revocations WHERE until IS NOT NULL ORDER BY until DESC OFFSET $1))
	AND NOT EXISTS (SELECT 1 FROM guard_grants g WHERE g.id = r.grant_id)`

func (s *pgStore) revoke(ctx context.Context, grantID string, _ time.Time) (bool, error) {
	what := fmt.Sprintf("revoke %q", grantID)
	conn, lockBudget, err := s.changeConn(ctx, what)
	if err != nil {
		return false, err
	}
	defer conn.Release()
	// Step 1 (see schema): from this commit on, new checks refuse the grant.
	if _, err := conn.Exec(ctx, revokeSQL, grantID, tombstoneTTL.Seconds()); err != nil {
		return false, fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	// Step 2: wait for the actions holding the grant, by updating the row they share-lock. Done for
	// an unknown grant too: one recorded since step 1 read guard_grants may have an action running.
	n, err := s.waitUpdate(ctx, conn, lockBudget, what, `UPDATE guard_grants SET revoked = true WHERE id = $1`, grantID)
	if err == nil && n == 0 {
		s.sweep(ctx, conn)
	}
	return n > 0, err
}

// sweep deletes expired and surplus tombstones, at most once per sweepEvery; it is only
// housekeeping, so a failure is left for the next one.
func (s *pgStore) sweep(ctx context.Context, conn *pgxpool.Conn) {
	s.sweepMu.Lock()
	due := time.Since(s.lastSweep) >= sweepEvery
	if due {
		s.lastSweep = time.Now()
	}
	s.sweepMu.Unlock()
	if due {
		_, _ = conn.Exec(ctx, sweepSQL, maxTombstones)
	}
}

func (s *pgStore) setScopes(ctx context.Context, subject string, scopes []string) error {
	if scopes == nil {
		scopes = []string{} // nil would mean "never set"
	}
	what := fmt.Sprintf("set scopes of %q", subject)
	conn, lockBudget, err := s.changeConn(ctx, what)
	if err != nil {
		return err
	}
	defer conn.Release()
	var seq int64
	err = conn.QueryRow(ctx, `INSERT INTO guard_scope_changes AS c (subject, scopes, seq) VALUES ($1, $2, 1)
		ON CONFLICT (subject) DO UPDATE SET scopes = EXCLUDED.scopes, seq = c.seq + 1
		RETURNING seq`, subject, scopes).Scan(&seq)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	// Apply the change to the pinned row unless a later change got there first; update the row
	// either way, since the update is what waits for the running actions.
	_, err = s.waitUpdate(ctx, conn, lockBudget, what,
		`INSERT INTO guard_subjects AS s (subject, scopes, seq) VALUES ($1, $2, $3)
		ON CONFLICT (subject) DO UPDATE SET
			scopes = CASE WHEN s.seq < EXCLUDED.seq THEN EXCLUDED.scopes ELSE s.scopes END,
			seq = GREATEST(s.seq, EXCLUDED.seq)`, subject, scopes, seq)
	return err
}

// changeConn takes a connection for a revocation or a scope change, waiting at most the lock
// timeout: actions leave one of the pool's connections free, but other users of the pool may hold
// it, and a revocation must fail rather than hang. It returns what is left of the lock timeout for
// the wait for running actions (zero: no bound).
func (s *pgStore) changeConn(ctx context.Context, what string) (*pgxpool.Conn, time.Duration, error) {
	if s.lockTimeout <= 0 {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
		}
		return conn, 0, nil
	}
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, s.lockTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(actx)
	switch {
	case err != nil && ctx.Err() == nil && actx.Err() != nil:
		return nil, 0, fmt.Errorf("%w: %s: nothing was changed: no database connection came free within %v, "+
			"every one of the pool's being in use (hint: call again; give the pool more connections than "+
			"guarded requests and other users hold at once)", ErrUnavailable, what, s.lockTimeout)
	case err != nil:
		return nil, 0, fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	return conn, max(s.lockTimeout-time.Since(start), time.Millisecond), nil
}

// waitUpdate runs an update of a pinned row on conn under lock_timeout (lockBudget; zero: none),
// so it returns once every action holding the row has finished, or with an error saying they are
// still running. It returns the number of rows updated.
func (s *pgStore) waitUpdate(ctx context.Context, conn *pgxpool.Conn, lockBudget time.Duration, what, sql string, args ...any) (int64, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if lockBudget > 0 {
		ms := fmt.Sprint(lockBudget.Milliseconds())
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, ms); err != nil {
			return 0, fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
		}
	}
	tag, err := tx.Exec(ctx, sql, args...)
	if err == nil {
		err = tx.Commit(ctx)
	}
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return tag.RowsAffected(), nil
	case errors.As(err, &pgErr) && pgErr.Code == "55P03": // lock_not_available
		return 0, fmt.Errorf("guard: %s: the change is made, but actions started before it were still running after %v "+
			"(lock timeout); call again to wait for them, or raise WithLockTimeout: %w", what, s.lockTimeout, err)
	case ctx.Err() != nil:
		return 0, fmt.Errorf("guard: %s: waiting for running actions: %w", what, ctx.Err())
	default:
		return 0, fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
}
