package lab

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// redeemTogether redeems coupon id n times at once (goroutines released together; the vulnerable
// pause is far longer than their spread) and counts the statuses.
func redeemTogether(t *testing.T, h *harness, token, id string, n int) map[int]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]int{}
		start  = make(chan struct{})
	)
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "POST", h.lab.URL()+"/coupons/"+id+"/redeem", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			<-start
			status := -1 // transport error
			if resp, err := http.DefaultClient.Do(req); err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			mu.Lock()
			counts[status]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return counts
}

func createCoupon(t *testing.T, h *harness, token string) string {
	t.Helper()
	r := h.api("POST", "/coupons", token, "")
	if r.status != http.StatusCreated {
		t.Fatalf("create coupon: %d %s", r.status, r.body)
	}
	return r.json(t)["id"].(string)
}

func TestCouponSequential(t *testing.T) {
	for _, flavor := range []string{Vulnerable, Fixed} {
		t.Run(flavor, func(t *testing.T) {
			h := startLab(t, Options{Flavor: flavor})
			tok := h.token("alice", allAliceScopes)
			id := createCoupon(t, h, tok)
			want := []int{200, 409, 409}
			for i, w := range want {
				if r := h.api("POST", "/coupons/"+id+"/redeem", tok, ""); r.status != w {
					t.Errorf("redeem %d: %d %s, want %d", i, r.status, r.body, w)
				}
			}
			if r := h.api("POST", "/coupons/nope/redeem", tok, ""); r.status != 404 {
				t.Errorf("unknown coupon: %d, want 404", r.status)
			}
			if r := h.api("POST", "/coupons", h.token("bob", "items:read"), ""); r.status != 403 {
				t.Errorf("create without items:write: %d, want 403", r.status)
			}
		})
	}
}

func TestCouponConcurrentRedeem(t *testing.T) {
	const n = 10
	for _, tc := range []struct {
		flavor   string
		wantMany bool
	}{{Vulnerable, true}, {Fixed, false}} {
		t.Run(tc.flavor, func(t *testing.T) {
			h := startLab(t, Options{Flavor: tc.flavor})
			tok := h.token("alice", allAliceScopes)
			counts := redeemTogether(t, h, tok, createCoupon(t, h, tok), n)
			if counts[200]+counts[409] != n {
				t.Fatalf("statuses %v, want only 200 and 409", counts)
			}
			if tc.wantMany && counts[200] < 2 {
				t.Errorf("vulnerable: %d of %d concurrent redemptions succeeded, want several", counts[200], n)
			}
			if !tc.wantMany && counts[200] != 1 {
				t.Errorf("fixed: %d of %d concurrent redemptions succeeded, want exactly 1", counts[200], n)
			}
		})
	}
}
