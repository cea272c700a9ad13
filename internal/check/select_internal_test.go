package check

import (
	"testing"

	"github.com/tocsin/tocsin/internal/surface"
	"github.com/tocsin/tocsin/internal/target"
)

// An identity that answers a scheme may do an operation only through an alternative that needs
// that scheme alone (and, when its scopes are known, no scope it lacks); one whose scheme and scopes
// are unknown may do anything; a public operation anyone.
func TestCoversBySchemeAndScopes(t *testing.T) {
	s := &target.Surface{
		Scopes:  map[string][]string{"alice": {"items:read"}},
		Schemes: map[string]string{"alice": "oauth2", "legacy": "legacy"},
	}
	alt := func(scheme string, scopes ...string) surface.Requirement {
		return surface.Requirement{{Scheme: scheme, Scopes: scopes}}
	}
	op := func(reqs ...surface.Requirement) *surface.Operation { return &surface.Operation{Security: reqs} }
	for _, tc := range []struct {
		name, who string
		op        *surface.Operation
		want      bool
	}{
		{"its scheme, a scope it has", "alice", op(alt("oauth2", "items:read")), true},
		{"its scheme, a scope it lacks", "alice", op(alt("oauth2", "items:write")), false},
		{"another scheme only", "alice", op(alt("legacy")), false},
		{"another scheme or its own", "alice", op(alt("legacy"), alt("oauth2")), true},
		{"its scheme and another together", "alice", op(surface.Requirement{{Scheme: "oauth2"}, {Scheme: "apiKey"}}), false},
		{"a scheme with no scopes, scopes unknown", "legacy", op(alt("legacy")), true},
		{"the identity provider's scheme, for legacy", "legacy", op(alt("oauth2", "items:read")), false},
		{"public", "legacy", op(), true},
		{"unknown scheme and scopes", "newcomer", op(alt("legacy")), true},
	} {
		if got := covers(s, tc.who, tc.op); got != tc.want {
			t.Errorf("%s: covers(%s) = %v, want %v", tc.name, tc.who, got, tc.want)
		}
	}
}
