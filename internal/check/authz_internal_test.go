package check

import (
	"slices"
	"strings"
	"testing"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/probe"
)

func answer(status int, body string) *probe.Result {
	o := probe.Judge(status, nil, []int{401, 403, 404})
	return &probe.Result{Response: &client.Response{Status: status, Body: []byte(body)}, Outcome: o}
}

// What counts as the owner's object, and what does not: the answers an API may give another
// identity that asks for it.
func TestSameObject(t *testing.T) {
	const ownerBody = `{"id": "n1", "owner": "alice", "title": "tocsin-4f2a", "body": "hello", "shared": false}`
	owner := answer(200, ownerBody)
	own := answer(200, `{"id": "n2", "owner": "bob", "title": "tocsin-9c1d", "body": "hello", "shared": false}`)
	ids := []string{"n1"}
	for _, tc := range []struct {
		name      string
		answer    string
		own       *probe.Result
		fields    []string // nil: not proven
		undecided bool
	}{
		{"the owner's object", ownerBody, own, []string{"owner", "title"}, false},
		{"wrapped differently but the same fields", `{"title": "tocsin-4f2a", "owner": "alice", "id": "n1"}`, own, []string{"owner", "title"}, false},
		{"empty", `{}`, own, nil, false},
		{"an empty list", `{"notes": []}`, own, nil, false},
		{"the identity's own object", `{"id": "n2", "owner": "bob", "title": "tocsin-9c1d", "body": "hello", "shared": false}`, own, nil, false},
		{"the id echoed with the identity's own fields", `{"id": "n1", "owner": "bob", "title": "tocsin-9c1d", "body": "hello"}`, own, nil, false},
		{"the owner's fields without the id", `{"owner": "alice", "title": "tocsin-4f2a"}`, own, nil, false},
		{"an error with 200", `{"error": "not yours"}`, own, nil, false},
		{"not JSON", `<html>login</html>`, own, nil, false},
		{"without the identity's own view, booleans do not count", `{"id": "n1", "shared": false}`, nil, nil, false},
		{"without the identity's own view", ownerBody, nil, []string{"body", "owner", "title"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields, proven, why := sameObject(owner, answer(200, tc.answer), tc.own, ids)
			if proven != (tc.fields != nil) || !slices.Equal(fields, tc.fields) || (why != "") != tc.undecided {
				t.Errorf("fields %v proven %v why %q; want %v", fields, proven, why, tc.fields)
			}
		})
	}
	// Nothing tells the owner's object from the identity's: the id alone proves nothing.
	bare := answer(200, `{"id": "n1", "kind": "note"}`)
	if _, proven, why := sameObject(bare, bare, answer(200, `{"id": "n2", "kind": "note"}`), ids); proven || why == "" {
		t.Errorf("an answer that differs from the identity's own only by the id: proven %v, why %q; want undecided", proven, why)
	}
	// An object whose view has no id needs two of the owner's fields.
	noID := answer(200, `{"owner": "alice", "title": "tocsin-4f2a"}`)
	if f, proven, _ := sameObject(noID, noID, answer(200, `{"owner": "bob", "title": "x"}`), ids); !proven || len(f) != 2 {
		t.Errorf("no id, two fields: %v %v", f, proven)
	}
	// Bytes that are not JSON count only when equal to the owner's and unlike the identity's own.
	if _, proven, _ := sameObject(answer(200, "alice's file"), answer(200, "alice's file"), answer(200, "bob's file"), ids); !proven {
		t.Error("the owner's file, byte for byte: not proven")
	}
	if _, proven, _ := sameObject(answer(200, "same"), answer(200, "same"), answer(200, "same"), ids); proven {
		t.Error("a body everyone gets: proven")
	}
}

func TestEffectOf(t *testing.T) {
	before := answer(200, `{"id": "n1", "title": "a", "read_at": "1"}`)
	for _, tc := range []struct {
		name, after string
		status      int
		volatile    []string
		effect      string
		undecided   bool
	}{
		{"unchanged", `{"id": "n1", "title": "a", "read_at": "1"}`, 200, nil, "", false},
		{"changed", `{"id": "n1", "title": "b", "read_at": "1"}`, 200, nil, "changed: title", false},
		{"a field that changes by itself", `{"id": "n1", "title": "a", "read_at": "2"}`, 200, []string{"read_at"}, "", false},
		{"a new field", `{"id": "n1", "title": "a", "read_at": "1", "by": "bob"}`, 200, nil, "changed: by", false},
		{"gone", `{"error": "not_found"}`, 404, nil, "gone", false},
		{"a server error", `oops`, 500, nil, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			volatile := map[string]bool{}
			for _, v := range tc.volatile {
				volatile[v] = true
			}
			effect, undecided := effectOf(before, answer(tc.status, tc.after), volatile)
			if effect != tc.effect || undecided != tc.undecided {
				t.Errorf("effect %q undecided %v; want %q %v", effect, undecided, tc.effect, tc.undecided)
			}
		})
	}
	if v := volatileFields(answer(200, `{"a": 1, "t": 1}`), answer(200, `{"a": 1, "t": 2, "n": 0}`)); !v["t"] || !v["n"] || v["a"] {
		t.Errorf("volatile %v", v)
	}
}

func TestAssigned(t *testing.T) {
	base := answer(200, `{"user": {"role": "user", "balance": 5}, "admin": true}`)
	for _, tc := range []struct {
		back string
		a    assignment
		took bool
	}{
		{`{"user": {"role": "admin", "balance": 5}}`, assignment{"role", `"admin"`}, true},
		{`{"user": {"role": "user"}}`, assignment{"role", `"admin"`}, false},
		{`{"user": {"balance": 1e6}}`, assignment{"balance", `1000000`}, true},
		{`{"admin": true}`, assignment{"admin", `true`}, false}, // it had that value before
		{`{"scopes": ["admin"]}`, assignment{"scopes", `["admin"]`}, true},
		{`{"note": "role"}`, assignment{"role", `"admin"`}, false},
		{`not json`, assignment{"role", `"admin"`}, false},
	} {
		if got := assigned(base, answer(200, tc.back), tc.a); got != tc.took {
			t.Errorf("%s after %s: took %v, want %v", tc.a.name, tc.back, got, tc.took)
		}
	}
	// The nearest the top wins: {"role"} of the account, not of a nested membership.
	if v, ok := property([]byte(`{"team": {"role": "owner"}, "role": "user"}`), "role"); !ok || v != `"user"` {
		t.Errorf("property: %q %v", v, ok)
	}
}

func TestAssignments(t *testing.T) {
	p := &probe.Probe{Assign: map[string]string{"role": "superuser", "tier": `"gold"`, "credits": "5"}}
	got := assignments(p, "alice")
	want := map[string]string{"role": `"superuser"`, "is_admin": "true", "admin": "true", "scopes": `["admin"]`, "balance": "1000000",
		"owner": `"alice"`, "tier": `"gold"`, "credits": "5"}
	if len(got) != len(want) {
		t.Fatalf("assignments %v", got)
	}
	for _, a := range got {
		if want[a.name] != a.value {
			t.Errorf("%s = %s, want %s", a.name, a.value, want[a.name])
		}
	}
}

// An answer comes from the API under test: any bytes must flatten, within bounds, without panic.
func FuzzViewOf(f *testing.F) {
	for _, s := range []string{`{"a": {"b": [1, "x", null, true]}}`, `[[[[]]]]`, `{"":""}`, `"just a string"`, `{"a": 1e999999}`, strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, ok := viewOf(body)
		if ok && len(v) > maxViewLeaves {
			t.Fatalf("%d leaves", len(v))
		}
		property(body, "role")
		answerOf := answer(200, string(body))
		sameObject(answerOf, answerOf, nil, []string{"x"})
	})
}
