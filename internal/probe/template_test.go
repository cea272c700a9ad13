package probe

import (
	"slices"
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	vars := Vars{"a": "1", "name": "x y", "token": "tok"}
	for _, tc := range []struct{ tmpl, want string }{
		{"", ""},
		{"plain", "plain"},
		{"{{a}}", "1"},
		{"{{ a }}-{{name}}", "1-x y"},
		{`{"n": "{{name}}"}`, `{"n": "x y"}`},
		{"Bearer {{token}}", "Bearer tok"},
		{"{ {a} }", "{ {a} }"},
	} {
		got, err := Render(tc.tmpl, vars)
		if err != nil || got != tc.want {
			t.Errorf("Render(%q) = %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	for _, tc := range []struct{ tmpl, want string }{
		{"/items/{{item_id}}", `unknown variable "item_id"`},
		{"x {{a", "unclosed {{"},
		{"{{}}", "bad variable name"},
		{"{{a b}}", "bad variable name"},
	} {
		_, err := Render(tc.tmpl, Vars{"a": "1"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Render(%q) err = %v, want %q", tc.tmpl, err, tc.want)
		}
	}
}

func TestVarNames(t *testing.T) {
	got := VarNames("http://h/{{ a }}/{{b}}?q={{a}}&t={{token}}")
	if want := []string{"a", "b", "token"}; !slices.Equal(got, want) {
		t.Errorf("VarNames = %q, want %q", got, want)
	}
	if got := VarNames("no vars"); len(got) != 0 {
		t.Errorf("VarNames = %q, want none", got)
	}
}

func TestRenderURL(t *testing.T) {
	vars := Vars{"id": "a/b c?", "q": "x&y=z #", "host": "127.0.0.1:8787", "ok": "42"}
	for _, tc := range []struct{ tmpl, want string }{
		{"http://127.0.0.1/items/{{ok}}", "http://127.0.0.1/items/42"},
		// A value is one path segment: '/' and '?' cannot change the path or start a query.
		{"http://127.0.0.1/items/{{id}}", "http://127.0.0.1/items/a%2Fb%20c%3F"},
		{"http://127.0.0.1/s?q={{q}}&id={{id}}", "http://127.0.0.1/s?q=x%26y%3Dz+%23&id=a%2Fb+c%3F"},
		{"http://{{host}}/items/{{ok}}", "http://127.0.0.1:8787/items/42"},
		{"http://127.0.0.1?q={{id}}", "http://127.0.0.1?q=a%2Fb+c%3F"},
	} {
		got, err := RenderURL(tc.tmpl, vars)
		if err != nil || got != tc.want {
			t.Errorf("RenderURL(%q) = %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
	for _, tmpl := range []string{"/relative/{{ok}}", "http://127.0.0.1/{{missing}}", "{{host}}/x"} {
		if got, err := RenderURL(tmpl, vars); err == nil {
			t.Errorf("RenderURL(%q) = %q, want an error", tmpl, got)
		}
	}
}
