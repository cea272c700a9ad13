package lab

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// Single-use coupons, the lab's limit-overrun target (race/limit-overrun). POST /coupons creates one
// and returns its id; POST /coupons/{id}/redeem redeems it. The vulnerable flavour checks that the
// coupon is unused, pauses for couponGap (the database round trip of a real handler), then marks it
// used, so every redemption that arrives within the pause succeeds. The fixed flavour decides and
// marks in one step (an atomic conditional update, UPDATE ... WHERE used = false in SQL): exactly one
// redemption succeeds however many arrive together.

// couponGap is the vulnerable redeem's check-to-use pause. It is short, as a database round trip is,
// so the overrun shows only with synchronised requests, not with requests one after another.
const couponGap = 30 * time.Millisecond

// maxCoupons bounds the store: the lab runs unattended in demos.
const maxCoupons = 100_000

type coupons struct {
	atomic bool // the fixed flavour's conditional update

	mu     sync.Mutex
	used   map[string]bool   // by coupon id: redeemed or not
	owners map[string]string // by coupon id: who created it
}

// couponRoutes registers the coupon endpoints through handle, which authenticates and requires the
// scope like every API route. The flavour (atomic or not) was set by newAPI from the authorizer's.
func (a *api) couponRoutes(handle func(pattern, scope string, h func(http.ResponseWriter, *http.Request, string))) {
	c := a.coupons
	handle("POST /coupons", "items:write", c.create)
	handle("POST /coupons/{id}/redeem", "items:write", c.redeem)
	handle("DELETE /coupons/{id}", "items:write", c.remove)
}

// remove deletes a coupon its owner created, redeemed or not.
func (c *coupons) remove(w http.ResponseWriter, r *http.Request, subject string) {
	id := r.PathValue("id")
	c.mu.Lock()
	owner, ok := c.owners[id]
	if ok && owner == subject {
		delete(c.used, id)
		delete(c.owners, id)
	}
	c.mu.Unlock()
	if !ok || owner != subject {
		writeError(w, http.StatusNotFound, "not_found", "no such coupon of yours")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *coupons) create(w http.ResponseWriter, _ *http.Request, subject string) {
	id := strings.ToLower(randomText())
	c.mu.Lock()
	if len(c.used) >= maxCoupons {
		c.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "too_many_coupons", "the lab holds too many coupons; restart it")
		return
	}
	c.used[id] = false
	c.owners[id] = subject
	c.mu.Unlock()
	w.Header().Set("Location", "/coupons/"+id)
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "owner": subject, "value": 10})
}

func (c *coupons) redeem(w http.ResponseWriter, r *http.Request, _ string) {
	id := r.PathValue("id")
	if c.atomic {
		c.mu.Lock()
		used, ok := c.used[id]
		if ok && !used {
			c.used[id] = true
		}
		c.mu.Unlock()
		c.answer(w, id, ok, used)
		return
	}
	c.mu.Lock()
	used, ok := c.used[id]
	c.mu.Unlock()
	if ok && !used {
		// The flaw: the decision above is acted on after a pause, without looking again.
		if !pause(r, couponGap) {
			return
		}
		c.mu.Lock()
		c.used[id] = true
		c.mu.Unlock()
	}
	c.answer(w, id, ok, used)
}

// pause waits d, as a database round trip would between a check and its use; false when the
// client left meanwhile.
func pause(r *http.Request, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		return false
	}
}

func (c *coupons) answer(w http.ResponseWriter, id string, exists, used bool) {
	switch {
	case !exists:
		writeError(w, http.StatusNotFound, "not_found", "no such coupon")
	case used:
		writeError(w, http.StatusConflict, "already_redeemed", "the coupon was already redeemed")
	default:
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "redeemed": true, "credit": 10})
	}
}
