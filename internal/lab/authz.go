package lab

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/tocsin/tocsin/guard"
)

// Authorization between accounts, the lab's authz/* targets. Every route below needs a valid token
// (and a scope both alice and bob have); what differs between the flavours is whether the handler
// asks whose request it is.
//
//   - Notes are objects with an owner: POST /notes {"title", "body", "shared"} creates one, GET /notes
//     lists the caller's and the shared ones, GET, PUT and DELETE /notes/{id} read, change and remove
//     one. The vulnerable flavour loads a note by its id alone, so any account reads, changes or
//     deletes anyone's (BOLA, OWASP API1); the fixed one serves a note to its owner, and a shared
//     note to everyone for reading only. A shared note is meant to be read by every account in both
//     flavours: a scanner must never flag it.
//   - GET /admin/accounts (the accounts and their roles) and DELETE /admin/notes/{id} (moderation)
//     are for admins. The vulnerable flavour checks only that the token is valid (BFLA, API5); the
//     fixed one asks for the admin role.
//   - GET /account is the caller's profile {"username", "display_name", "role"}; PATCH /account
//     changes the display name. The vulnerable flavour decodes the body straight into the stored
//     profile, so a client can make itself an admin with {"role": "admin"} (mass assignment, API3);
//     the fixed one accepts display_name only and refuses any other property.
//
// alice is an admin, bob and every registered account a user. The lab starts with a private note of
// alice's, one of bob's and a shared one of alice's (the team handbook).

// maxNotes bounds the store: the lab runs unattended in demos.
const maxNotes = 100_000

// Roles in the lab's accounts.
const (
	roleAdmin = "admin"
	roleUser  = "user"
)

type note struct {
	ID     string `json:"id"`
	Owner  string `json:"owner"`
	Title  string `json:"title"`
	Body   string `json:"body"`
	Shared bool   `json:"shared"`
}

// profile is an account's stored profile: the model a mass assignment writes to.
type profile struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
}

// accountsAPI holds the notes and profiles. checked is the fixed flavour: ownership and roles are
// asked of the grant guard checked for the request.
type accountsAPI struct {
	checked bool
	// accounts lists the usernames the identity provider knows (the admin listing).
	accounts func() []string

	mu       sync.Mutex
	notes    map[string]note
	profiles map[string]profile // by username; an account without an entry has its default profile
}

func newAccountsAPI(checked bool) *accountsAPI {
	a := &accountsAPI{checked: checked, notes: map[string]note{}, profiles: map[string]profile{}}
	for _, n := range []note{
		{Owner: "alice", Title: "alice's diary", Body: "for alice only"},
		{Owner: "bob", Title: "bob's shopping list", Body: "for bob only"},
		{Owner: "alice", Title: "team handbook", Body: "for everyone", Shared: true},
	} {
		n.ID = strings.ToLower(randomText())
		a.notes[n.ID] = n
	}
	return a
}

func (a *api) authzRoutes(handle func(pattern, scope string, h func(http.ResponseWriter, *http.Request, string))) {
	x := a.accountsAPI
	handle("POST /notes", "items:write", x.createNote)
	handle("GET /notes", "items:read", x.listNotes)
	handle("GET /notes/{id}", "items:read", x.getNote)
	handle("PUT /notes/{id}", "items:write", x.updateNote)
	handle("DELETE /notes/{id}", "items:write", x.deleteNote)
	handle("GET /account", "items:read", x.getProfile)
	handle("PATCH /account", "items:write", x.updateProfile)
	handle("GET /admin/accounts", "items:read", x.listAccounts)
	handle("DELETE /admin/notes/{id}", "items:write", x.moderateNote)
}

// caller is whose request it is, for an ownership or a role check. The fixed flavour takes it from
// the grant that guard checked for this very request, so the handler decides on what was allowed,
// not on a copy made earlier; "" outside a guarded request refuses everything.
func (x *accountsAPI) caller(r *http.Request) string {
	gr, ok := guard.GrantFrom(r.Context())
	if !ok {
		return ""
	}
	return gr.Subject
}

// mayRead and mayChange are the fixed flavour's object-level checks; the vulnerable flavour has none.
func (x *accountsAPI) mayRead(r *http.Request, n note) bool {
	return !x.checked || n.Shared || n.Owner == x.caller(r)
}

func (x *accountsAPI) mayChange(r *http.Request, n note) bool {
	return !x.checked || n.Owner == x.caller(r)
}

// isAdmin is the fixed flavour's function-level check; the vulnerable flavour lets any valid token in.
func (x *accountsAPI) isAdmin(r *http.Request) bool {
	return !x.checked || x.profile(x.caller(r)).Role == roleAdmin
}

func (x *accountsAPI) createNote(w http.ResponseWriter, r *http.Request, subject string) {
	var body struct {
		Title  string `json:"title"`
		Body   string `json:"body"`
		Shared bool   `json:"shared"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes)).Decode(&body); err != nil || body.Title == "" || len(body.Title) > maxItemName {
		writeError(w, http.StatusBadRequest, "invalid_request", `body must be {"title": "...", "body": "...", "shared": false} with a title of 1 to 200 bytes`)
		return
	}
	n := note{ID: strings.ToLower(randomText()), Owner: subject, Title: body.Title, Body: body.Body, Shared: body.Shared}
	x.mu.Lock()
	full := len(x.notes) >= maxNotes
	if !full {
		x.notes[n.ID] = n
	}
	x.mu.Unlock()
	if full {
		writeError(w, http.StatusServiceUnavailable, "too_many_notes", "the lab holds too many notes; restart it")
		return
	}
	w.Header().Set("Location", "/notes/"+n.ID)
	writeJSON(w, http.StatusCreated, n)
}

// listNotes lists the caller's notes and the shared ones, in both flavours: what an account may see.
func (x *accountsAPI) listNotes(w http.ResponseWriter, _ *http.Request, subject string) {
	x.mu.Lock()
	list := []note{}
	for _, n := range x.notes {
		if n.Owner == subject || n.Shared {
			list = append(list, n)
		}
	}
	x.mu.Unlock()
	slices.SortFunc(list, func(a, b note) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, map[string]any{"notes": list})
}

// load finds a note by its id alone (Note.query.get(id)): the flaw, unless may says no.
func (x *accountsAPI) load(w http.ResponseWriter, r *http.Request, may func(*http.Request, note) bool) (note, bool) {
	x.mu.Lock()
	n, ok := x.notes[r.PathValue("id")]
	x.mu.Unlock()
	if !ok || !may(r, n) {
		// Someone else's note is "not found" too: its existence is not the caller's business.
		writeError(w, http.StatusNotFound, "not_found", "no such note")
		return note{}, false
	}
	return n, true
}

func (x *accountsAPI) getNote(w http.ResponseWriter, r *http.Request, _ string) {
	if n, ok := x.load(w, r, x.mayRead); ok {
		writeJSON(w, http.StatusOK, n)
	}
}

func (x *accountsAPI) updateNote(w http.ResponseWriter, r *http.Request, _ string) {
	var body struct {
		Title *string `json:"title"`
		Body  *string `json:"body"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes)).Decode(&body); err != nil || body.Title != nil && (*body.Title == "" || len(*body.Title) > maxItemName) {
		writeError(w, http.StatusBadRequest, "invalid_request", `body must be {"title": "...", "body": "..."} with a title of 1 to 200 bytes`)
		return
	}
	n, ok := x.load(w, r, x.mayChange)
	if !ok {
		return
	}
	if body.Title != nil {
		n.Title = *body.Title
	}
	if body.Body != nil {
		n.Body = *body.Body
	}
	x.mu.Lock()
	_, still := x.notes[n.ID]
	if still {
		x.notes[n.ID] = n
	}
	x.mu.Unlock()
	if !still {
		writeError(w, http.StatusNotFound, "not_found", "no such note")
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (x *accountsAPI) deleteNote(w http.ResponseWriter, r *http.Request, _ string) {
	x.remove(w, r, x.mayChange)
}

// moderateNote deletes any note, for an admin.
func (x *accountsAPI) moderateNote(w http.ResponseWriter, r *http.Request, _ string) {
	if !x.isAdmin(r) {
		writeError(w, http.StatusForbidden, "forbidden", "admins only")
		return
	}
	x.remove(w, r, func(*http.Request, note) bool { return true })
}

func (x *accountsAPI) remove(w http.ResponseWriter, r *http.Request, may func(*http.Request, note) bool) {
	n, ok := x.load(w, r, may)
	if !ok {
		return
	}
	x.mu.Lock()
	_, still := x.notes[n.ID]
	delete(x.notes, n.ID)
	x.mu.Unlock()
	if !still {
		writeError(w, http.StatusNotFound, "not_found", "no such note")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// profile returns username's stored profile, or its default one.
func (x *accountsAPI) profile(username string) profile {
	x.mu.Lock()
	defer x.mu.Unlock()
	if p, ok := x.profiles[username]; ok {
		return p
	}
	role := roleUser
	if username == "alice" {
		role = roleAdmin
	}
	return profile{Username: username, DisplayName: username, Role: role}
}

func (x *accountsAPI) getProfile(w http.ResponseWriter, _ *http.Request, subject string) {
	writeJSON(w, http.StatusOK, x.profile(subject))
}

func (x *accountsAPI) updateProfile(w http.ResponseWriter, r *http.Request, subject string) {
	p := x.profile(subject)
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes))
	if x.checked {
		// Only what a user may change about itself is read from the request.
		var body struct {
			DisplayName *string `json:"display_name"`
		}
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || body.DisplayName == nil {
			writeError(w, http.StatusBadRequest, "invalid_request", `body must be {"display_name": "..."}; no other property may be changed`)
			return
		}
		p.DisplayName = *body.DisplayName
	} else if err := dec.Decode(&p); err != nil {
		// The flaw: the body is decoded into the stored model itself, role included.
		writeError(w, http.StatusBadRequest, "invalid_request", `body must be {"display_name": "..."}`)
		return
	}
	if p.DisplayName == "" || len(p.DisplayName) > maxItemName {
		writeError(w, http.StatusBadRequest, "invalid_request", "display_name must have 1 to 200 bytes")
		return
	}
	p.Username = subject // the store is keyed by the account, whatever the body said
	x.mu.Lock()
	x.profiles[subject] = p
	x.mu.Unlock()
	writeJSON(w, http.StatusOK, p)
}

// forget drops what the lab holds for a deleted account: its profile and its notes.
func (x *accountsAPI) forget(username string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.profiles, username)
	for id, n := range x.notes {
		if n.Owner == username {
			delete(x.notes, id)
		}
	}
}

func (x *accountsAPI) listAccounts(w http.ResponseWriter, r *http.Request, _ string) {
	if !x.isAdmin(r) {
		writeError(w, http.StatusForbidden, "forbidden", "admins only")
		return
	}
	type account struct {
		Username string `json:"username"`
		Role     string `json:"role"`
	}
	list := []account{}
	for _, name := range x.accounts() {
		list = append(list, account{Username: name, Role: x.profile(name).Role})
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": list})
}

// count adds the notes by owner to out.
func (x *accountsAPI) count(out map[string]int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, n := range x.notes {
		out[n.Owner]++
	}
}
