package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tocsin/tocsin/guard"
	"github.com/tocsin/tocsin/internal/pgtest"
	"github.com/tocsin/tocsin/internal/redistest"
)

// TestMain runs the tests, or, in a process StartProcess started, a replica.
func TestMain(m *testing.M) {
	if config, ok := os.LookupEnv(ReplicaEnv); ok {
		os.Exit(ServeReplica(config))
	}
	os.Exit(pgtest.Main(m))
}

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
		// No answer (the replica was killed): each may have committed, and is judged by its write.
		{ID: 8, Kind: "act", Grant: "g4", Subject: "s4", Invoke: 30, Return: 90, Err: "EOF"},
		{ID: 9, Kind: "act", Grant: "g4", Subject: "s4", Invoke: 30, Return: 90, Err: "EOF"},
		{ID: 10, Kind: "act", Grant: "g4", Subject: "s4", Invoke: 30, Return: 90, Err: "EOF"},
		{ID: 11, Kind: "revoke", Grant: "g4", Invoke: 40, Return: 60, Status: 200},
	}
	writes := []Write{
		{Op: 1, Grant: "g1", Subject: "s1", AtNs: 39}, // raced the revoke, committed before it returned: fine
		{Op: 3, Grant: "g1", Subject: "s1", AtNs: 41}, // after the revoke returned: violation
		{Op: 4, Grant: "g2", Subject: "s2", AtNs: 80}, // after the downgrade returned: violation
		{Op: 6, Grant: "g3", Subject: "s3", AtNs: 80}, // the revoke failed: fine
		{Op: 8, Grant: "g4", Subject: "s4", AtNs: 59}, // before the revoke returned: fine
		{Op: 9, Grant: "g4", Subject: "s4", AtNs: 61}, // after: a violation although no client saw it
		// op 10 did not commit: fine, and no anomaly, since nobody was told it did
	}
	r := Check(ops, writes)
	if len(r.Violations) != 3 || r.Violations[0].Write.Op != 3 || r.Violations[1].Write.Op != 4 || r.Violations[2].Write.Op != 9 {
		t.Fatalf("violations = %v; want writes 3, 4 and 9", r.Violations)
	}
	if r.Raced != 6 || len(r.Anomalies) != 0 || r.Revokes != 2 || r.Downgrades != 1 || r.Indeterminate != 3 || r.IndeterminateCommitted != 2 {
		t.Fatalf("report = %v %v", r, r.Anomalies)
	}

	// An acknowledged act without a write, and a write without an act, are anomalies.
	r = Check([]Op{{ID: 1, Kind: "act", Grant: "g", Subject: "s", Status: 200}}, []Write{{Op: 9, Grant: "g", Subject: "s"}})
	if len(r.Anomalies) != 2 || len(r.Violations) != 0 {
		t.Fatalf("anomalies = %q; want two", r.Anomalies)
	}
}

func TestReplicaURL(t *testing.T) {
	if u, err := replicaURL(readyPrefix + "http://127.0.0.1:4321"); err != nil || u != "http://127.0.0.1:4321" {
		t.Errorf("replicaURL = %q, %v", u, err)
	}
	for _, line := range []string{"http://127.0.0.1:4321", readyPrefix + "http://0.0.0.0:4321", readyPrefix + "http://[::1]:4321",
		readyPrefix + "http://localhost:4321", readyPrefix + "http://10.0.0.1:4321", readyPrefix + "https://127.0.0.1:4321",
		readyPrefix + "http://127.0.0.1", readyPrefix + "http://127.0.0.1:4321/x"} {
		if u, err := replicaURL(line); err == nil {
			t.Errorf("replicaURL(%q) = %q, want an error", line, u)
		}
	}
}

// A replica process that cannot start says why, with what it wrote on stderr.
func TestStartProcessFails(t *testing.T) {
	_, err := StartProcess(context.Background(), ReplicaConfig{Name: "broken", DB: "postgres://%zz", Clock: NewClock()})
	if err == nil || !strings.Contains(err.Error(), "exited before serving") || !strings.Contains(err.Error(), "replica broken") {
		t.Fatalf("err = %v; want the process's exit and its message", err)
	}
	t.Log(err)
}

type cluster struct {
	replicas []Node
	pool     *pgxpool.Pool // the checker's own connection
	clock    *Clock
	key      []byte
}

// Where a cluster's replicas run.
const (
	inProcess  = false
	ownProcess = true
)

// newCluster starts n replicas in mode on database url, each in a process of its own (processes)
// or in this one. redisAddr is empty for no Redis.
func newCluster(t *testing.T, url string, n int, mode Mode, redisAddr string, processes bool) *cluster {
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
		cfg := ReplicaConfig{Name: fmt.Sprint(i), DB: url, Mode: mode, TTL: 200 * time.Millisecond,
			Clock: c.clock, JWTKey: c.key, RedisAddr: redisAddr, MaxConns: 12}
		if !processes {
			r, err := StartReplica(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(r.Kill)
			c.replicas = append(c.replicas, r)
			continue
		}
		p, err := StartProcess(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			p.Close()
			// A replica process's stderr is empty unless something went wrong there: the race
			// detector's reports and panics land in it, not in this process's.
			out := strings.TrimSpace(p.Output())
			switch {
			case strings.Contains(out, "DATA RACE") || strings.Contains(out, "panic:"):
				t.Errorf("replica process %s:\n%s", cfg.Name, out)
			case out != "":
				t.Logf("replica process %s wrote:\n%s", cfg.Name, out)
			}
		})
		c.replicas = append(c.replicas, p)
	}
	return c
}

func (c *cluster) run(t *testing.T, ops int, faults []Fault) (Report, LinReport) {
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
	l := CheckLinearizable(history, writes, porcupineTimeout(t))
	t.Log(l)
	for _, n := range l.Notes {
		t.Logf("porcupine: %s", n)
	}
	// The two checkers share no code: each must find violations of the same grants.
	for _, d := range Agree(r, l) {
		t.Errorf("the checkers disagree: %s", d)
	}
	return r, l
}

// porcupineTimeout is how long porcupine may take: JEPSEN_PORCUPINE_TIMEOUT (a duration), or a
// minute, far above what a 100,000-operation history takes.
func porcupineTimeout(t *testing.T) time.Duration {
	s := os.Getenv("JEPSEN_PORCUPINE_TIMEOUT")
	if s == "" {
		return time.Minute
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("JEPSEN_PORCUPINE_TIMEOUT=%q: want a positive duration", s)
	}
	return d
}

// visualize writes porcupine's visualization of the first grants that are not linearizable into
// JEPSEN_PORCUPINE_DIR if set, else into dir (a new temporary directory if empty, which is kept),
// and returns what to tell about it.
func visualize(t *testing.T, l LinReport, dir string) string {
	t.Helper()
	if env := os.Getenv("JEPSEN_PORCUPINE_DIR"); env != "" {
		dir = env
	}
	var err error
	if dir == "" {
		dir, err = os.MkdirTemp("", "jepsen-porcupine-")
	} else {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return fmt.Sprintf("no visualization: %v", err)
	}
	path := filepath.Join(dir, t.Name()+".html")
	if err := l.Visualize(path, 10); err != nil {
		return fmt.Sprintf("no visualization: %v", err)
	}
	return fmt.Sprintf("porcupine's visualization of the first %d of them: %s", min(10, len(l.Illegal)), path)
}

func requireClean(t *testing.T, r Report, l LinReport) {
	t.Helper()
	switch l.Result {
	case porcupine.Ok:
	case porcupine.Illegal:
		t.Errorf("porcupine finds the history not linearizable for grants %q; %s", l.Illegal, visualize(t, l, ""))
	default:
		// Not a pass: the history was not checked.
		t.Errorf("porcupine could not decide within %v (%s): the history is unchecked by it; set JEPSEN_PORCUPINE_TIMEOUT to give it longer",
			l.Timeout, l.Result)
	}
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

// TestJepsenGuarded is the proof: three replica processes, one PostgreSQL, no write committed after
// a revocation or scope cut of its grant returned.
func TestJepsenGuarded(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	c := newCluster(t, url, 3, Guarded, "", ownProcess)
	r, l := c.run(t, opsFromEnv(t, 10_000), nil)
	requireClean(t, r, l)
	// Without faults every act is either committed or refused: an error is a bug somewhere.
	if r.Failed+r.Unavailable+r.Indeterminate > 0 {
		t.Errorf("%d acts failed, %d found the store unavailable and %d got no answer in a run without faults: %q",
			r.Failed, r.Unavailable, r.Indeterminate, r.Errors)
	}
}

// TestJepsenFindsTTLCacheViolations runs the same workload against the vulnerable pattern, a
// decision cached for a TTL in front of the same store: the checker must catch it, across
// processes, from the clock readings they wrote.
func TestJepsenFindsTTLCacheViolations(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	c := newCluster(t, url, 3, TTLCache, "", ownProcess)
	r, l := c.run(t, 3000, nil)
	if len(r.Violations) == 0 {
		t.Fatalf("no violations found against a TTL cache: the checker cannot fail (%v)", r)
	}
	t.Logf("first violation: %v", r.Violations[0])
	switch l.Result {
	case porcupine.Illegal:
	case porcupine.Unknown:
		t.Fatalf("porcupine could not decide within %v (Unknown) on the TTL cache's history; set JEPSEN_PORCUPINE_TIMEOUT to give it longer", l.Timeout)
	default:
		t.Fatalf("porcupine finds the TTL cache's history %s, not Illegal: it cannot fail (%v)", l.Result, l)
	}
	t.Log(visualize(t, l, t.TempDir()))
}

// TestJepsenFaults kills replica processes with SIGKILL mid-action while a revocation waits for
// them, restarts PostgreSQL and drops Redis during the run: nothing is allowed that should not be,
// and every replica serves again afterwards.
func TestJepsenFaults(t *testing.T) {
	srv := pgtest.Start(t)
	rs := redistest.Start(t)
	c := newCluster(t, srv.URL("postgres"), 3, Guarded, rs.Addr, ownProcess)
	ops := opsFromEnv(t, 6000)
	faults := []Fault{
		KillMidAction(ops/6, 1, 0, true, c.pool),
		{AtOp: ops / 3, Name: "drop Redis for 300 ms", Run: func(context.Context, *Client) error {
			rs.Stop()
			time.Sleep(300 * time.Millisecond)
			return rs.Restart()
		}},
		{AtOp: ops / 2, Name: "restart PostgreSQL (immediate stop)", Run: func(context.Context, *Client) error {
			if err := srv.Stop(); err != nil {
				return err
			}
			time.Sleep(300 * time.Millisecond)
			return srv.Restart()
		}},
		KillMidAction(2*ops/3, 2, 1, false, c.pool),
		KillMidAction(5*ops/6, 0, 2, true, c.pool),
	}
	r, l := c.run(t, ops, faults)
	requireClean(t, r, l)
	if r.Unavailable+r.Failed+r.Indeterminate == 0 {
		t.Errorf("no act failed during the faults: they were not injected where it matters (%v)", r)
	}
	requireRecovered(t, c)
}

// TestJepsenInProcess runs replicas in the test's process, where a kill closes a replica's server
// and pool instead of ending a process: a smaller run, to keep that mode working.
func TestJepsenInProcess(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	c := newCluster(t, url, 3, Guarded, "", inProcess)
	ops := 3000
	r, l := c.run(t, ops, []Fault{KillMidAction(ops/2, 1, 2, true, c.pool)})
	requireClean(t, r, l)
	requireRecovered(t, c)
}

// requireRecovered checks that after the faults, a fresh grant acts on every replica, and a
// revoked one nowhere.
func requireRecovered(t *testing.T, c *cluster) {
	t.Helper()
	ctx := context.Background()
	for i, rep := range c.replicas {
		if err := probe(ctx, c, rep, fmt.Sprintf("after-%d", i)); err != nil {
			t.Errorf("replica %d after the faults: %v", i, err)
		}
	}
}

// probe grants, acts (must commit), revokes and acts again (must be refused) on one replica.
func probe(ctx context.Context, c *cluster, rep Node, id string) error {
	w := Workload{Replicas: []Node{rep}, Clock: c.clock, JWTKey: c.key}
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
	if op := run.revoke(ctx, 0, g.id); !op.OK() {
		return fmt.Errorf("revoke: status %d %s", op.Status, op.Err)
	}
	if op := run.act(ctx, rng, g); op.Status != http.StatusUnauthorized {
		return fmt.Errorf("act with the revoked grant: status %d %s; want 401", op.Status, op.Err)
	}
	return nil
}
