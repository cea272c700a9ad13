package lab

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The vulnerable lab's ways of learning of a revocation, each with the window it must give. Windows
// are short and the bounds generous: these tests prove the code path, the staleness benchmarks
// measure it.

// untilRefused polls a read of item id with token every 10 ms until it is refused, and returns when
// the refused request was sent and when its answer came.
func (h *harness) untilRefused(t *testing.T, token, id string, limit time.Duration) (sent, answered time.Time) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		sent = time.Now()
		r := h.api("GET", "/items/"+id, token, "")
		if r.status == 401 {
			return sent, time.Now()
		}
		if r.status != 200 || time.Now().After(deadline) {
			t.Fatalf("read answered %d after %v; want 200 until refused with 401", r.status, time.Since(deadline.Add(-limit)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOfflineJWTAcceptsRevokedTokenUntilExp(t *testing.T) {
	h := startLab(t, Options{Flavor: Vulnerable, OfflineJWT: true, TokenLifetime: 2 * time.Second})
	token := h.token("alice", "")
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		t.Fatal(err)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		t.Fatalf("token exp: %v %v", exp, err)
	}
	id := h.createItem(token)
	if got := h.revoke(token); got != 200 {
		t.Fatalf("revoke: %d", got)
	}
	_, answered := h.untilRefused(t, token, id, 5*time.Second)
	if answered.Before(exp.Time) {
		t.Errorf("refused at %v, before the token's exp %v: offline verification must ignore revocation", answered, exp.Time)
	}
}

func TestDenylistSyncRefusesAtTheNextPull(t *testing.T) {
	const every = 300 * time.Millisecond
	h := startLab(t, Options{Flavor: Vulnerable, DenylistSync: every})
	token := h.token("alice", "")
	id := h.createItem(token)
	revoked := time.Now()
	if got := h.revoke(token); got != 200 {
		t.Fatalf("revoke: %d", got)
	}
	sent, _ := h.untilRefused(t, token, id, 5*time.Second)
	// The next pull comes within one period; the poll adds its 10 ms step and a loaded machine a
	// little more.
	if d := sent.Sub(revoked); d > every+150*time.Millisecond {
		t.Errorf("refused %v after the revocation; the list is pulled every %v", d, every)
	}
}

func TestPropagationDelayRefusesAfterTheDelay(t *testing.T) {
	const delay = 250 * time.Millisecond
	h := startLab(t, Options{Flavor: Vulnerable, PropagationDelay: delay})
	token := h.token("alice", "")
	id := h.createItem(token)
	revoked := time.Now() // the revocation is recorded after this
	if got := h.revoke(token); got != 200 {
		t.Fatalf("revoke: %d", got)
	}
	_, answered := h.untilRefused(t, token, id, 5*time.Second)
	if d := answered.Sub(revoked); d < delay {
		t.Errorf("refused %v after the revocation was sent; the store lags %v", d, delay)
	}
	if d := answered.Sub(revoked); d > delay+200*time.Millisecond {
		t.Errorf("refused %v after the revocation was sent; want about %v", d, delay)
	}
}

// With a slow introspection and the entry stamped on the answer, the window counts from when the
// answer arrived: later than the request.
func TestIntrospectionLatencyAndStampOnAnswer(t *testing.T) {
	const ttl, latency = 300 * time.Millisecond, 40 * time.Millisecond
	h := startLab(t, Options{Flavor: Vulnerable, IntrospectionTTL: ttl, PermissionTTL: -1,
		IntrospectionLatency: Latency{latency, latency}, StampOnAnswer: true})
	token := h.token("alice", "")
	start := time.Now()
	id := h.createItem(token) // the first use: pays the introspection, fills the cache
	if took := time.Since(start); took < latency {
		t.Errorf("the first use took %v; the introspection alone takes %v", took, latency)
	}
	if got := h.revoke(token); got != 200 {
		t.Fatalf("revoke: %d", got)
	}
	sent, _ := h.untilRefused(t, token, id, 5*time.Second)
	if d := sent.Sub(start); d < ttl+latency-5*time.Millisecond {
		t.Errorf("refused a request sent %v after the first use; the entry lives %v from the answer, %v after it", d, ttl, latency)
	}
}

func TestParseLatency(t *testing.T) {
	for in, want := range map[string]Latency{
		"20ms":       {20 * time.Millisecond, 20 * time.Millisecond},
		"5ms-60ms":   {5 * time.Millisecond, 60 * time.Millisecond},
		"0s":         {},
		" 1ms - 2ms": {time.Millisecond, 2 * time.Millisecond},
	} {
		got, err := ParseLatency(in)
		if err != nil || got != want {
			t.Errorf("ParseLatency(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "60ms-5ms", "-5ms", "1ms-1h"} {
		if _, err := ParseLatency(in); err == nil {
			t.Errorf("ParseLatency(%q) succeeded; want an error", in)
		}
	}
}

func TestRevocationModesExclusive(t *testing.T) {
	_, err := Start(t.Context(), "127.0.0.1:0", Options{Flavor: Vulnerable, OfflineJWT: true, DenylistSync: time.Second})
	if err == nil || !strings.Contains(err.Error(), "choose one") {
		t.Errorf("Start with two revocation modes = %v; want a refusal", err)
	}
}
