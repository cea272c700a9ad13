// Package jepsen tests guard's central claim across replicas the way Jepsen tests databases: several
// replicas of a small service share one PostgreSQL; clients run guarded writes, revocations and
// scope cuts against them concurrently, with random delays and injected faults; every operation's
// invocation and return is recorded on one monotonic clock, and a checker reads the history and the
// database's committed writes and reports every write that committed after a revocation or a scope
// cut of its grant had returned.
//
// The replicas run in this process (each with its own HTTP server and connection pool), which lets
// them share the clock: a write records inside its transaction the clock's reading just before it
// commits, so "committed after the revocation returned" is proven by the data, not guessed from
// response times.
package jepsen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/tocsin/tocsin/guard"
)

// Clock reads a monotonic clock shared by the clients and the replicas.
type Clock struct{ start time.Time }

// NewClock starts a clock at zero.
func NewClock() *Clock { return &Clock{start: time.Now()} }

// Now returns nanoseconds since the clock started.
func (c *Clock) Now() int64 { return int64(time.Since(c.start)) }

// Mode is how a replica authorizes its writes.
type Mode int

const (
	// Guarded checks the grant inside the write's transaction with guard (DoTx, or Middleware and
	// Do around a write in a transaction of its own).
	Guarded Mode = iota
	// TTLCache is the vulnerable pattern: a decision read from the same tables without a lock and
	// cached for a TTL, then the write. The checker must find its violations.
	TTLCache
)

// writeScope is what the writes need and what a downgrade cuts.
const writeScope = "write"

// grantScopes are what every test grant and subject start with.
var grantScopes = []string{"read", writeScope}

// Schema holds the writes the checker reads back. The guard tables come from guard.Migrate.
const Schema = `CREATE TABLE IF NOT EXISTS jepsen_writes (
	op       bigint PRIMARY KEY,
	grant_id text NOT NULL,
	subject  text NOT NULL,
	at_ns    bigint NOT NULL -- the shared clock just before the write's commit
)`

// ReplicaConfig says how to build a replica.
type ReplicaConfig struct {
	Name     string
	DB       string // connection string of the shared database
	Mode     Mode
	TTL      time.Duration // TTLCache: how long a decision is reused
	Clock    *Clock
	JWTKey   []byte        // HS256 key the clients sign tokens with
	Redis    *redis.Client // nil: no invalidation channel
	MaxConns int32
}

// Replica is one instance of the service. Kill and Restart simulate a crash and a restart.
type Replica struct {
	cfg ReplicaConfig

	mu     sync.Mutex
	url    string
	srv    *http.Server
	pool   *pgxpool.Pool
	cancel context.CancelFunc // ends every request in flight and the Redis listener

	decisions sync.Map     // TTLCache: grant ID -> cachedDecision
	inFlight  atomic.Int64 // act requests being served, so Kill can say it struck mid-action
}

type cachedDecision struct {
	subject string
	allowed bool
	until   time.Time
}

// StartReplica starts a replica on a free 127.0.0.1 port.
func StartReplica(ctx context.Context, cfg ReplicaConfig) (*Replica, error) {
	r := &Replica{cfg: cfg}
	if err := r.Restart(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// URL returns the replica's current base URL; it changes when the replica restarts.
func (r *Replica) URL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.url
}

// Restart starts the replica after Kill (or for the first time): a new pool, a new server.
func (r *Replica) Restart(ctx context.Context) error {
	pcfg, err := pgxpool.ParseConfig(r.cfg.DB)
	if err != nil {
		return fmt.Errorf("replica %s: %w", r.cfg.Name, err)
	}
	if r.cfg.MaxConns > 0 {
		pcfg.MaxConns = r.cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("replica %s: %w", r.cfg.Name, err)
	}
	var opts []guard.Option
	if r.cfg.Redis != nil {
		opts = append(opts, guard.WithRedis(r.cfg.Redis))
	}
	g := guard.NewPostgres(pool, append(opts, guard.WithLockTimeout(5*time.Second))...)
	base, cancel := context.WithCancel(context.Background())
	if r.cfg.Redis != nil {
		go g.Listen(base)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		pool.Close()
		return fmt.Errorf("replica %s: %w", r.cfg.Name, err)
	}
	srv := &http.Server{
		Handler:           r.routes(g, pool),
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(ln)
	r.mu.Lock()
	r.url, r.srv, r.pool, r.cancel = "http://"+ln.Addr().String(), srv, pool, cancel
	r.mu.Unlock()
	return nil
}

// Kill ends the replica mid-whatever: every request in flight sees its context cancelled, its
// connections close, and its pool closes. Transactions it had open roll back. It returns how many
// act requests were being served when it struck.
func (r *Replica) Kill() (actsInFlight int64) {
	r.mu.Lock()
	srv, pool, cancel := r.srv, r.pool, r.cancel
	r.srv, r.pool, r.cancel = nil, nil, nil
	r.mu.Unlock()
	if srv == nil {
		return 0
	}
	actsInFlight = r.inFlight.Load()
	cancel()
	srv.Close()
	pool.Close()
	return actsInFlight
}

func (r *Replica) routes(g *guard.Guard, pool *pgxpool.Pool) http.Handler {
	verifier := &guard.JWT{Key: r.cfg.JWTKey, Algorithms: []string{"HS256"}, Issuer: Issuer}
	bearer := g.Bearer(verifier)
	mux := http.NewServeMux()
	counted := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			r.inFlight.Add(1)
			defer r.inFlight.Add(-1)
			h(w, req)
		}
	}

	// The two safe shapes: the check in the write's own transaction...
	mux.HandleFunc("POST /act-tx", counted(func(w http.ResponseWriter, req *http.Request) {
		op, delay, ok := actParams(w, req)
		if !ok {
			return
		}
		grantID, err := bearer(req)
		if err != nil {
			writeStatus(w, http.StatusUnauthorized, err)
			return
		}
		ctx := req.Context()
		if r.cfg.Mode == TTLCache {
			r.vulnerableWrite(w, req, pool, grantID, op, delay)
			return
		}
		var subject string
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return guard.DoTx(ctx, tx, grantID, writeScope, func(ctx context.Context) error {
				if err := tx.QueryRow(ctx, `SELECT subject FROM guard_grants WHERE id = $1`, grantID).Scan(&subject); err != nil {
					return err
				}
				return r.write(ctx, tx, op, grantID, subject, delay)
			})
		})
		writeResult(w, err)
	}))
	// ...and Middleware with Do pinning the grant around a write in a transaction of its own.
	write := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		op, delay, ok := actParams(w, req)
		if !ok {
			return
		}
		grantID := req.Context().Value(grantKey{}).(string)
		ctx := req.Context()
		var subject string
		if err := pool.QueryRow(ctx, `SELECT subject FROM guard_grants WHERE id = $1`, grantID).Scan(&subject); err != nil {
			writeResult(w, err)
			return
		}
		writeResult(w, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return r.write(ctx, tx, op, grantID, subject, delay)
		}))
	})
	// The token is verified once, before Middleware, and its grant ID passed on in the context, as
	// the lab's fixed flavour does: verifying it again inside the handler could fail (the cache
	// learns of a revocation meanwhile) although the action is already authorized and pinned.
	guarded := g.Middleware(writeScope, func(req *http.Request) (string, error) {
		return req.Context().Value(grantKey{}).(string), nil
	}, write)
	authenticated := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		grantID, err := bearer(req)
		if err != nil {
			writeStatus(w, http.StatusUnauthorized, err)
			return
		}
		guarded.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), grantKey{}, grantID)))
	})
	mux.HandleFunc("POST /act", counted(func(w http.ResponseWriter, req *http.Request) {
		if r.cfg.Mode == TTLCache {
			op, delay, ok := actParams(w, req)
			if !ok {
				return
			}
			grantID, err := bearer(req)
			if err != nil {
				writeStatus(w, http.StatusUnauthorized, err)
				return
			}
			r.vulnerableWrite(w, req, pool, grantID, op, delay)
			return
		}
		authenticated.ServeHTTP(w, req)
	}))

	mux.HandleFunc("POST /grant", func(w http.ResponseWriter, req *http.Request) {
		gr := guard.Grant{ID: req.FormValue("id"), Subject: req.FormValue("subject"), Scopes: grantScopes,
			Expires: time.Now().Add(time.Hour)}
		writeResult(w, g.Grant(req.Context(), gr))
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, req *http.Request) {
		writeResult(w, g.Revoke(req.Context(), req.FormValue("grant")))
	})
	mux.HandleFunc("POST /downgrade", func(w http.ResponseWriter, req *http.Request) {
		writeResult(w, g.SetScopes(req.Context(), req.FormValue("subject"), []string{"read"}))
	})
	return mux
}

// write records the op in tx, reading the clock as late as it can before the commit, after an
// optional delay that widens the window between check and commit.
func (r *Replica) write(ctx context.Context, tx pgx.Tx, op int64, grantID, subject string, delay time.Duration) error {
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO jepsen_writes (op, grant_id, subject, at_ns) VALUES ($1, $2, $3, $4)`,
		op, grantID, subject, r.cfg.Clock.Now())
	return err
}

// vulnerableWrite is the TTL-cache pattern: decide from a cache filled by an unlocked read of the
// same state guard keeps, then write. Nothing holds the grant while the write runs.
func (r *Replica) vulnerableWrite(w http.ResponseWriter, req *http.Request, pool *pgxpool.Pool, grantID string, op int64, delay time.Duration) {
	ctx := req.Context()
	d, ok := r.decisions.Load(grantID)
	dec, _ := d.(cachedDecision)
	if !ok || time.Now().After(dec.until) {
		var revoked bool
		var scopes, subjectScopes, changed []string
		err := pool.QueryRow(ctx, `SELECT g.subject, g.scopes, g.revoked OR EXISTS (SELECT 1 FROM guard_revocations WHERE grant_id = g.id),
			s.scopes, (SELECT c.scopes FROM guard_scope_changes c WHERE c.subject = g.subject)
			FROM guard_grants g JOIN guard_subjects s ON s.subject = g.subject WHERE g.id = $1`, grantID).
			Scan(&dec.subject, &scopes, &revoked, &subjectScopes, &changed)
		if err != nil {
			writeResult(w, err)
			return
		}
		dec.allowed = !revoked && slices.Contains(scopes, writeScope) &&
			(subjectScopes == nil || slices.Contains(subjectScopes, writeScope)) &&
			(changed == nil || slices.Contains(changed, writeScope))
		dec.until = time.Now().Add(r.cfg.TTL)
		r.decisions.Store(grantID, dec)
	}
	if !dec.allowed {
		writeStatus(w, http.StatusForbidden, guard.ErrDenied)
		return
	}
	writeResult(w, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return r.write(ctx, tx, op, grantID, dec.subject, delay)
	}))
}

func actParams(w http.ResponseWriter, req *http.Request) (op int64, delay time.Duration, ok bool) {
	op, err := strconv.ParseInt(req.FormValue("op"), 10, 64)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, fmt.Errorf("op: %w", err))
		return 0, 0, false
	}
	us, _ := strconv.Atoi(req.FormValue("delay_us"))
	return op, time.Duration(us) * time.Microsecond, true
}

func writeResult(w http.ResponseWriter, err error) {
	switch {
	case err == nil:
		writeStatus(w, http.StatusOK, nil)
	case errors.Is(err, guard.ErrScope):
		writeStatus(w, http.StatusForbidden, err)
	case errors.Is(err, guard.ErrDenied):
		writeStatus(w, http.StatusUnauthorized, err)
	case errors.Is(err, guard.ErrUnavailable):
		writeStatus(w, http.StatusServiceUnavailable, err)
	default:
		writeStatus(w, http.StatusInternalServerError, err)
	}
}

func writeStatus(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := map[string]string{}
	if err != nil {
		body["error"] = err.Error()
	}
	json.NewEncoder(w).Encode(body)
}

type grantKey struct{}

// Issuer is the iss of the clients' tokens.
const Issuer = "jepsen"
