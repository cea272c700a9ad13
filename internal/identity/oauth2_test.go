package identity

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/redact"
)

func oauth2Config(idp *fakeIdP, grant, style string) OAuth2 {
	return OAuth2{
		Grant: grant, TokenURL: idp.srv.URL + "/token", ClientID: clientID, ClientSecret: clientSecret,
		AuthStyle: style, Username: username, Password: password, Scopes: []string{"items:read", "items:write"},
	}
}

func TestOAuth2Grants(t *testing.T) {
	for _, grant := range []string{"password", "client_credentials"} {
		for _, style := range []string{"", "basic", "post"} {
			t.Run(grant+"/"+style, func(t *testing.T) {
				idp := newFakeIdP(t)
				c := newClientFor(t, idp.srv.URL)
				r := &redact.Redactor{}
				src := NewOAuth2(oauth2Config(idp, grant, style), c.HTTPClient(), r)
				if !src.Fresh() || src.Kind() != "oauth2 "+grant {
					t.Errorf("Fresh %v, Kind %q", src.Fresh(), src.Kind())
				}
				first, err := src.Token(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				second, err := src.Token(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				// Each experiment needs its own token: a second call is a second grant, not a cache hit.
				if first.Value == second.Value || c.Sent() != 2 {
					t.Errorf("tokens %q and %q after %d requests, want two different tokens from two requests", first.Value, second.Value, c.Sent())
				}
				if until := time.Until(first.Expiry); until < 4*time.Minute || until > 6*time.Minute {
					t.Errorf("expiry in %s, want about 5m", until)
				}
				wantStyle := style
				if wantStyle == "" {
					wantStyle = "basic"
				}
				if got := idp.lastStyle(); got != wantStyle {
					t.Errorf("client authenticated with %q, want %q", got, wantStyle)
				}
				if r.String(second.Value) == second.Value {
					t.Error("the token was not registered with the redactor")
				}
			})
		}
	}
}

func TestOAuth2Errors(t *testing.T) {
	idp := newFakeIdP(t)
	c := newClientFor(t, idp.srv.URL)
	for _, tc := range []struct {
		name   string
		change func(*OAuth2)
		want   []string
	}{
		{"invalid client", func(o *OAuth2) { o.ClientSecret = "wrong-secret-xyz" }, []string{
			"oauth2 password grant at " + idp.srv.URL + "/token: invalid_client", "hint: check client_id, client_secret and auth_style"}},
		{"invalid client post", func(o *OAuth2) { o.ClientSecret = "wrong-secret-xyz"; o.AuthStyle = "post" }, []string{"invalid_client"}},
		{"invalid grant", func(o *OAuth2) { o.Password = "wrong-password-xyz" }, []string{
			"invalid_grant", "hint: check username/password and that the client may use the password grant"}},
		{"invalid scope", func(o *OAuth2) { o.Scopes = []string{"admin"} }, []string{"invalid_scope", "hint: check scopes"}},
		{"bad token url", func(o *OAuth2) { o.TokenURL = idp.srv.URL + "/nope?x=1" }, []string{"status 404", "check token_url"}},
		{"unknown grant", func(o *OAuth2) { o.Grant = "implicit" }, []string{`unknown grant "implicit"`}},
		{"unknown style", func(o *OAuth2) { o.AuthStyle = "jwt" }, []string{`unknown auth_style "jwt"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := oauth2Config(idp, "password", "basic")
			tc.change(&o)
			r := secretsRegistered()
			_, err := NewOAuth2(o, c.HTTPClient(), r).Token(context.Background())
			if err == nil {
				t.Fatal("want an error")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			// The fake IdP echoes the submitted secret or password into its error description.
			for _, secret := range []string{clientSecret, password, o.ClientSecret, o.Password} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q leaks %q", msg, secret)
				}
			}
		})
	}
}

func TestOAuth2StaysOnAllowedOrigins(t *testing.T) {
	idp := newFakeIdP(t)
	elsewhere := newFakeIdP(t)
	c := newClientFor(t, elsewhere.srv.URL) // the IdP's own origin is not listed
	_, err := NewOAuth2(oauth2Config(idp, "client_credentials", "basic"), c.HTTPClient(), nil).Token(context.Background())
	if !errors.Is(err, client.ErrOrigin) || !strings.Contains(err.Error(), "target.origins") {
		t.Errorf("err = %v, want ErrOrigin with a hint", err)
	}
	if idp.lastStyle() != "" {
		t.Error("the token endpoint was contacted")
	}
	// Without an HTTP client x/oauth2 would use http.DefaultClient, outside every rule.
	if _, err := NewOAuth2(oauth2Config(idp, "password", "basic"), nil, nil).Token(context.Background()); err == nil {
		t.Error("nil HTTP client: want an error")
	}
}
