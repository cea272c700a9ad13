package lab

import (
	"strings"
	"testing"
)

// The routes between accounts, by hand: the vulnerable flavour lets bob read, change and delete
// alice's notes, list the accounts and moderate, and make himself an admin; the fixed one refuses
// each, and in both a shared note is read by everyone but changed only by its owner.
func TestAuthzRoutes(t *testing.T) {
	for _, flavor := range []string{Vulnerable, Fixed} {
		t.Run(flavor, func(t *testing.T) {
			vulnerable := flavor == Vulnerable
			h := startLab(t, Options{Flavor: flavor, ActionGap: -1})
			alice, bob := h.token("alice", ""), h.token("bob", "")
			seeded := h.lab.Resources()

			note := func(token, body string) string {
				t.Helper()
				r := h.api("POST", "/notes", token, body)
				if r.status != 201 {
					t.Fatalf("create note: %d %s", r.status, r.body)
				}
				return r.json(t)["id"].(string)
			}
			private := note(alice, `{"title": "mine", "body": "secret"}`)
			shared := note(alice, `{"title": "ours", "shared": true}`)
			want := func(what string, r response, status int) {
				t.Helper()
				if r.status != status {
					t.Errorf("%s: %d %s, want %d", what, r.status, r.body, status)
				}
			}
			allowed := map[bool]int{true: 200, false: 404}

			// Object level.
			want("alice reads her note", h.api("GET", "/notes/"+private, alice, ""), 200)
			r := h.api("GET", "/notes/"+private, bob, "")
			want("bob reads alice's note", r, allowed[vulnerable])
			if vulnerable && !strings.Contains(string(r.body), "secret") {
				t.Errorf("bob's read is not alice's note: %s", r.body)
			}
			want("bob reads the shared note", h.api("GET", "/notes/"+shared, bob, ""), 200)
			want("bob changes the shared note", h.api("PUT", "/notes/"+shared, bob, `{"title": "bob's now"}`), allowed[vulnerable])
			list := string(h.api("GET", "/notes", bob, "").body)
			if strings.Contains(list, private) || !strings.Contains(list, shared) {
				t.Errorf("bob's list %s: want the shared note and not alice's private one", list)
			}
			want("bob changes alice's note", h.api("PUT", "/notes/"+private, bob, `{"title": "changed"}`), allowed[vulnerable])
			want("bob deletes alice's note", h.api("DELETE", "/notes/"+private, bob, ""), map[bool]int{true: 204, false: 404}[vulnerable])

			// Function level: bob is a user, alice an admin.
			want("alice lists the accounts", h.api("GET", "/admin/accounts", alice, ""), 200)
			want("bob lists the accounts", h.api("GET", "/admin/accounts", bob, ""), map[bool]int{true: 200, false: 403}[vulnerable])
			want("bob moderates", h.api("DELETE", "/admin/notes/"+shared, bob, ""), map[bool]int{true: 204, false: 403}[vulnerable])
			want("no token", h.do("GET", "/admin/accounts", "", "", ""), 401)

			// Property level.
			r = h.api("PATCH", "/account", bob, `{"display_name": "Bob", "role": "admin"}`)
			want("bob sets his role", r, map[bool]int{true: 200, false: 400}[vulnerable])
			role := h.api("GET", "/account", bob, "").json(t)["role"]
			if wantRole := map[bool]string{true: "admin", false: "user"}[vulnerable]; role != wantRole {
				t.Errorf("bob's role after the PATCH: %v, want %s", role, wantRole)
			}
			want("bob sets his name", h.api("PATCH", "/account", bob, `{"display_name": "Bob"}`), 200)

			// What the test made, it removes: the lab is as it started.
			for _, id := range []string{private, shared} {
				h.api("DELETE", "/notes/"+id, alice, "")
			}
			if got := h.lab.Resources(); got["alice"] != seeded["alice"] || got["bob"] != seeded["bob"] {
				t.Errorf("resources %v after cleaning up, want %v", got, seeded)
			}
		})
	}
}

// A deleted account takes its profile and notes with it.
func TestDeletedAccountForgotten(t *testing.T) {
	h := startLab(t, Options{Flavor: Fixed})
	if r := h.do("POST", "/register", "", "application/json", `{"username": "carol", "password": "carol-password"}`); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	r := h.do("POST", "/login", "", "application/json", `{"username": "carol", "password": "carol-password"}`)
	carol := r.json(t)["token"].(string)
	h.api("POST", "/notes", carol, `{"title": "carol's"}`)
	h.api("PATCH", "/account", carol, `{"display_name": "Carol"}`)
	if got := h.lab.Resources()["carol"]; got != 1 {
		t.Fatalf("carol has %d notes, want 1", got)
	}
	if r := h.api("DELETE", "/account", carol, ""); r.status != 204 {
		t.Fatalf("delete account: %d %s", r.status, r.body)
	}
	if got := h.lab.Resources()["carol"]; got != 0 {
		t.Errorf("carol's notes outlived her account: %d", got)
	}
	if p := h.lab.api.accountsAPI.profile("carol"); p.DisplayName != "carol" {
		t.Errorf("carol's profile outlived her account: %+v", p)
	}
}
