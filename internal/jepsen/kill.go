package jepsen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// holdFor is how long the fault's own write waits inside its transaction, pinning its grant. The
// fault kills the replica long before; the write could only finish if the kill failed.
const holdFor = 5 * time.Second

// KillMidAction kills replica victim while it holds a grant in the middle of a write that a
// revocation is waiting for, and restarts it. It makes the conditions rather than hoping for them:
//
//  1. it sends victim an act (through DoTx if tx, else Middleware and guard.Tx) that waits holdFor inside
//     its transaction, and polls victim's /stats until the act is past its check, so its grant is
//     pinned FOR SHARE;
//  2. it revokes the grant through replica via, and waits until pg_stat_activity shows the
//     revocation blocked by a session of victim's;
//  3. it kills victim (SIGKILL for a Process), with whatever else victim is doing;
//  4. it requires that the revocation returns acknowledged (PostgreSQL saw victim's sessions end
//     and released their locks), that the act was not acknowledged and left no write (its
//     transaction died with the process), and that victim starts again.
//
// db is a pool on the shared database. Both operations are in the history, so the checker judges
// them as well.
func KillMidAction(atOp, victim, via int, tx bool, db *pgxpool.Pool) Fault {
	shape := "Middleware+Tx"
	if tx {
		shape = "DoTx"
	}
	return Fault{AtOp: atOp, Name: fmt.Sprintf("kill replica %d mid-action (%s) while a revocation waits for it, restart it", victim, shape),
		Run: func(ctx context.Context, c *Client) error {
			return killMidAction(ctx, c, victim, via, tx, db)
		}}
}

func killMidAction(ctx context.Context, c *Client, victim, via int, tx bool, db *pgxpool.Pool) error {
	node := c.Replicas()[victim]
	// Both operations run in goroutines that record into the history: wait for them whatever
	// happens, so that nothing is recorded after Run returns.
	var g liveGrant
	var actID int64
	var actDone chan Op
	for attempt := 0; ; attempt++ {
		if attempt == 20 {
			return errors.New("no act got past its check on the victim in 20 tries")
		}
		if attempt > 0 {
			time.Sleep(50 * time.Millisecond) // let a replica recovering from an earlier fault reconnect
		}
		var ok bool
		if g, ok = c.takeGrant(); !ok {
			// The clients have revoked or cut every grant: make one (it may be taken by them
			// before this takes it; the next attempt makes another).
			c.grant(ctx, via)
			continue
		}
		actID = c.r.st.id()
		actDone = make(chan Op, 1)
		go func() { actDone <- c.r.actOn(ctx, victim, actID, g, tx, holdFor) }()
		pinned, err := waitWriting(ctx, node.URL(), actID, actDone)
		if err != nil {
			node.Kill()
			<-actDone
			return errors.Join(err, node.Restart(ctx))
		}
		if pinned {
			break
		}
		// Refused (its subject was cut meanwhile) or failed (a replica still recovering from an
		// earlier fault): try another grant.
	}

	revokeDone := make(chan Op, 1)
	go func() { revokeDone <- c.r.revoke(ctx, via, g.id) }()
	waitErr := waitBlocked(ctx, db, node.Config().ApplicationName())
	stats, _ := fetchStats(ctx, node.URL())
	who := fmt.Sprintf("replica %d (in this process)", victim)
	p, isProcess := node.(*Process)
	if isProcess {
		who = fmt.Sprintf("replica %d (pid %d, SIGKILL)", victim, p.Pid())
	}

	killedAt := c.Clock().Now()
	node.Kill()
	revoke, act := <-revokeDone, <-actDone
	restartStart := time.Now()
	restartErr := node.Restart(ctx)
	var errs []error
	if waitErr != nil {
		errs = append(errs, waitErr)
	}
	if !revoke.OK() {
		errs = append(errs, fmt.Errorf("the revocation of grant %s (op %d) was not acknowledged after its blocker was killed: status %d %s",
			g.id, revoke.ID, revoke.Status, revoke.Err))
	} else if revoke.Return < killedAt {
		errs = append(errs, fmt.Errorf("the revocation of grant %s (op %d) returned before the kill: it was not waiting for the killed replica", g.id, revoke.ID))
	}
	switch {
	case act.OK():
		errs = append(errs, fmt.Errorf("act op %d was acknowledged although its replica was killed while it held its grant", act.ID))
	case isProcess && act.Status != 0:
		// A killed process answers nothing; a Replica in this process may still answer 500.
		errs = append(errs, fmt.Errorf("act op %d got status %d from a replica process killed before it could answer", act.ID, act.Status))
	}
	if n, err := countWrites(ctx, db, actID); err != nil {
		errs = append(errs, err)
	} else if n != 0 {
		errs = append(errs, fmt.Errorf("act op %d committed although its replica was killed before its write", actID))
	}
	if restartErr != nil {
		errs = append(errs, restartErr)
	}
	c.Logf("%s killed with %d acts in flight, op %d of them holding grant %s; the revocation waiting for it (op %d, through replica %d) "+
		"returned %.1f ms after the kill (status %d); the act's client saw status %d %q; restarted on %s in %v",
		who, stats.Acts, actID, g.id, revoke.ID, via, float64(revoke.Return-killedAt)/1e6, revoke.Status, act.Status, act.Err,
		node.URL(), time.Since(restartStart).Round(time.Millisecond))
	return errors.Join(errs...)
}

// waitWriting polls a replica's /stats until act op is past its check (true), or the act returns
// (false: it was refused or failed; its result is consumed).
func waitWriting(ctx context.Context, base string, op int64, actDone <-chan Op) (bool, error) {
	deadline := time.Now().Add(holdFor / 2)
	for {
		select {
		case <-actDone:
			return false, nil
		default:
		}
		if s, err := fetchStats(ctx, base); err == nil && slices.Contains(s.Writing, op) {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("act op %d neither returned nor got past its check within %v", op, holdFor/2)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// waitBlocked waits until a revocation on the database is blocked by a session of application
// app: the revocation is waiting for the pin, so the kill strikes where it matters.
func waitBlocked(ctx context.Context, db *pgxpool.Pool, app string) error {
	deadline := time.Now().Add(holdFor / 2)
	var lastErr error
	for {
		var blocked bool
		err := db.QueryRow(ctx, `SELECT EXISTS (
			SELECT 1 FROM pg_stat_activity w, pg_stat_activity b
			WHERE w.datname = current_database() AND w.wait_event_type = 'Lock'
				AND w.query LIKE 'UPDATE guard_grants SET revoked%'
				AND b.pid = ANY (pg_blocking_pids(w.pid)) AND b.application_name = $1)`, app).Scan(&blocked)
		if err == nil && blocked {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no revocation was seen waiting for a lock of %s within %v (last error: %v)", app, holdFor/2, lastErr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// countWrites counts op's committed writes, retrying while the database is unreachable (a
// restart just before, say).
func countWrites(ctx context.Context, db *pgxpool.Pool, op int64) (int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := db.QueryRow(ctx, `SELECT count(*) FROM jepsen_writes WHERE op = $1`, op).Scan(&n)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return n, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var statsClient = &http.Client{Timeout: time.Second}

// fetchStats asks a replica what it is doing.
func fetchStats(ctx context.Context, base string) (Stats, error) {
	var s Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/stats", nil)
	if err != nil {
		return s, err
	}
	resp, err := statsClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET /stats: status %d", resp.StatusCode)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}
