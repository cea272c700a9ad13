package jepsen

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Write is a write the database committed.
type Write struct {
	Op      int64
	Grant   string
	Subject string
	AtNs    int64 // the shared clock inside the write's transaction, before its commit
}

// ReadWrites returns every committed write: the ground truth, including writes whose client saw an
// error (a replica killed after the commit, say).
func ReadWrites(ctx context.Context, pool *pgxpool.Pool) ([]Write, error) {
	rows, err := pool.Query(ctx, `SELECT op, grant_id, subject, at_ns FROM jepsen_writes`)
	if err != nil {
		return nil, fmt.Errorf("jepsen: reading the writes: %w", err)
	}
	defer rows.Close()
	var ws []Write
	for rows.Next() {
		var w Write
		if err := rows.Scan(&w.Op, &w.Grant, &w.Subject, &w.AtNs); err != nil {
			return nil, err
		}
		ws = append(ws, w)
	}
	return ws, rows.Err()
}

// Violation is a write that committed after an acknowledged revocation or scope cut that covered
// it had returned.
type Violation struct {
	Write Write
	By    Op      // the revoke or downgrade
	After float64 // ms between By's return and the write's clock reading (a lower bound on the gap)
}

func (v Violation) String() string {
	target := v.By.Grant
	if v.By.Kind == "downgrade" {
		target = v.By.Subject
	}
	return fmt.Sprintf("write op %d (grant %s, subject %s) committed at least %.3f ms after %s %s returned (op %d, invoked %.3f ms, returned %.3f ms)",
		v.Write.Op, v.Write.Grant, v.Write.Subject, v.After, v.By.Kind, target, v.By.ID, ms(v.By.Invoke), ms(v.By.Return))
}

// Report is what Check found.
type Report struct {
	Ops, Acts, Committed, Denied, Unavailable, Failed int
	// Indeterminate counts acts that got no answer (their replica was killed, or refused the
	// connection): each may or may not have committed. IndeterminateCommitted counts those that did,
	// by the database's word.
	Indeterminate, IndeterminateCommitted int
	Revokes, Downgrades                   int // acknowledged ones
	// Raced counts committed writes whose grant was being revoked or cut while they ran: the
	// window the test is about. A run with none proves little.
	Raced      int
	Violations []Violation
	// Anomalies are impossible histories that are not violations, such as an acknowledged act
	// with no committed write: they mean the harness or the database misbehaved.
	Anomalies []string
	// Errors holds a few distinct errors of unavailable and failed acts, for the log.
	Errors []string
}

func (r Report) String() string {
	return fmt.Sprintf("%d ops: %d acts (%d committed, %d refused, %d unavailable, %d failed, %d without an answer of which %d committed), "+
		"%d revokes and %d downgrades acknowledged; %d writes raced a revocation; %d violations, %d anomalies",
		r.Ops, r.Acts, r.Committed, r.Denied, r.Unavailable, r.Failed, r.Indeterminate, r.IndeterminateCommitted,
		r.Revokes, r.Downgrades, r.Raced, len(r.Violations), len(r.Anomalies))
}

// Check reads the history and the committed writes. The rule: a write of grant G (subject S) must
// not commit after an acknowledged revoke of G, or downgrade of S, returned. The write's clock
// reading precedes its commit, so a reading after the return proves the commit came after it.
// Downgrades in the workload are never undone, so the earliest acknowledged one is the one that
// counts.
//
// Every committed write is judged, whatever its client saw: an act that got an error or no answer
// at all (its replica killed mid-request) may have committed, and its write, if there is one, is
// held to the same rule by its own clock reading. Only an acknowledged act must have a write.
func Check(ops []Op, writes []Write) Report {
	var r Report
	r.Ops = len(ops)
	revokedAt := map[string]Op{}    // grant -> earliest-returning acknowledged revoke
	downgradedAt := map[string]Op{} // subject -> earliest-returning acknowledged downgrade
	revokeInvoked := map[string]int64{}
	downgradeInvoked := map[string]int64{}
	acts := map[int64]Op{}
	earliest := func(m map[string]Op, key string, o Op) {
		if prev, ok := m[key]; !ok || o.Return < prev.Return {
			m[key] = o
		}
	}
	firstInvoke := func(m map[string]int64, key string, t int64) {
		if prev, ok := m[key]; !ok || t < prev {
			m[key] = t
		}
	}
	for _, o := range ops {
		switch o.Kind {
		case "act":
			r.Acts++
			acts[o.ID] = o
			switch {
			case o.OK():
			case o.Status == http.StatusUnauthorized || o.Status == http.StatusForbidden:
				r.Denied++
			case o.Status == http.StatusServiceUnavailable:
				r.Unavailable++
				r.noteError(o)
			case o.Status == 0:
				r.Indeterminate++
				r.noteError(o)
			default:
				r.Failed++
				r.noteError(o)
			}
		case "revoke":
			firstInvoke(revokeInvoked, o.Grant, o.Invoke)
			if o.OK() {
				r.Revokes++
				earliest(revokedAt, o.Grant, o)
			}
		case "downgrade":
			firstInvoke(downgradeInvoked, o.Subject, o.Invoke)
			if o.OK() {
				r.Downgrades++
				earliest(downgradedAt, o.Subject, o)
			}
		}
	}
	committed := map[int64]bool{}
	for _, w := range writes {
		r.Committed++
		committed[w.Op] = true
		act, ok := acts[w.Op]
		if ok && act.Status == 0 {
			r.IndeterminateCommitted++
		}
		switch {
		case !ok:
			r.Anomalies = append(r.Anomalies, fmt.Sprintf("write op %d has no act in the history", w.Op))
		case act.Grant != w.Grant || act.Subject != w.Subject:
			r.Anomalies = append(r.Anomalies, fmt.Sprintf("write op %d is for grant %s/%s, its act for %s/%s", w.Op, w.Grant, w.Subject, act.Grant, act.Subject))
		case w.AtNs < act.Invoke:
			r.Anomalies = append(r.Anomalies, fmt.Sprintf("write op %d read the clock before its act was sent", w.Op))
		}
		raced := false
		for _, by := range []struct {
			at      map[string]Op
			invoked map[string]int64
			key     string
		}{{revokedAt, revokeInvoked, w.Grant}, {downgradedAt, downgradeInvoked, w.Subject}} {
			if o, ok := by.at[by.key]; ok && w.AtNs > o.Return {
				r.Violations = append(r.Violations, Violation{Write: w, By: o, After: ms(w.AtNs - o.Return)})
			}
			if t, ok := by.invoked[by.key]; ok && w.AtNs > t {
				raced = true
			}
		}
		if raced {
			r.Raced++
		}
	}
	for id, o := range acts {
		if o.OK() && !committed[id] {
			r.Anomalies = append(r.Anomalies, fmt.Sprintf("act op %d was acknowledged but no write committed", id))
		}
	}
	return r
}

func (r *Report) noteError(o Op) {
	msg := fmt.Sprintf("status %d: %s", o.Status, o.Err)
	if len(r.Errors) < 5 && !slices.Contains(r.Errors, msg) {
		r.Errors = append(r.Errors, msg)
	}
}

func ms(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }
