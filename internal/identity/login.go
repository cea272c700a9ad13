package identity

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/probe"
	"github.com/tocsin/tocsin/internal/redact"
)

// loginSource mints a token by sending a login request, or a chain of them (register an account,
// then log in), the way most APIs hand out tokens: POST /login {"username", "password"} answering
// {"token": ...}. The last step extracts "token", and optionally "expires_in" (seconds) and any
// other value, which become the token's Fields. Each call runs the chain again, with new unique
// values ({{uuid}}, {{random}}, {{seq}}): a chain that registers an account makes a new account per
// token.
type loginSource struct {
	steps []*probe.Probe
	vars  probe.Vars // the config's vars
	c     *client.Client
	r     *redact.Redactor
}

var _ Source = (*loginSource)(nil)

// NewLogin returns a source that runs steps (sent without a credential) for every token.
func NewLogin(steps []*probe.Probe, vars probe.Vars, c *client.Client, r *redact.Redactor) Source {
	return &loginSource{steps: steps, vars: maps.Clone(vars), c: c, r: orNew(r)}
}

func (s *loginSource) Kind() string { return "http login" }
func (s *loginSource) Fresh() bool  { return true }

func (s *loginSource) Token(ctx context.Context) (Token, error) {
	vars := maps.Clone(s.vars)
	if vars == nil {
		vars = probe.Vars{}
	}
	maps.Copy(vars, probe.Unique())
	anonymous := func(context.Context, string) (probe.Vars, error) { return probe.Vars{"token": ""}, nil }
	_, extracted, err := probe.RunChain(ctx, s.c, "login", s.steps, vars, anonymous, s.r)
	// Everything a login answers may be a credential: register what was extracted before any
	// message can quote it.
	s.r.Add("token", extracted["token"]) // first, so that its label says token
	for k, v := range extracted {
		if !redact.Descriptive(k) {
			s.r.Add("token-field", v)
		}
	}
	if err != nil {
		var se *probe.StepError
		if errors.As(err, &se) && se.Result != nil {
			for k, v := range se.Result.Extracted {
				if !redact.Descriptive(k) {
					s.r.Add("token-field", v)
				}
			}
		}
		return Token{}, s.r.Error(fmt.Errorf("http login: %w (hint: check the login request and the credentials; the response above says what the API refused)", err))
	}
	tok := Token{Value: extracted["token"], Fields: map[string]string{}}
	if tok.Value == "" {
		return Token{}, errors.New(`http login: the last step extracted no "token" (hint: add extract: {token: <selector of the token in the response>})`)
	}
	s.r.Add("token", tok.Value)
	for k, v := range extracted {
		switch k {
		case "token":
		case "expires_in":
			if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
				tok.Expiry = time.Now().Add(time.Duration(secs * float64(time.Second)))
			}
		default:
			tok.Fields[k] = v
		}
	}
	return tok, nil
}
