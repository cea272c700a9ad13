package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tocsin/tocsin/internal/pgtest"
)

// smallPool is the pool size the pool tests use: pgxpool's default on a machine with 4 CPUs or fewer.
const smallPool = 4

// pgSmallPool returns a Guard on a fresh database whose pool has smallPool connections, and the pool.
func pgSmallPool(t testing.TB, opts ...Option) (*Guard, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.Shared(t).NewDatabase(t)+fmt.Sprintf("&pool_max_conns=%d", smallPool))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return NewPostgres(pool, opts...), pool
}

// headerGrantID takes the grant ID from the bearer token as is: these tests are about the store.
func headerGrantID(r *http.Request) (string, error) {
	id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", errors.New("no bearer token")
	}
	return id, nil
}

// TestPostgresMiddlewareDoesNotStarvePool is issue 17's hang: Middleware pinned each request's
// grant on a pool connection while the handler queried the same pool, as the documented setup did.
// With 4 times as many requests in flight as the pool has connections, every connection held a pin
// whose handler waited for a second connection, and requests hung until their clients gave up; a
// revocation sent meanwhile waited for a connection too. Every request must now succeed well within
// its deadline, and the revocation must return within its lock timeout, both with a handler that
// queries the request's transaction (Tx) and with one that still queries the pool.
func TestPostgresMiddlewareDoesNotStarvePool(t *testing.T) {
	for _, shape := range []string{"tx", "pool"} {
		t.Run(shape, func(t *testing.T) { testPoolStarvation(t, shape) })
	}
}

func testPoolStarvation(t *testing.T, shape string) {
	const lockTimeout = 2 * time.Second
	g, pool := pgSmallPool(t, WithLockTimeout(lockTimeout))
	ctx := context.Background()
	const clients, perClient = 4 * smallPool, 3
	for i := range clients {
		mustGrant(t, g, Grant{ID: fmt.Sprint("c", i), Subject: fmt.Sprint("s", i), Scopes: []string{"items:read"}})
	}
	mustGrant(t, g, Grant{ID: "revoked", Subject: "s0", Scopes: []string{"items:read"}})

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond) // long enough for every pin to be taken before the first query
		var q interface {
			QueryRow(context.Context, string, ...any) pgx.Row
		} = pool
		if shape == "tx" {
			q = Tx(r.Context())
		}
		var n int
		if err := q.QueryRow(r.Context(), "SELECT 1").Scan(&n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, n)
	})
	srv := httptest.NewServer(g.Middleware("items:read", headerGrantID, handler))
	defer srv.Close()

	// A deadline far beyond what a request needs, so that only a hang misses it.
	const deadline = 10 * time.Second
	client := &http.Client{Timeout: deadline}
	var wg sync.WaitGroup
	errs := make(chan error, clients*perClient)
	start := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range perClient {
				if status, took, err := getWith(client, srv.URL, fmt.Sprint("c", i)); err != nil || status != http.StatusOK {
					errs <- fmt.Errorf("client %d: status %d, error %v after %v", i, status, err, took.Round(time.Millisecond))
				}
			}
		}()
	}
	close(start)
	time.Sleep(50 * time.Millisecond) // the requests are in flight
	rctx, cancel := context.WithTimeout(ctx, 3*deadline)
	t0 := time.Now()
	rerr := g.Revoke(rctx, "revoked")
	revokeTook := time.Since(t0)
	cancel()
	wg.Wait()
	close(errs)
	var failed []string
	for err := range errs {
		failed = append(failed, err.Error())
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed with %d in flight on a pool of %d:\n%s",
			len(failed), clients*perClient, clients, smallPool, strings.Join(failed, "\n"))
	}
	// The revocation may wait for actions, up to its lock timeout; it must not wait for a connection.
	if rerr != nil || revokeTook > lockTimeout+time.Second {
		t.Errorf("Revoke during the load = %v after %v; want nil within the lock timeout %v", rerr, revokeTook, lockTimeout)
	}
}

// getWith sends a GET with grantID as the bearer token, and returns the status and how long it took.
func getWith(client *http.Client, url, grantID string) (int, time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+grantID)
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, time.Since(t0), err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(t0), nil
}

// TestPostgresLoad: 4 times as many clients as the pool has connections send guarded writes through
// Require, each in the request's transaction, while grants are revoked in the middle. No request
// hangs, every revocation returns within its lock timeout, and no write commits after the
// revocation of its grant returned (the property internal/jepsen proves across processes).
func TestPostgresLoad(t *testing.T) {
	const lockTimeout = 2 * time.Second
	g, pool := pgSmallPool(t, WithLockTimeout(lockTimeout))
	res := runLoad(t, g, pool, load{clients: 4 * smallPool, perClient: 20, revokeEvery: 20 * time.Millisecond})
	for _, f := range res.failures {
		t.Error(f)
	}
	for _, v := range res.violations {
		t.Error(v)
	}
	for _, r := range res.revocations {
		if r.err != nil || r.took > lockTimeout+time.Second {
			t.Errorf("Revoke(%q) under load = %v after %v; want nil within the lock timeout %v", r.grantID, r.err, r.took, lockTimeout)
		}
	}
	if len(res.revocations) < 5 || res.refused == 0 {
		t.Fatalf("%d revocations, %d requests refused: the load did not revoke grants in use", len(res.revocations), res.refused)
	}
	t.Logf("%d requests (%d refused as revoked), %d revocations (%d writes committed while one waited), revocation p50 %v, max %v",
		res.requests, res.refused, len(res.revocations), res.raced, res.revokePercentile(50), res.revokePercentile(100))
}

// load is a run of runLoad.
type load struct {
	clients, perClient int           // clients in parallel, each sending perClient requests
	revokeEvery        time.Duration // a revocation of some client's grant this often
}

type loadResult struct {
	requests, refused int
	requestTook       []time.Duration
	failures          []string // requests that failed or hung
	revocations       []revocation
	violations        []string // writes committed after their grant's revocation returned
	raced             int      // writes that committed while a revocation of their grant waited
}

type revocation struct {
	grantID          string
	invoked, returns time.Duration // on the load's clock
	took             time.Duration
	err              error
}

func (r loadResult) revokePercentile(p int) time.Duration {
	var took []time.Duration
	for _, rv := range r.revocations {
		took = append(took, rv.took)
	}
	if len(took) == 0 {
		return 0
	}
	slices.Sort(took)
	return took[min(len(took)*p/100, len(took)-1)]
}

// runLoad runs l against g over HTTP on 127.0.0.1: each request writes a row in the request's
// transaction (Tx) recording the clock's reading just before the handler returns and Require
// commits, as internal/jepsen's writes do, so that "committed after the revocation returned" is
// read from the data. A client whose grant is revoked gets a new one.
func runLoad(tb testing.TB, g *Guard, pool *pgxpool.Pool, l load) loadResult {
	tb.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE load_writes (grant_id text NOT NULL, reading bigint NOT NULL)`); err != nil {
		tb.Fatal(err)
	}
	origin := time.Now()
	clock := func() time.Duration { return time.Since(origin) }
	var acting sync.Map // grant ID -> struct{}: handlers running, which revocations aim at
	write := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gr, _ := GrantFrom(r.Context())
		tx := Tx(r.Context())
		acting.Store(gr.ID, struct{}{})
		defer acting.Delete(gr.ID)
		time.Sleep(2 * time.Millisecond) // an action that takes a while, so revocations meet it
		if _, err := tx.Exec(r.Context(), `INSERT INTO load_writes VALUES ($1, $2)`, gr.ID, int64(clock())); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	srv := httptest.NewServer(g.Require("items:write", headerGrantID)(write))
	defer srv.Close()
	client := &http.Client{Timeout: 10 * time.Second}

	var mu sync.Mutex // guards res and current
	var res loadResult
	current := make([]string, l.clients)
	newGrant := func(i, gen int) string {
		id := fmt.Sprintf("c%d-%d", i, gen)
		if err := g.Grant(ctx, Grant{ID: id, Subject: fmt.Sprint("s", i), Scopes: []string{"items:write"}}); err != nil {
			tb.Errorf("Grant(%q): %v", id, err)
		}
		mu.Lock()
		current[i] = id
		mu.Unlock()
		return id
	}
	var wg sync.WaitGroup
	for i := range l.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gen := 0
			id := newGrant(i, gen)
			for range l.perClient {
				status, took, err := getWith(client, srv.URL, id)
				mu.Lock()
				res.requests++
				res.requestTook = append(res.requestTook, took)
				switch {
				case err == nil && status == http.StatusOK:
				case err == nil && status == http.StatusUnauthorized:
					res.refused++
				default:
					res.failures = append(res.failures, fmt.Sprintf("client %d, grant %s: status %d, error %v after %v", i, id, status, err, took))
				}
				mu.Unlock()
				if status == http.StatusUnauthorized {
					gen++
					id = newGrant(i, gen)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(l.revokeEvery)
	defer tick.Stop()
	for k := 0; ; k++ {
		select {
		case <-done:
		case <-tick.C:
			// A grant with a handler running if there is one, so the revocation has to wait for it.
			mu.Lock()
			id := current[k%l.clients]
			mu.Unlock()
			acting.Range(func(key, _ any) bool { id = key.(string); return false })
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			rv := revocation{grantID: id, invoked: clock()}
			rv.err = g.Revoke(rctx, id)
			rv.returns = clock()
			cancel()
			rv.took = rv.returns - rv.invoked
			res.revocations = append(res.revocations, rv)
			continue
		}
		break
	}

	rows, err := pool.Query(ctx, `SELECT grant_id, reading FROM load_writes`)
	if err != nil {
		tb.Fatal(err)
	}
	readings := map[string][]time.Duration{}
	for rows.Next() {
		var id string
		var reading int64
		if err := rows.Scan(&id, &reading); err != nil {
			tb.Fatal(err)
		}
		readings[id] = append(readings[id], time.Duration(reading))
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	for _, rv := range res.revocations {
		if rv.err != nil {
			continue // not acknowledged: promises nothing
		}
		for _, at := range readings[rv.grantID] {
			switch {
			case at > rv.returns:
				res.violations = append(res.violations, fmt.Sprintf("a write on grant %s committed after its revocation returned (reading %v, revocation returned at %v)",
					rv.grantID, at, rv.returns))
			case at > rv.invoked:
				res.raced++
			}
		}
	}
	return res
}

// TestPostgresRequireCommits: the request's transaction commits when the handler returns, and rolls
// back when it panics or answers 5xx; a handler may commit it itself; and a commit that fails never
// leaves a success standing. Do commits when its action returns nil and rolls back otherwise.
func TestPostgresRequireCommits(t *testing.T) {
	g, pool := pgSmallPool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE notes (name text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	mustGrant(t, g, Grant{ID: "a1", Subject: "alice", Scopes: []string{"notes:write"}})
	insert := func(r *http.Request) {
		if _, err := Tx(r.Context()).Exec(r.Context(), `INSERT INTO notes VALUES ($1)`, r.URL.Path[1:]); err != nil {
			t.Errorf("%s: insert: %v", r.URL.Path, err)
		}
	}
	handlers := map[string]http.HandlerFunc{
		"/ok": func(w http.ResponseWriter, r *http.Request) { insert(r) },
		"/server-error": func(w http.ResponseWriter, r *http.Request) {
			insert(r)
			w.WriteHeader(http.StatusInternalServerError)
		},
		"/panic": func(w http.ResponseWriter, r *http.Request) {
			insert(r)
			panic(http.ErrAbortHandler) // the server swallows this one quietly
		},
		"/commits-itself": func(w http.ResponseWriter, r *http.Request) {
			insert(r)
			if err := Tx(r.Context()).Commit(r.Context()); err != nil {
				t.Errorf("commit: %v", err)
			}
			w.WriteHeader(http.StatusCreated)
		},
		"/aborted": func(w http.ResponseWriter, r *http.Request) {
			insert(r)
			Tx(r.Context()).Exec(r.Context(), `SELECT 1/0`) // aborts the transaction; the handler ignores it
		},
		"/aborted-after-answering": func(w http.ResponseWriter, r *http.Request) {
			insert(r)
			Tx(r.Context()).Exec(r.Context(), `SELECT 1/0`)
			w.Write([]byte("done"))
		},
	}
	mux := http.NewServeMux()
	for path, h := range handlers {
		mux.Handle(path, h)
	}
	srv := httptest.NewServer(g.Require("notes:write", headerGrantID)(mux))
	defer srv.Close()
	client := &http.Client{Timeout: 10 * time.Second}
	tests := []struct {
		path      string
		status    int // 0: no answer
		committed bool
	}{
		{"/ok", 200, true},
		{"/server-error", 500, false},
		{"/panic", 0, false},
		{"/commits-itself", 201, true},
		{"/aborted", 500, false},
		{"/aborted-after-answering", 0, false},
	}
	for _, tt := range tests {
		status, _, err := getWith(client, srv.URL+tt.path, "a1")
		if status != tt.status || (tt.status == 0) != (err != nil) {
			t.Errorf("%s: status %d, error %v; want %d", tt.path, status, err, tt.status)
		}
		var committed bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM notes WHERE name = $1)`, tt.path[1:]).Scan(&committed); err != nil {
			t.Fatal(err)
		}
		if committed != tt.committed {
			t.Errorf("%s: committed = %v; want %v", tt.path, committed, tt.committed)
		}
	}

	boom := errors.New("boom")
	for _, want := range []error{nil, boom} {
		name := fmt.Sprint("do-", want)
		err := g.Do(ctx, "a1", "notes:write", func(ctx context.Context) error {
			if _, err := Tx(ctx).Exec(ctx, `INSERT INTO notes VALUES ($1)`, name); err != nil {
				return err
			}
			return want
		})
		var committed bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM notes WHERE name = $1)`, name).Scan(&committed); err != nil {
			t.Fatal(err)
		}
		if err != want || committed != (want == nil) {
			t.Errorf("Do with an action returning %v = %v, committed = %v", want, err, committed)
		}
	}

	// Nothing is left pinned: a revocation does not wait.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := g.Revoke(rctx, "a1"); err != nil {
		t.Fatalf("Revoke after the requests = %v", err)
	}
}
