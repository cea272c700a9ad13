package check

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/redact"
	"github.com/tocsin/tocsin/internal/target"
)

// mintingSource hands out numbered tokens that expire after life.
type mintingSource struct {
	life  time.Duration
	mints int
}

func (s *mintingSource) Token(context.Context) (identity.Token, error) {
	s.mints++
	return identity.Token{Value: fmt.Sprintf("token-%d", s.mints), Expiry: time.Now().Add(s.life)}, nil
}
func (s *mintingSource) Fresh() bool  { return true }
func (s *mintingSource) Kind() string { return "test" }

// A token another identity's steps run with is kept for the experiment while it lives, and minted
// anew when it is about to expire: a long scan must not send requests with a token that expired
// mid-scan (issue 13 §4).
func TestChainsRefreshATokenAboutToExpire(t *testing.T) {
	for _, tc := range []struct {
		life  time.Duration
		mints int
	}{
		{time.Hour, 1},       // valid all along: one login for the three uses
		{2 * time.Second, 3}, // within the expiry margin at each use: a login each time
		{-time.Second, 3},    // already expired: never reused
	} {
		src := &mintingSource{life: tc.life}
		env := &Env{Target: &target.Target{
			Identities: map[string]*identity.Identity{"bob": {Name: "bob", Source: src}},
			Redactor:   &redact.Redactor{},
		}}
		c := newChains(env, "test", nil, nil, "")
		var last identity.Token
		for range 3 {
			tok, err := c.token(context.Background(), "bob")
			if err != nil {
				t.Fatal(err)
			}
			last = tok
		}
		if src.mints != tc.mints {
			t.Errorf("token life %s: %d logins for 3 uses, want %d", tc.life, src.mints, tc.mints)
		}
		if want := fmt.Sprintf("token-%d", tc.mints); last.Value != want {
			t.Errorf("token life %s: used %q, want the newest %q", tc.life, last.Value, want)
		}
	}
}
