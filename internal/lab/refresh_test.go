package lab

import (
	"net/url"
	"testing"
)

// The fixed flavour's logins come with a refresh token that works once: rotation gives a new access
// token and a new refresh token, and replaying a spent refresh token revokes the whole family, so
// the access token it last produced stops working at once.
func TestFixedRefreshRotationAndReuse(t *testing.T) {
	h := startLab(t, Options{Flavor: Fixed})
	login := h.postForm("/oauth/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password"}})
	if login.status != 200 {
		t.Fatalf("login: %d %s", login.status, login.body)
	}
	first, _ := login.json(t)["refresh_token"].(string)
	if first == "" {
		t.Fatalf("login gave no refresh token: %s", login.body)
	}
	rotated := h.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first}})
	if rotated.status != 200 {
		t.Fatalf("refresh: %d %s", rotated.status, rotated.body)
	}
	body := rotated.json(t)
	access, _ := body["access_token"].(string)
	second, _ := body["refresh_token"].(string)
	if access == "" || second == "" || second == first {
		t.Fatalf("refresh answered %s: want a new access token and a new refresh token", rotated.body)
	}
	if r := h.api("GET", "/reports/summary", access, ""); r.status != 200 {
		t.Fatalf("the rotated access token is refused: %d %s", r.status, r.body)
	}

	// The spent refresh token, presented again, has been copied: the family dies.
	replay := h.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first}})
	if replay.status != 400 || replay.json(t)["error"] != "invalid_grant" {
		t.Fatalf("replayed refresh token: %d %s, want 400 invalid_grant", replay.status, replay.body)
	}
	if r := h.api("GET", "/reports/summary", access, ""); r.status != 401 {
		t.Errorf("after the reuse, the family's access token answers %d, want 401", r.status)
	}
	if r := h.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second}}); r.status != 400 {
		t.Errorf("the family's newest refresh token still works after the reuse: %d %s", r.status, r.body)
	}
}

func TestVulnerableHasNoRefreshTokens(t *testing.T) {
	h := startLab(t, Options{Flavor: Vulnerable})
	login := h.postForm("/oauth/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice-password"}})
	if _, ok := login.json(t)["refresh_token"]; ok {
		t.Errorf("the vulnerable lab issued a refresh token: %s", login.body)
	}
	r := h.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}})
	if r.status != 400 || r.json(t)["error"] != "unsupported_grant_type" {
		t.Errorf("refresh on the vulnerable lab: %d %s, want 400 unsupported_grant_type", r.status, r.body)
	}
}
