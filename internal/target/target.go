// Package target assembles what a scan acts on from a validated config: the HTTP client, the
// identities with their token sources and hooks, the probes, and which checks run with what.
package target

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
	"github.com/tocsin/tocsin/internal/redact"
)

// Target is everything a check needs.
type Target struct {
	Origins    []string
	Client     *client.Client
	Identities map[string]*identity.Identity
	// Probes by name. Each has explicit Accept and Reject lists: where the config left them out,
	// Build fills in the defaults, 200-299 and 401, 403.
	Probes map[string]*probe.Probe
	Vars   probe.Vars // the config's vars
	// Checks maps check ID to what it runs with; CheckOrder lists them in config order.
	Checks     map[string]Plan
	CheckOrder []string
	MaxWindow  time.Duration
	Precision  time.Duration // limits.precision
	Redactor   *redact.Redactor
	// Surface is the API's operations from the config's openapi: and har:; nil without them.
	Surface *Surface
}

// Plan is one check's configuration.
type Plan struct {
	Identity string // the identity under test
	Verifier string // a second, still-valid identity, "anonymous", or "" when the check needs none
	// Owner is, for the authz checks, the identity that owns the objects or holds the privilege
	// that Identity tries; "" for the others.
	Owner  string
	Probes []string // probe names
	// PerProbe, when the check's selection chose an identity per operation (auth/missing and the
	// jwt/* checks from a surface: each operation as an identity whose security scheme it needs),
	// gives each probe's identity under test and second identity; Identity and Verifier are then
	// the first probe's.
	PerProbe map[string]ProbePlan
}

// ProbePlan is who one probe of a check runs as.
type ProbePlan struct {
	Identity, Verifier string
}

// IdentityFor returns the identity the check tests probe as: the plan's for that probe, else the
// check's.
func (p Plan) IdentityFor(probe string) string {
	if pp, ok := p.PerProbe[probe]; ok {
		return pp.Identity
	}
	return p.Identity
}

// VerifierFor returns the second identity for probe: the plan's for that probe, else the check's.
func (p Plan) VerifierFor(probe string) string {
	if pp, ok := p.PerProbe[probe]; ok {
		return pp.Verifier
	}
	return p.Verifier
}

// Default statuses of a probe that does not list its own.
var (
	defaultAccept = statusRange(200, 299)
	defaultReject = []int{401, 403}
)

// Build turns a validated config into a Target. Every secret in the config is registered with r
// (a new Redactor when r is nil) before anything is built, so that no later error can show one.
// Build validates cfg again and returns its *config.Error when it is not valid.
func Build(ctx context.Context, cfg *config.Config, r *redact.Redactor) (*Target, error) {
	if cfg == nil {
		return nil, errors.New("target: no config")
	}
	if r == nil {
		r = &redact.Redactor{}
	}
	registerSecrets(cfg, r)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := client.New(client.Options{
		Origins:          slices.Clone(cfg.Target.Origins),
		Budget:           cfg.Limits.RequestBudget,
		Rate:             cfg.Limits.Rate,
		Timeout:          cfg.Limits.Timeout,
		MaxResponseBytes: cfg.Limits.MaxResponseBytes,
		Redactor:         r,
	})
	if err != nil {
		return nil, fmt.Errorf("target: HTTP client: %w (hint: check target.origins and limits)", err)
	}
	t := &Target{
		Origins:    slices.Clone(cfg.Target.Origins),
		Client:     c,
		Identities: make(map[string]*identity.Identity, len(cfg.Identities)),
		Probes:     make(map[string]*probe.Probe, len(cfg.Probes)),
		Vars:       probe.Vars(maps.Clone(cfg.Vars)),
		Checks:     make(map[string]Plan, len(cfg.Checks)),
		MaxWindow:  cfg.Limits.MaxWindow,
		Precision:  cfg.Limits.Precision,
		Redactor:   r,
	}
	if t.Vars == nil {
		t.Vars = probe.Vars{}
	}
	hc := c.HTTPClient()
	base := cfg.Target.Origins[0]
	for _, name := range cfg.IdentityNames() {
		id, err := buildIdentity(name, cfg.Identities[name], cfg.Dir(), base, t.Vars, c, hc, r)
		if err != nil {
			return nil, err
		}
		t.Identities[name] = id
	}
	for _, p := range cfg.Probes {
		t.Probes[p.Name] = buildProbe(p, base)
	}
	if cfg.HasSurface() {
		if err := t.loadSurfaces(ctx, cfg); err != nil {
			return nil, r.Error(err)
		}
	}
	for _, ch := range cfg.Checks {
		t.Checks[ch.ID] = Plan{Identity: ch.Identity, Verifier: ch.Verifier, Owner: ch.Owner, Probes: slices.Clone(ch.Probes)}
		t.CheckOrder = append(t.CheckOrder, ch.ID)
	}
	return t, nil
}

func buildIdentity(name string, ci *config.Identity, dir, base string, vars probe.Vars, c *client.Client, hc *http.Client, r *redact.Redactor) (*identity.Identity, error) {
	id := &identity.Identity{Name: name, PerExperiment: ci.Fresh == config.FreshPerExperiment, JWKSURL: ci.JWKSURL}
	switch src := ci.Token; {
	case src.HTTP != nil:
		id.Source = identity.NewLogin(buildSteps(src.HTTP, base), vars, c, r)
	case src.OAuth2 != nil:
		o := src.OAuth2
		id.Source = identity.NewOAuth2(identity.OAuth2{
			Grant:        o.Grant,
			TokenURL:     o.TokenURL,
			ClientID:     o.ClientID,
			ClientSecret: o.ClientSecret,
			AuthStyle:    o.AuthStyle,
			Username:     o.Username,
			Password:     o.Password,
			Scopes:       slices.Clone(o.Scopes),
		}, hc, r)
	case src.Command != nil:
		id.Source = identity.NewCommandIn(dir, slices.Clone(src.Command), r)
	case src.Static != "":
		id.Source = identity.NewStatic(src.Static, r)
	default:
		// Validate rules this out; say what to do should a caller skip it.
		return nil, fmt.Errorf("target: identity %q: no token source (hint: set token.static, token.command, token.oauth2 or token.http)", name)
	}
	if len(ci.Teardown) > 0 {
		id.Teardown = buildSteps(ci.Teardown, base)
		id.RecordMints()
	}
	id.Revoke = buildHook(ci.Revoke, dir, vars, c, r)
	id.Downgrade = buildHook(ci.Downgrade, dir, vars, c, r)
	id.Restore = buildHook(ci.Restore, dir, vars, c, r)
	return id, nil
}

// buildHook returns nil for an absent hook. Validate guarantees exactly one kind is set. vars are
// the config's vars, which an http hook's templates know (a command hook's do not); a command hook
// runs in dir, the config file's folder.
func buildHook(h *config.Hook, dir string, vars probe.Vars, c *client.Client, r *redact.Redactor) identity.Hook {
	switch {
	case h == nil:
		return nil
	case h.RFC7009 != nil:
		x := h.RFC7009
		return identity.NewRFC7009(identity.RFC7009{
			URL:           x.URL,
			ClientID:      x.ClientID,
			ClientSecret:  x.ClientSecret,
			AuthStyle:     x.AuthStyle,
			TokenTypeHint: x.TokenTypeHint,
		}, c, r)
	case h.HTTP != nil:
		x := h.HTTP
		return identity.NewHTTPHook(identity.HTTPHook{
			Method:  x.Method,
			URL:     x.URL,
			Headers: maps.Clone(x.Headers),
			Body:    x.Body,
			Expect:  slices.Clone(x.Expect),
			Vars:    vars,
		}, c, r)
	case h.Command != nil:
		return identity.NewCommandHookIn(dir, slices.Clone(h.Command), r)
	}
	return nil
}

// buildProbe converts a config probe with its chains, resolving relative paths against base (the
// first origin) and filling in the default statuses.
func buildProbe(p *config.Probe, base string) *probe.Probe {
	if p == nil {
		return nil
	}
	out := &probe.Probe{
		Name:        p.Name,
		Method:      p.Method,
		URL:         resolveURL(base, p.Path),
		Path:        p.Path,
		Headers:     maps.Clone(p.Headers),
		Body:        p.Body,
		Accept:      slices.Clone(p.Accept),
		Reject:      slices.Clone(p.Reject),
		Destructive: p.Destructive,
		Extract:     maps.Clone(p.Extract),
		As:          p.As,
		Copies:      p.Copies,
		Shared:      p.Shared,
		Privileged:  p.Privileged,
		List:        buildProbe(p.List, base),
		Assign:      maps.Clone(p.Assign),
		Setup:       buildSteps(p.Setup, base),
		Verify:      buildSteps(p.Verify, base),
		Teardown:    buildSteps(p.Teardown, base),
	}
	if len(out.Accept) == 0 {
		out.Accept = slices.Clone(defaultAccept)
	}
	if len(out.Reject) == 0 {
		out.Reject = slices.Clone(defaultReject)
	}
	return out
}

func buildSteps(steps []*config.Probe, base string) []*probe.Probe {
	var out []*probe.Probe
	for _, s := range steps {
		if s != nil {
			out = append(out, buildProbe(s, base))
		}
	}
	return out
}

// resolveURL returns path as an absolute URL template: a path starting with "/" is appended to origin,
// anything else (an absolute URL, as the config requires) is returned unchanged. Templates are left
// alone: resolving with net/url would escape their braces.
func resolveURL(origin, path string) string {
	if strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "//") {
		return strings.TrimSuffix(origin, "/") + path
	}
	return path
}

func statusRange(from, to int) []int {
	out := make([]int, 0, to-from+1)
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// registerSecrets hands r every secret written in cfg or taken from the environment, before anything
// is sent: what the scan learns later (tokens, cookies, extracted values, credential fields of the
// traffic) the token sources, probes and the client register as it comes.
func registerSecrets(cfg *config.Config, r *redact.Redactor) {
	for _, name := range cfg.IdentityNames() {
		id := cfg.Identities[name]
		if id == nil {
			continue
		}
		r.Add(redact.KindToken, id.Token.Static)
		if o := id.Token.OAuth2; o != nil {
			addClientSecret(r, o.ClientID, o.ClientSecret)
			r.Add("password", o.Password)
		}
		learnTemplates(r, id.Token.HTTP)
		learnTemplates(r, id.Teardown)
		for _, h := range []*config.Hook{id.Revoke, id.Downgrade, id.Restore} {
			if h == nil {
				continue
			}
			if x := h.RFC7009; x != nil {
				addClientSecret(r, x.ClientID, x.ClientSecret)
			}
			if x := h.HTTP; x != nil {
				r.LearnTemplate(x.URL, x.Headers, x.Body)
			}
		}
	}
	for _, p := range cfg.Probes {
		if p != nil {
			learnTemplates(r, p.WithSteps())
		}
	}
	for _, v := range cfg.EnvSecrets() {
		r.Add("env", v)
	}
}

// learnTemplates registers the secrets written in requests: credential-named query parameters,
// headers and body fields.
func learnTemplates(r *redact.Redactor, steps []*config.Probe) {
	for _, q := range steps {
		if q != nil {
			r.LearnTemplate(q.Path, q.Headers, q.Body)
		}
	}
}

// addClientSecret registers a client secret and the HTTP Basic credentials built from it, which are
// the form-encoded id and secret joined by ":" (RFC 6749 section 2.3.1), base64-encoded.
func addClientSecret(r *redact.Redactor, id, secret string) {
	if secret == "" {
		return
	}
	r.Add("client-secret", secret)
	for _, pair := range []string{id + ":" + secret, url.QueryEscape(id) + ":" + url.QueryEscape(secret)} {
		r.Add("client-secret", base64.StdEncoding.EncodeToString([]byte(pair)))
	}
}
