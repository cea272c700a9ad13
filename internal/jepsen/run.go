package jepsen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Op is one operation in the history, as a client saw it.
type Op struct {
	ID      int64
	Kind    string // "grant", "act", "revoke", "downgrade"
	Replica int
	Grant   string // grant, act, revoke
	Subject string // grant, downgrade
	Invoke  int64  // shared clock, before the request was sent
	Return  int64  // shared clock, once the answer (or the error) was in
	Status  int    // HTTP status; 0 when the request failed
	Err     string
}

// OK reports whether the operation was acknowledged.
func (o Op) OK() bool { return o.Status == http.StatusOK }

// Node is a replica as the clients and the faults see it: a Replica in this process or a Process.
type Node interface {
	Config() ReplicaConfig
	URL() string // changes when the replica restarts
	Kill()
	Restart(ctx context.Context) error
}

// Fault is a fault injected when the clients have started AtOp operations. Run may send
// operations of its own through c; they are recorded in the history. An error from Run is a
// fault that could not be injected as intended: Run (the workload's) returns it.
type Fault struct {
	AtOp int
	Name string
	Run  func(ctx context.Context, c *Client) error
}

// Workload is what Run runs.
type Workload struct {
	Ops      int
	Clients  int
	Replicas []Node
	Clock    *Clock
	JWTKey   []byte
	Seed     uint64
	MaxDelay time.Duration // bound of the random pause before each op and inside each write
	Faults   []Fault
	Logf     func(format string, args ...any)
}

type liveGrant struct {
	id, subject, token string
}

// runState is the clients' shared view of which grants and subjects they still treat as live.
type runState struct {
	mu       sync.Mutex
	live     []liveGrant
	retired  []liveGrant // revoked or downgraded: acts on them should be refused
	subjects []string
	nextID   int64
}

func (s *runState) id() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return s.nextID
}

// Run runs the workload and returns the history, in no particular order. It stops early when ctx
// ends. Its error is ctx's, or those of the faults that failed.
func Run(ctx context.Context, w Workload) ([]Op, error) {
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64},
	}
	defer client.CloseIdleConnections()
	st := &runState{}
	var mu sync.Mutex
	var history []Op
	// recorded counts the operations in the history, so that a run of N operations has at least N
	// (steps with nothing to do record nothing).
	var recorded atomic.Int64
	record := func(o Op) {
		recorded.Add(1)
		mu.Lock()
		history = append(history, o)
		mu.Unlock()
	}
	c := &runner{w: w, client: client, st: st, record: record}

	// Start with a few subjects holding a few grants each.
	for i := range 6 {
		sub := fmt.Sprintf("s%d", i)
		st.subjects = append(st.subjects, sub)
		for range 4 {
			if _, err := c.grant(ctx, rand.New(rand.NewPCG(w.Seed, uint64(i))), sub); err != nil {
				return nil, fmt.Errorf("jepsen: setting up grants: %w", err)
			}
		}
	}

	faultsDone := make(chan struct{})
	var faultErrs []error
	go func() {
		defer close(faultsDone)
		for i, f := range w.Faults {
			for recorded.Load() < int64(f.AtOp) {
				if ctx.Err() != nil {
					return
				}
				time.Sleep(time.Millisecond)
			}
			t, at := w.Clock.Now(), recorded.Load()
			err := f.Run(ctx, &Client{r: c, rng: rand.New(rand.NewPCG(w.Seed, uint64(500+i)))})
			w.Logf("fault %q at op %d (%.0f ms), done at %.0f ms: %v", f.Name, at, float64(t)/1e6, float64(w.Clock.Now())/1e6, err)
			if err != nil {
				faultErrs = append(faultErrs, fmt.Errorf("fault %q: %w", f.Name, err))
			}
		}
	}()

	var wg sync.WaitGroup
	for i := range w.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(w.Seed, uint64(1000+i)))
			for ctx.Err() == nil && recorded.Load() < int64(w.Ops) {
				if w.MaxDelay > 0 {
					time.Sleep(time.Duration(rng.Int64N(int64(w.MaxDelay))))
				}
				if op, ok := c.step(ctx, rng); ok && (op.Status == 0 || op.Status >= 500) {
					// Back off from a failing service, as a real client would, so that the
					// run's operations are not all spent while a fault lasts.
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	<-faultsDone
	return history, errors.Join(append([]error{ctx.Err()}, faultErrs...)...)
}

type runner struct {
	w      Workload
	client *http.Client
	st     *runState
	record func(Op)
}

// step runs one random operation and returns it; ok is false if there was nothing to do.
func (c *runner) step(ctx context.Context, rng *rand.Rand) (op Op, ok bool) {
	st := c.st
	switch n := rng.IntN(100); {
	case n < 80:
		st.mu.Lock()
		var g liveGrant
		ok := true
		switch {
		case len(st.live) > 0 && (rng.IntN(100) < 85 || len(st.retired) == 0):
			g = st.live[rng.IntN(len(st.live))]
		case len(st.retired) > 0:
			// A replayed token: the check must refuse it, and the TTL cache may not.
			g = st.retired[len(st.retired)-1-rng.IntN(min(len(st.retired), 20))]
		default:
			ok = false
		}
		st.mu.Unlock()
		if ok {
			return c.act(ctx, rng, g), true
		}
	case n < 88:
		st.mu.Lock()
		if len(st.live) == 0 {
			st.mu.Unlock()
			return Op{}, false
		}
		i := rng.IntN(len(st.live))
		g := st.live[i]
		st.live = append(st.live[:i], st.live[i+1:]...)
		st.retired = append(st.retired, g)
		st.mu.Unlock()
		return c.revoke(ctx, c.replica(rng), g.id), true
	case n < 90:
		st.mu.Lock()
		if len(st.subjects) <= 1 {
			st.mu.Unlock()
			return Op{}, false
		}
		i := rng.IntN(len(st.subjects))
		sub := st.subjects[i]
		st.subjects = append(st.subjects[:i], st.subjects[i+1:]...)
		st.nextID++
		st.subjects = append(st.subjects, fmt.Sprintf("s%d", 1000+st.nextID)) // a fresh one takes its place
		kept := st.live[:0]
		for _, g := range st.live {
			if g.subject == sub {
				st.retired = append(st.retired, g)
			} else {
				kept = append(kept, g)
			}
		}
		st.live = kept
		st.mu.Unlock()
		return c.call(ctx, c.replica(rng), Op{Kind: "downgrade", Subject: sub}, "/downgrade", url.Values{"subject": {sub}}), true
	default:
		st.mu.Lock()
		sub := st.subjects[rng.IntN(len(st.subjects))]
		st.mu.Unlock()
		op, _ := c.grant(ctx, rng, sub)
		return op, true
	}
	return Op{}, false
}

func (c *runner) grant(ctx context.Context, rng *rand.Rand, subject string) (Op, error) {
	return c.grantOn(ctx, c.replica(rng), subject)
}

func (c *runner) grantOn(ctx context.Context, replica int, subject string) (Op, error) {
	id := fmt.Sprintf("g%d", c.st.id())
	op := c.call(ctx, replica, Op{Kind: "grant", Grant: id, Subject: subject}, "/grant", url.Values{"id": {id}, "subject": {subject}})
	if !op.OK() {
		return op, fmt.Errorf("grant %s: status %d %s", id, op.Status, op.Err)
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": Issuer, "sub": subject, "jti": id, "scope": "read write",
		"exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(c.w.JWTKey)
	if err != nil {
		return op, err
	}
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	if slices.Contains(c.st.subjects, subject) {
		c.st.live = append(c.st.live, liveGrant{id: id, subject: subject, token: token})
	} else {
		// Downgraded while the grant was being made: its writes will be refused.
		c.st.retired = append(c.st.retired, liveGrant{id: id, subject: subject, token: token})
	}
	return op, nil
}

func (c *runner) replica(rng *rand.Rand) int { return rng.IntN(len(c.w.Replicas)) }

func (c *runner) act(ctx context.Context, rng *rand.Rand, g liveGrant) Op {
	var delay time.Duration
	if c.w.MaxDelay > 0 {
		delay = time.Duration(rng.Int64N(int64(c.w.MaxDelay/time.Microsecond))) * time.Microsecond
	}
	return c.actOn(ctx, c.replica(rng), c.st.id(), g, rng.IntN(2) == 0, delay)
}

// actOn sends act op id with grant g to one replica: through DoTx if tx, else through Middleware
// and guard.Tx. The replica waits delay inside the write's transaction, after the check.
func (c *runner) actOn(ctx context.Context, replica int, id int64, g liveGrant, tx bool, delay time.Duration) Op {
	path := "/act"
	if tx {
		path = "/act-tx"
	}
	form := url.Values{"op": {strconv.FormatInt(id, 10)}, "delay_us": {strconv.FormatInt(delay.Microseconds(), 10)}}
	return c.callAs(ctx, replica, Op{ID: id, Kind: "act", Grant: g.id, Subject: g.subject}, path, form, g.token)
}

func (c *runner) revoke(ctx context.Context, replica int, grantID string) Op {
	return c.call(ctx, replica, Op{Kind: "revoke", Grant: grantID}, "/revoke", url.Values{"grant": {grantID}})
}

func (c *runner) call(ctx context.Context, replica int, op Op, path string, form url.Values) Op {
	return c.callAs(ctx, replica, op, path, form, "")
}

// callAs sends op to a replica and records it. A request that gets no answer (the replica was
// killed, or refused the connection) is recorded with Status 0: its outcome is unknown, and the
// checker judges a write it may have committed by the write's own clock reading.
func (c *runner) callAs(ctx context.Context, replica int, op Op, path string, form url.Values, token string) Op {
	op.Replica = replica
	if op.ID == 0 {
		op.ID = c.st.id()
	}
	base := c.w.Replicas[op.Replica].URL()
	op.Invoke = c.w.Clock.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(form.Encode()))
	if err == nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		var resp *http.Response
		if resp, err = c.client.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			op.Status = resp.StatusCode
			if resp.StatusCode != http.StatusOK {
				op.Err = strings.TrimSpace(string(body))
			}
		}
	}
	op.Return = c.w.Clock.Now()
	if err != nil {
		op.Err = err.Error()
	}
	c.record(op)
	return op
}

// Client is what a fault uses to send operations of its own, recorded in the history as the
// clients' are.
type Client struct {
	r   *runner
	rng *rand.Rand
}

// Replicas returns the workload's replicas.
func (c *Client) Replicas() []Node { return c.r.w.Replicas }

// Clock returns the workload's clock.
func (c *Client) Clock() *Clock { return c.r.w.Clock }

// Logf logs as the workload does.
func (c *Client) Logf(format string, args ...any) { c.r.w.Logf(format, args...) }

// grant makes a grant for a live subject through a replica, as the clients do.
func (c *Client) grant(ctx context.Context, replica int) {
	st := c.r.st
	st.mu.Lock()
	sub := st.subjects[c.rng.IntN(len(st.subjects))]
	st.mu.Unlock()
	c.r.grantOn(ctx, replica, sub)
}

// takeGrant withdraws a live grant from the clients, as their revocations do (they may still
// replay it, as they replay revoked ones), so that the fault can revoke it.
func (c *Client) takeGrant() (liveGrant, bool) {
	st := c.r.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.live) == 0 {
		return liveGrant{}, false
	}
	i := c.rng.IntN(len(st.live))
	g := st.live[i]
	st.live = append(st.live[:i], st.live[i+1:]...)
	st.retired = append(st.retired, g)
	return g, true
}
