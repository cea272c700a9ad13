package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/redact"
)

// OAuth2 configures a token source that asks an OAuth 2.0 token endpoint for a new token each time.
type OAuth2 struct {
	Grant        string // "password" or "client_credentials"
	TokenURL     string
	ClientID     string
	ClientSecret string
	AuthStyle    string // "basic" (default): HTTP Basic; "post": in the form body
	Username     string // password grant only
	Password     string // password grant only
	Scopes       []string
}

type oauth2Source struct {
	o  OAuth2
	hc *http.Client
	r  *redact.Redactor
}

var _ Source = (*oauth2Source)(nil)

// NewOAuth2 returns a source that requests a new token from o.TokenURL on every call, through hc (from
// client.Client.HTTPClient, so the allowlist, budget and rate limit apply).
func NewOAuth2(o OAuth2, hc *http.Client, r *redact.Redactor) Source {
	r = orNew(r)
	r.Add("client-secret", o.ClientSecret)
	r.Add("password", o.Password)
	o.Scopes = append([]string(nil), o.Scopes...)
	return &oauth2Source{o: o, hc: hc, r: r}
}

func (s *oauth2Source) Kind() string { return "oauth2 " + s.o.Grant }

// Fresh is true: Token never caches, each call is a new grant.
func (s *oauth2Source) Fresh() bool { return true }

func (s *oauth2Source) Token(ctx context.Context) (Token, error) {
	where := fmt.Sprintf("oauth2 %s grant at %s", s.o.Grant, safeURL(s.o.TokenURL))
	if s.hc == nil {
		// x/oauth2 would fall back to http.DefaultClient, which knows nothing of the allowlist.
		return Token{}, fmt.Errorf("%s: no HTTP client", where)
	}
	style, err := authStyle(s.o.AuthStyle)
	if err != nil {
		return Token{}, fmt.Errorf("%s: %w", where, err)
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.hc)

	var tok *oauth2.Token
	switch s.o.Grant {
	case "password":
		cfg := oauth2.Config{
			ClientID:     s.o.ClientID,
			ClientSecret: s.o.ClientSecret,
			Endpoint:     oauth2.Endpoint{TokenURL: s.o.TokenURL, AuthStyle: style},
			Scopes:       s.o.Scopes,
		}
		tok, err = cfg.PasswordCredentialsToken(ctx, s.o.Username, s.o.Password)
	case "client_credentials":
		cfg := clientcredentials.Config{
			ClientID:     s.o.ClientID,
			ClientSecret: s.o.ClientSecret,
			TokenURL:     s.o.TokenURL,
			Scopes:       s.o.Scopes,
			AuthStyle:    style,
		}
		// Config.Token builds a new TokenSource per call, so nothing is cached between calls.
		tok, err = cfg.Token(ctx)
	default:
		return Token{}, fmt.Errorf("oauth2: unknown grant %q (want password or client_credentials)", s.o.Grant)
	}
	if err != nil {
		return Token{}, s.r.Error(s.explain(where, err))
	}
	s.r.Add("token", tok.AccessToken)
	s.r.Add("refresh-token", tok.RefreshToken)
	return Token{Value: tok.AccessToken, Expiry: tok.Expiry}, nil
}

// explain turns an x/oauth2 error into what failed and what to check.
func (s *oauth2Source) explain(where string, err error) error {
	var re *oauth2.RetrieveError
	switch {
	case errors.Is(err, client.ErrOrigin):
		return &hintedError{fmt.Sprintf("%s: %v (hint: list the token_url's origin under target.origins)", where, unwrapURLError(err)), err}
	case errors.Is(err, client.ErrBudget):
		return &hintedError{fmt.Sprintf("%s: %v (hint: raise limits.request_budget)", where, unwrapURLError(err)), err}
	case errors.As(err, &re):
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		what := fmt.Sprintf("status %d", status)
		if to := redirectTarget(re.Response); to != "" {
			what += ", a redirect to " + to + ", not followed: that origin is not in target.origins"
		}
		if re.ErrorCode != "" {
			what = re.ErrorCode
			if re.ErrorDescription != "" {
				what += " (" + excerpt(s.r, []byte(re.ErrorDescription)) + ")"
			}
		} else {
			what += ": " + excerpt(s.r, re.Body)
		}
		return &hintedError{fmt.Sprintf("%s: %s (hint: %s)", where, what, s.hint(re.ErrorCode, status)), err}
	}
	return &hintedError{fmt.Sprintf("%s: %v (hint: check token_url and that the identity provider is up)", where, unwrapURLError(err)), err}
}

// redirectTarget is where a redirect the client handed back (it leaves the allowed origins) pointed,
// without user info, query or fragment; "" for any other response.
func redirectTarget(resp *http.Response) string {
	if resp == nil || resp.StatusCode < 300 || resp.StatusCode > 399 {
		return ""
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return ""
	}
	if resp.Request != nil && resp.Request.URL != nil {
		if u, err := resp.Request.URL.Parse(loc); err == nil {
			loc = u.String()
		}
	}
	return redact.URL(loc)
}

func (s *oauth2Source) hint(code string, status int) string {
	switch code {
	case "invalid_client":
		return "check client_id, client_secret and auth_style (basic sends them in an Authorization header, post in the form)"
	case "invalid_grant":
		if s.o.Grant == "password" {
			return "check username/password and that the client may use the password grant"
		}
		return "check the client credentials and that the client may use the client_credentials grant"
	case "unauthorized_client":
		return "the client may not use the " + s.o.Grant + " grant; allow it at the identity provider"
	case "unsupported_grant_type":
		return "the identity provider does not offer the " + s.o.Grant + " grant at this token_url"
	case "invalid_scope":
		return "check scopes: the provider refused one of " + strings.Join(s.o.Scopes, " ")
	}
	switch status {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return "check token_url"
	case http.StatusUnauthorized:
		return "check client_id, client_secret and auth_style"
	}
	return "check token_url, the client credentials and the grant"
}

func authStyle(s string) (oauth2.AuthStyle, error) {
	switch s {
	case "", "basic":
		return oauth2.AuthStyleInHeader, nil
	case "post":
		return oauth2.AuthStyleInParams, nil
	}
	return 0, fmt.Errorf("unknown auth_style %q (want basic or post)", s)
}

// hintedError carries a message written for the user while keeping the cause for errors.Is.
type hintedError struct {
	msg string
	err error
}

func (e *hintedError) Error() string { return e.msg }
func (e *hintedError) Unwrap() error { return e.err }

// unwrapURLError drops net/http's `Post "URL":` prefix, which repeats the URL with its query.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// safeURL is a URL for messages, without the query, fragment or user info that may hold secrets.
func safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}
