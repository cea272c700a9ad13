package lab

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// A referral flow shaped like a real shop's, where a single-use discount coupon can be spent by
// several concurrent orders. Getting a coupon takes two accounts and two requests: one account
// creates a referral code (POST /referrals); another applies it (POST /apply-referral), which answers
// only {"message", "discount"}; the new coupon's id is found by listing the account's coupons
// (GET /discount-coupons) and picking the unused one. POST /orders {"coupon_id"} places a discounted
// order with it. The vulnerable flavour checks that the coupon is unused, pauses (a database round
// trip), creates the order and only then marks the coupon used, so orders that arrive together all
// get the discount. The fixed flavour marks the coupon used with a conditional update first and
// creates the order only if that changed it.
//
// Teardown: DELETE /discount-coupons/{id} removes a coupon and the orders placed with it, DELETE
// /referrals/{code} a referral code (each by its owner).

type referrals struct {
	atomic bool

	mu      sync.Mutex
	codes   map[string]string          // referral code -> owner
	coupons map[string]*discountCoupon // coupon id -> coupon
	orders  map[string]string          // order id -> coupon id
}

type discountCoupon struct {
	ID       string `json:"id"`
	Owner    string `json:"-"`
	Code     string `json:"referral_code"`
	Discount int    `json:"discount"`
	Used     bool   `json:"used"`
}

// maxReferralObjects bounds each store: the lab runs unattended in demos.
const maxReferralObjects = 100_000

func newReferrals(atomic bool) *referrals {
	return &referrals{atomic: atomic, codes: map[string]string{}, coupons: map[string]*discountCoupon{}, orders: map[string]string{}}
}

func (a *api) referralRoutes(handle func(pattern, scope string, h func(http.ResponseWriter, *http.Request, string))) {
	rf := a.referrals
	handle("POST /referrals", "items:write", rf.createCode)
	handle("DELETE /referrals/{code}", "items:write", rf.deleteCode)
	handle("POST /apply-referral", "items:write", rf.apply)
	handle("GET /discount-coupons", "items:read", rf.list)
	handle("DELETE /discount-coupons/{id}", "items:write", rf.deleteCoupon)
	handle("POST /orders", "items:write", rf.order)
}

func (rf *referrals) createCode(w http.ResponseWriter, _ *http.Request, subject string) {
	code := "R-" + strings.ToUpper(randomText()[:10])
	rf.mu.Lock()
	full := len(rf.codes) >= maxReferralObjects
	if !full {
		rf.codes[code] = subject
	}
	rf.mu.Unlock()
	if full {
		writeError(w, http.StatusServiceUnavailable, "too_many_referrals", "the lab holds too many referral codes; restart it")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"referral_code": code})
}

func (rf *referrals) deleteCode(w http.ResponseWriter, r *http.Request, subject string) {
	code := r.PathValue("code")
	rf.mu.Lock()
	owner, ok := rf.codes[code]
	if ok && owner == subject {
		delete(rf.codes, code)
	}
	rf.mu.Unlock()
	if !ok || owner != subject {
		writeError(w, http.StatusNotFound, "not_found", "no such referral code of yours")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apply gives the caller a new discount coupon for someone else's referral code.
func (rf *referrals) apply(w http.ResponseWriter, r *http.Request, subject string) {
	var body struct {
		Code string `json:"referral_code"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes)).Decode(&body); err != nil || body.Code == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", `body must be {"referral_code": "..."}`)
		return
	}
	rf.mu.Lock()
	owner, ok := rf.codes[body.Code]
	switch {
	case !ok:
		rf.mu.Unlock()
		writeError(w, http.StatusNotFound, "not_found", "no such referral code")
		return
	case owner == subject:
		rf.mu.Unlock()
		writeError(w, http.StatusBadRequest, "own_referral", "you cannot apply your own referral code")
		return
	case len(rf.coupons) >= maxReferralObjects:
		rf.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "too_many_coupons", "the lab holds too many coupons; restart it")
		return
	}
	c := &discountCoupon{ID: strings.ToLower(randomText()[:12]), Owner: subject, Code: body.Code, Discount: 10}
	rf.coupons[c.ID] = c
	rf.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"message": "referral applied", "discount": 10})
}

func (rf *referrals) list(w http.ResponseWriter, _ *http.Request, subject string) {
	rf.mu.Lock()
	out := []discountCoupon{}
	for _, c := range rf.coupons {
		if c.Owner == subject {
			out = append(out, *c)
		}
	}
	rf.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"coupons": out})
}

func (rf *referrals) deleteCoupon(w http.ResponseWriter, r *http.Request, subject string) {
	id := r.PathValue("id")
	rf.mu.Lock()
	c, ok := rf.coupons[id]
	if ok && c.Owner == subject {
		delete(rf.coupons, id)
		for order, coupon := range rf.orders {
			if coupon == id {
				delete(rf.orders, order)
			}
		}
	}
	rf.mu.Unlock()
	if !ok || c.Owner != subject {
		writeError(w, http.StatusNotFound, "not_found", "no such coupon of yours")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// order places an order with a discount coupon, once per coupon.
func (rf *referrals) order(w http.ResponseWriter, r *http.Request, subject string) {
	var body struct {
		CouponID string `json:"coupon_id"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes)).Decode(&body); err != nil || body.CouponID == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", `body must be {"coupon_id": "..."}`)
		return
	}
	rf.mu.Lock()
	c, ok := rf.coupons[body.CouponID]
	mine := ok && c.Owner == subject
	usable := mine && !c.Used
	if rf.atomic && usable {
		c.Used = true // the conditional update: only the request that changed it goes on
	}
	rf.mu.Unlock()
	switch {
	case !mine:
		writeError(w, http.StatusNotFound, "not_found", "no such coupon of yours")
		return
	case !usable:
		writeError(w, http.StatusBadRequest, "coupon_used", "the coupon was already used")
		return
	}
	if !rf.atomic && !pause(r, couponGap) {
		return // the flaw: the decision above is acted on after a pause, without looking again
	}
	order := strings.ToLower(randomText()[:12])
	rf.mu.Lock()
	full := len(rf.orders) >= maxReferralObjects
	if !full {
		rf.orders[order] = c.ID
	}
	rf.mu.Unlock()
	if full {
		writeError(w, http.StatusServiceUnavailable, "too_many_orders", "the lab holds too many orders; restart it")
		return
	}
	if !rf.atomic {
		// A second commit, as the API this flow copies makes one: the order is stored, then the
		// coupon marked used, each on its own (the fixed flavour marked it before the pause).
		rf.mu.Lock()
		c.Used = true
		rf.mu.Unlock()
	}
	writeJSON(w, http.StatusCreated, map[string]any{"order_id": order, "discount": c.Discount})
}

// count adds referral codes, coupons and orders by owner to out.
func (rf *referrals) count(out map[string]int) {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	for _, owner := range rf.codes {
		out[owner]++
	}
	for _, c := range rf.coupons {
		out[c.Owner]++
	}
	for _, coupon := range rf.orders {
		if c, ok := rf.coupons[coupon]; ok {
			out[c.Owner]++
		}
	}
}
