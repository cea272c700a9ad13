package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/tocsin/tocsin/guard"
	"github.com/tocsin/tocsin/internal/pgtest"
	"github.com/tocsin/tocsin/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// opsFromEnv is the size of the main run: JEPSEN_OPS (make jepsen OPS=N), or def.
func opsFromEnv(t *testing.T, def int) int {
	s := os.Getenv("JEPSEN_OPS")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("JEPSEN_OPS=%q: want a positive number of operations", s)
	}
	return n
}

func TestCheckerFindsLateWrites(t *testing.T) {
	ops := []Op{
		{ID: 1, Kind: "act", Grant: "g1", Subject: "s1", Invoke: 10, Return: 50, Status: 200},
		{ID: 2, Kind: "revoke", Grant: "g1", Invoke: 20, Return: 40, Status: 200},
		{ID: 3, Kind: "act", Grant: "g1", Subject: "s1", Invoke: 30, Return: 60, Status: 200},
		{ID: 4, Kind: "act", Grant: "g2", Subject: "s2", Invoke: 30, Return: 90, Status: 200},
		{ID: 5, Kind: "downgrade", Subject: "s2", Invoke: 60, Return: 70, Status: 200},
		{ID: 6, Kind: "act", Grant: "g3", Subject: "s3", Invoke: 30, Return: 90, Status: 200},
		{ID: 7, Kind: "revoke", Grant: "g3", Invoke: 31, Return: 35, Status: 503}, // not acknowledged: no promise
	}
	writes := []Write{
		{Op: 1, Grant: "g1", Subject: "s1", AtNs: 39}, // raced the revoke, committed before it returned: fine
		{Op: 3, Grant: "g1", Subject: "s1", AtNs: 41}, // after the revoke returned: violation
		{Op: 4, Grant: "g2", Subject: "s2", AtNs: 80}, // after the downgrade returned: violation
		{Op: 6, Grant: "g3", Subject: "s3", AtNs: 80}, // the revoke failed: fine
	}
	r := Check(ops, writes)
	if len(r.Violations) != 2 || r.Violations[0].Write.Op != 3 || r.Violations[1].Write.Op != 4 {
		t.Fatalf("violations = %v; want writes 3 and 4", r.Violations)
	}
	if r.Raced != 4 || len(r.Anomalies) != 0 || r.Revokes != 1 || r.Downgrades != 1 {
		t.Fatalf("report = %v %v", r, r.Anomalies)
	}

	// An acknowledged act without a write, and a write without an act, are anomalies.
	r = Check([]Op{{ID: 1, Kind: "act", Grant: "g", Subject: "s", Status: 200}}, []Write{{Op: 9, Grant: "g", Subject: "s"}})
	if len(r.Anomalies) != 2 || len(r.Violations) != 0 {
		t.Fatalf("anomalies = %q; want two", r.Anomalies)
	}
}

type cluster struct {
	replicas []*Replica
	pool     *pgxpool.Pool // the checker's own connection
	clock    *Clock
	key      []byte
}

// newCluster starts n replicas in mode on database url.
func newCluster(t *testing.T, url string, n int, mode Mode, rdb *redis.Client) *cluster {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := guard.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, Schema); err != nil {
		t.Fatal(err)
	}
	c := &cluster{pool: pool, clock: NewClock(), key: []byte("jepsen-test-key-0123456789abcdef")}
	for i := range n {
		r, err := StartReplica(ctx, ReplicaConfig{Name: fmt.Sprint(i), DB: url, Mode: mode, TTL: 200 * time.Millisecond,
			Clock: c.clock, JWTKey: c.key, Redis: rdb, MaxConns: 12})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Kill() })
		c.replicas = append(c.replicas, r)
	}
	return c
}

func (c *cluster) run(t *testing.T, ops int, faults []Fault) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	history, err := Run(ctx, Workload{Ops: ops, Clients: 16, Replicas: c.replicas, Clock: c.clock, JWTKey: c.key,
		Seed: uint64(time.Now().UnixNano()), MaxDelay: 2 * time.Millisecond, Faults: faults, Logf: t.Logf})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	writes, err := ReadWrites(context.Background(), c.pool)
	if err != nil {
		t.Fatal(err)
	}
	r := Check(history, writes)
	t.Logf("%v in %v", r, time.Since(start).Round(time.Millisecond))
	for _, e := range r.Errors {
		t.Logf("an act failed with %s", e)
	}
	return r
}

func requireClean(t *testing.T, r Report) {
	t.Helper()
	for i, v := range r.Violations {
		if i == 10 {
			t.Errorf("... and %d more", len(r.Violations)-10)
			break
		}
		t.Errorf("violation: %v", v)
	}
	for _, a := range r.Anomalies {
		t.Errorf("anomaly: %s", a)
	}
	// A run where nothing raced a revocation, or nothing was refused, did not test the claim.
	if r.Raced == 0 || r.Denied == 0 || r.Committed == 0 || r.Revokes == 0 || r.Downgrades == 0 {
		t.Errorf("the run did not exercise the race: %v", r)
	}
}

// TestJepsenGuarded is the proof: three replicas, one PostgreSQL, no write committed after a
// revocation or scope cut of its grant returned.
func TestJepsenGuarded(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	c := newCluster(t, url, 3, Guarded, nil)
	r := c.run(t, opsFromEnv(t, 10_000), nil)
	requireClean(t, r)
	// Without faults every act is either committed or refused: an error is a bug somewhere.
	if r.Failed+r.Unavailable > 0 {
		t.Errorf("%d acts failed and %d found the store unavailable in a run without faults: %q", r.Failed, r.Unavailable, r.Errors)
	}
}

// TestJepsenFindsTTLCacheViolations runs the same workload against the vulnerable pattern, a
// decision cached for a TTL in front of the same store: the checker must catch it.
func TestJepsenFindsTTLCacheViolations(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	c := newCluster(t, url, 3, TTLCache, nil)
	r := c.run(t, 3000, nil)
	if len(r.Violations) == 0 {
		t.Fatalf("no violations found against a TTL cache: the checker cannot fail (%v)", r)
	}
	t.Logf("first violation: %v", r.Violations[0])
}

// TestJepsenFaults kills a replica mid-action, restarts PostgreSQL and drops Redis during the run:
// nothing is allowed that should not be, and every replica serves again afterwards.
func TestJepsenFaults(t *testing.T) {
	srv := pgtest.Start(t)
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	c := newCluster(t, srv.URL("postgres"), 3, Guarded, rdb)
	ops := opsFromEnv(t, 6000)
	faults := []Fault{
		{AtOp: ops / 6, Name: "kill replica 1 mid-action, restart it", Run: func(ctx context.Context) error {
			t.Logf("replica 1 killed with %d acts in flight", c.replicas[1].Kill())
			time.Sleep(100 * time.Millisecond)
			return c.replicas[1].Restart(ctx)
		}},
		{AtOp: ops / 3, Name: "drop Redis for 300 ms", Run: func(context.Context) error {
			rs.Stop()
			time.Sleep(300 * time.Millisecond)
			return rs.Restart()
		}},
		{AtOp: ops / 2, Name: "restart PostgreSQL (immediate stop)", Run: func(context.Context) error {
			if err := srv.Stop(); err != nil {
				return err
			}
			time.Sleep(300 * time.Millisecond)
			return srv.Restart()
		}},
		{AtOp: 2 * ops / 3, Name: "kill replica 2 mid-action, restart it", Run: func(ctx context.Context) error {
			t.Logf("replica 2 killed with %d acts in flight", c.replicas[2].Kill())
			time.Sleep(100 * time.Millisecond)
			return c.replicas[2].Restart(ctx)
		}},
	}
	r := c.run(t, ops, faults)
	requireClean(t, r)
	if r.Unavailable+r.Failed == 0 {
		t.Errorf("no act failed during the faults: they were not injected where it matters (%v)", r)
	}
	// Recovery: after the faults, a fresh grant acts on every replica, and a revoked one nowhere.
	ctx := context.Background()
	for i, rep := range c.replicas {
		if err := probe(ctx, c, rep, fmt.Sprintf("after-%d", i)); err != nil {
			t.Errorf("replica %d after the faults: %v", i, err)
		}
	}
}

// probe grants, acts (must commit), revokes and acts again (must be refused) on one replica.
func probe(ctx context.Context, c *cluster, rep *Replica, id string) error {
	w := Workload{Replicas: []*Replica{rep}, Clock: c.clock, JWTKey: c.key}
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 0; ; attempt++ {
		err := probeOnce(ctx, w, fmt.Sprintf("%s-%d", id, attempt))
		if err == nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "status 5") {
			return err
		}
		time.Sleep(100 * time.Millisecond) // a replica still reconnecting answers 503
	}
}

func probeOnce(ctx context.Context, w Workload, subject string) error {
	var history []Op
	// IDs from the clock cannot collide with the run's small ones or with another probe's.
	run := &runner{w: w, client: &http.Client{Timeout: 10 * time.Second}, st: &runState{nextID: w.Clock.Now()},
		record: func(o Op) { history = append(history, o) }}
	rng := rand.New(rand.NewPCG(1, 2))
	if _, err := run.grant(ctx, rng, subject); err != nil {
		return err
	}
	g := run.st.retired[0] // subject is not among the run's live ones
	if op := run.act(ctx, rng, g); op.Status != http.StatusOK {
		return fmt.Errorf("act with a live grant: status %d %s", op.Status, op.Err)
	}
	if op := run.call(ctx, rng, Op{Kind: "revoke", Grant: g.id}, "/revoke", url.Values{"grant": {g.id}}); !op.OK() {
		return fmt.Errorf("revoke: status %d %s", op.Status, op.Err)
	}
	if op := run.act(ctx, rng, g); op.Status != http.StatusUnauthorized {
		return fmt.Errorf("act with the revoked grant: status %d %s; want 401", op.Status, op.Err)
	}
	return nil
}
