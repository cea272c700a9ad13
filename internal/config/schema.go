package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// decodeConfig fills cfg from the document body, field by field, in file order.
func (d *decoder) decodeConfig(cfg *Config, body ast.Node) {
	for _, e := range d.mapping(body, "", nodeLine(body), topFields) {
		switch e.key {
		case "version":
			if v, ok := d.integer(e); ok {
				cfg.Version = int(v)
			}
		case "target":
			for _, f := range d.mapping(e.value, e.path, e.line, targetFields) {
				cfg.Target.Origins = d.strList(f, "[https://api.example.com]")
			}
		case "limits":
			d.decodeLimits(&cfg.Limits, e)
		case "openapi":
			cfg.OpenAPI = d.decodeSurface(e)
		case "har":
			cfg.HAR = d.decodeSurface(e)
		case "identities":
			for _, f := range d.mapping(e.value, e.path, e.line, nil) {
				cfg.Identities[f.key] = d.decodeIdentity(f)
				cfg.IdentityOrder = append(cfg.IdentityOrder, f.key)
			}
		case "vars":
			cfg.Vars = d.strMap(e)
		case "probes":
			for _, f := range d.mapping(e.value, e.path, e.line, nil) {
				cfg.Probes = append(cfg.Probes, d.decodeProbe(f, f.key, probeFields))
			}
		case "checks":
			for _, f := range d.mapping(e.value, e.path, e.line, nil) {
				cfg.Checks = append(cfg.Checks, d.decodeCheck(f))
			}
		}
	}
}

func (d *decoder) decodeLimits(l *Limits, e entry) {
	for _, f := range d.mapping(e.value, e.path, e.line, limitFields) {
		switch f.key {
		case "request_budget":
			if v, ok := d.integer(f); ok {
				l.RequestBudget = int(v)
			}
		case "rate":
			if v, ok := d.number(f); ok {
				l.Rate = v
			}
		case "timeout":
			l.Timeout = d.duration(f)
		case "max_window":
			l.MaxWindow = d.duration(f)
		case "precision":
			l.Precision = d.duration(f)
		case "max_response_bytes":
			if v, ok := d.integer(f); ok {
				l.MaxResponseBytes = v
			}
		}
	}
}

func (d *decoder) decodeIdentity(e entry) *Identity {
	id := &Identity{Name: e.key}
	for _, f := range d.mapping(e.value, e.path, e.line, identityFields) {
		switch f.key {
		case "token":
			d.decodeTokenSource(&id.Token, f)
		case "fresh":
			id.Fresh = d.str(f)
		case "teardown":
			id.Teardown = d.decodeSteps(f, "identities."+e.key+".teardown", stepFields)
		case "jwks_url":
			id.JWKSURL = d.str(f)
		case "scheme":
			id.Scheme = d.str(f)
		case "revoke":
			id.Revoke = d.decodeHook(f, revokeFields)
		case "downgrade":
			id.Downgrade = d.decodeHook(f, downgradeFields)
		case "restore":
			id.Restore = d.decodeHook(f, changeFields)
		}
	}
	return id
}

func (d *decoder) decodeTokenSource(t *TokenSource, e entry) {
	for _, f := range d.mapping(e.value, e.path, e.line, tokenFields) {
		switch f.key {
		case "static":
			t.Static = d.str(f)
		case "command":
			t.Command = d.strList(f, `["./get-token.sh", "alice"]`)
		case "oauth2":
			t.OAuth2 = d.decodeOAuth2(f)
		case "http":
			t.HTTP = d.decodeSteps(f, "login", loginFields)
		}
	}
}

func (d *decoder) decodeOAuth2(e entry) *OAuth2 {
	o := &OAuth2{}
	for _, f := range d.mapping(e.value, e.path, e.line, oauth2Fields) {
		switch f.key {
		case "grant":
			o.Grant = d.str(f)
		case "token_url":
			o.TokenURL = d.str(f)
		case "client_id":
			o.ClientID = d.str(f)
		case "client_secret":
			o.ClientSecret = d.str(f)
		case "auth_style":
			o.AuthStyle = d.str(f)
		case "username":
			o.Username = d.str(f)
		case "password":
			o.Password = d.str(f)
		case "scopes":
			o.Scopes = d.strList(f, "[items:read, items:write]")
		}
	}
	return o
}

func (d *decoder) decodeHook(e entry, allowed []string) *Hook {
	h := &Hook{}
	for _, f := range d.mapping(e.value, e.path, e.line, allowed) {
		switch f.key {
		case "rfc7009":
			h.RFC7009 = d.decodeRFC7009(f)
		case "http":
			h.HTTP = d.decodeHTTPHook(f)
		case "command":
			h.Command = d.strList(f, `["./revoke.sh", "{{token}}"]`)
		case "removes":
			h.Removes = d.strList(f, "[reports:read]")
		}
	}
	return h
}

func (d *decoder) decodeRFC7009(e entry) *RFC7009 {
	r := &RFC7009{}
	for _, f := range d.mapping(e.value, e.path, e.line, rfc7009Fields) {
		switch f.key {
		case "url":
			r.URL = d.str(f)
		case "client_id":
			r.ClientID = d.str(f)
		case "client_secret":
			r.ClientSecret = d.str(f)
		case "auth_style":
			r.AuthStyle = d.str(f)
		case "token_type_hint":
			r.TokenTypeHint = d.str(f)
		}
	}
	return r
}

func (d *decoder) decodeHTTPHook(e entry) *HTTPHook {
	h := &HTTPHook{}
	for _, f := range d.mapping(e.value, e.path, e.line, httpHookFields) {
		switch f.key {
		case "method":
			h.Method = strings.ToUpper(d.str(f))
		case "url":
			h.URL = d.str(f)
		case "headers":
			h.Headers = d.strMap(f)
		case "body":
			h.Body = d.str(f)
		case "expect":
			h.Expect = d.intList(f, "[200, 204]")
		}
	}
	return h
}

// decodeProbe decodes a top-level probe, or (fields stepFields or loginFields) one step of a chain.
// Steps have no chains of their own, so the depth stays bounded even when an alias makes a probe
// its own setup.
func (d *decoder) decodeProbe(e entry, name string, fields []string) *Probe {
	p := &Probe{Name: name}
	for _, f := range d.mapping(e.value, e.path, e.line, fields) {
		switch f.key {
		case "method":
			p.Method = strings.ToUpper(d.str(f))
		case "path":
			p.Path = d.str(f)
		case "headers":
			p.Headers = d.strMap(f)
		case "body":
			p.Body = d.str(f)
		case "accept":
			p.Accept = d.intList(f, "[200]")
		case "reject":
			p.Reject = d.intList(f, "[401, 403]")
		case "destructive":
			p.Destructive = d.boolean(f)
		case "extract":
			p.Extract = d.strMap(f)
		case "as":
			p.As = d.str(f)
		case "copies":
			if v, ok := d.integer(f); ok {
				p.Copies = int(v)
			}
		case "shared":
			p.Shared = d.boolean(f)
		case "privileged":
			p.Privileged = d.boolean(f)
		case "list":
			p.List = d.decodeProbe(f, name+".list", listFields)
		case "assign":
			p.Assign = d.strMap(f)
		case "setup", "verify", "teardown":
			if !slices.Contains(fields, "destructive") { // a step: chains do not nest
				d.add(f.line, f.path, "a step cannot have its own "+f.key, "steps are plain requests; make it a step of the top-level probe's "+f.key)
				continue
			}
			steps := d.decodeSteps(f, name+"."+f.key, stepFields)
			switch f.key {
			case "setup":
				p.Setup = steps
			case "verify":
				p.Verify = steps
			default:
				p.Teardown = steps
			}
		}
	}
	return p
}

// decodeSteps decodes a chain: one step written as a mapping, or a list of steps. A one-step chain
// keeps the field path it always had (probes.x.setup.path), so messages about it read as before.
func (d *decoder) decodeSteps(e entry, name string, fields []string) []*Probe {
	n, ok := d.resolve(e.value, e.path, e.line)
	if !ok {
		return nil
	}
	if _, isList := n.(*ast.SequenceNode); !isList {
		return []*Probe{d.decodeProbe(e, name, fields)}
	}
	items := d.items(e, "[{method: POST, path: /items}]")
	steps := make([]*Probe, 0, len(items))
	for i, item := range items {
		steps = append(steps, d.decodeProbe(item, fmt.Sprintf("%s[%d]", name, i), fields))
	}
	return steps
}

func (d *decoder) decodeCheck(e entry) *Check {
	c := &Check{ID: e.key}
	for _, f := range d.mapping(e.value, e.path, e.line, checkFields) {
		switch f.key {
		case "identity":
			c.Identity = d.str(f)
		case "verifier":
			c.Verifier = d.str(f)
		case "owner":
			c.Owner = d.str(f)
		case "probes":
			c.Probes = d.strList(f, "[read-item]")
		}
	}
	return c
}
