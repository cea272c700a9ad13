// Package jepsen tests guard's central claim across replicas the way Jepsen tests databases: several
// replicas of a small service share one PostgreSQL; clients run guarded writes, revocations and
// scope cuts against them concurrently, with random delays and injected faults; every operation's
// invocation and return is recorded on one monotonic clock, and a checker reads the history and the
// database's committed writes and reports every write that committed after a revocation or a scope
// cut of its grant had returned (Check). A second checker (CheckLinearizable) gives the same data to
// porcupine, a linearizability checker, with a model of each grant's state; Agree compares the two.
//
// A replica runs either in a process of its own (StartProcess: the test binary started again with
// ReplicaEnv set, which TestMain turns into ServeReplica), so that a fault can end it with SIGKILL
// in the middle of an action, or in the test's process (StartReplica), where Kill closes its server
// and pool. Either way the replicas and the clients read one clock, CLOCK_MONOTONIC from a common
// origin: a write records inside its transaction the clock's reading just before it commits, so
// "committed after the revocation returned" is proven by the data, not guessed from response times.
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
	"golang.org/x/sys/unix"

	"github.com/tocsin/tocsin/guard"
)

// Clock reads CLOCK_MONOTONIC, which every process on the machine shares, as nanoseconds since
// Origin: a Clock copied into a replica process (it travels in ReplicaConfig) reads the same as
// the parent's.
type Clock struct {
	Origin int64 // CLOCK_MONOTONIC in ns when the clock was at zero
}

// NewClock starts a clock at zero.
func NewClock() *Clock { return &Clock{Origin: monotonic()} }

// Now returns nanoseconds since the clock started.
func (c *Clock) Now() int64 { return monotonic() - c.Origin }

func monotonic() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("jepsen: reading CLOCK_MONOTONIC: %v", err)) // cannot fail on a supported system
	}
	return ts.Nano()
}

// Mode is how a replica authorizes its writes.
type Mode int

const (
	// Guarded checks the grant inside the write's transaction with guard: DoTx in a transaction of
	// the handler's, or Middleware, whose transaction the handler writes in (guard.Tx).
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

// ReplicaConfig says how to build a replica. It is JSON so that it can be handed to a replica
// process.
type ReplicaConfig struct {
	Name      string
	DB        string // connection string of the shared database
	Mode      Mode
	TTL       time.Duration // TTLCache: how long a decision is reused
	Clock     *Clock
	JWTKey    []byte // HS256 key the clients sign tokens with
	RedisAddr string // host:port of the invalidation channel; empty: none
	MaxConns  int32
}

// ApplicationName is what a replica's database sessions call themselves (pg_stat_activity), so
// that a fault can see which replica holds a lock.
func (c ReplicaConfig) ApplicationName() string { return "jepsen-replica-" + c.Name }

// Replica is one instance of the service, in this process. Kill and Restart simulate a crash and a
// restart; a replica process (StartProcess) runs one of these until it is killed.
type Replica struct {
	cfg ReplicaConfig

	mu     sync.Mutex
	url    string
	srv    *http.Server
	pool   *pgxpool.Pool
	rdb    *redis.Client
	cancel context.CancelFunc // ends every request in flight and the Redis listener

	decisions sync.Map     // TTLCache: grant ID -> cachedDecision
	inFlight  atomic.Int64 // act requests being served
	writing   sync.Map     // op -> struct{}: writes past their check, inside their delay (see Stats)
}

// Stats is what GET /stats answers: what a replica is doing right now.
type Stats struct {
	Acts int64 `json:"acts"` // act requests being served
	// Writing lists the ops whose write is past its authorization and waiting out its delay inside
	// the transaction. In Guarded mode each holds its grant and subject rows FOR SHARE.
	Writing []int64 `json:"writing"`
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

// Config returns the replica's configuration.
func (r *Replica) Config() ReplicaConfig { return r.cfg }

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
	pcfg.ConnConfig.RuntimeParams["application_name"] = r.cfg.ApplicationName()
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("replica %s: %w", r.cfg.Name, err)
	}
	var opts []guard.Option
	var rdb *redis.Client
	if r.cfg.RedisAddr != "" {
		// No retries and a short dial: while Redis is down, each attempt fails fast.
		rdb = redis.NewClient(&redis.Options{Addr: r.cfg.RedisAddr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		opts = append(opts, guard.WithRedis(rdb))
	}
	g := guard.NewPostgres(pool, append(opts, guard.WithLockTimeout(5*time.Second))...)
	base, cancel := context.WithCancel(context.Background())
	if rdb != nil {
		go g.Listen(base)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		pool.Close()
		if rdb != nil {
			rdb.Close()
		}
		return fmt.Errorf("replica %s: %w", r.cfg.Name, err)
	}
	srv := &http.Server{
		Handler:           r.routes(g, pool),
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(ln)
	r.mu.Lock()
	r.url, r.srv, r.pool, r.rdb, r.cancel = "http://"+ln.Addr().String(), srv, pool, rdb, cancel
	r.mu.Unlock()
	return nil
}

// Kill ends the replica mid-whatever: every request in flight sees its context cancelled, its
// connections close, and its pool closes. Transactions it had open roll back. (A replica process
// is killed with SIGKILL instead: see Process.Kill.)
func (r *Replica) Kill() {
	r.mu.Lock()
	srv, pool, rdb, cancel := r.srv, r.pool, r.rdb, r.cancel
	r.srv, r.pool, r.rdb, r.cancel = nil, nil, nil, nil
	r.mu.Unlock()
	if srv == nil {
		return
	}
	cancel()
	srv.Close()
	pool.Close()
	if rdb != nil {
		rdb.Close()
	}
}

// Stats returns what the replica is doing now.
func (r *Replica) Stats() Stats {
	s := Stats{Acts: r.inFlight.Load(), Writing: []int64{}}
	r.writing.Range(func(op, _ any) bool {
		s.Writing = append(s.Writing, op.(int64))
		return true
	})
	slices.Sort(s.Writing)
	return s
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
	// ...and Middleware, which pins the grant in the request's transaction and commits it once the
	// handler has written in it and returned (it rolls back on a 5xx, as writeResult gives an error).
	write := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		op, delay, ok := actParams(w, req)
		if !ok {
			return
		}
		ctx := req.Context()
		gr, _ := guard.GrantFrom(ctx)
		writeResult(w, r.write(ctx, guard.Tx(ctx), op, gr.ID, gr.Subject, delay))
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

	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Stats())
	})
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
	r.writing.Store(op, struct{}{})
	defer r.writing.Delete(op)
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
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
