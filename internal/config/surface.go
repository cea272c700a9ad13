package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Surface is where the API's operations come from: an OpenAPI document (openapi:) or recorded
// traffic (har:), and what tocsin may do with them.
type Surface struct {
	// Source is a file (relative paths resolve from the config file's folder) or, for openapi, a
	// URL on an allowed origin, fetched through the scan's client.
	Source string
	// Destructive lists the write operations (POST, PUT, PATCH, DELETE) tocsin may send, as probes
	// or as the steps that create and remove what a probe acts on: by operationId or as
	// "METHOD /path" (the path as the spec writes it, with the server's base path). Reads are
	// always allowed.
	Destructive []string
	// SingleUse lists one-shot actions (redeem a coupon, claim a reward): race/limit-overrun sends
	// them. Listing one here allows it as destructive too.
	SingleUse []string
}

// Surfaces returns the configured surfaces, openapi first, with the field each is written under.
func (c *Config) Surfaces() (fields []string, surfaces []*Surface) {
	for _, s := range []struct {
		field string
		s     *Surface
	}{{"openapi", c.OpenAPI}, {"har", c.HAR}} {
		if s.s != nil {
			fields = append(fields, s.field)
			surfaces = append(surfaces, s.s)
		}
	}
	return fields, surfaces
}

// HasSurface reports whether the config names an OpenAPI document or a HAR file.
func (c *Config) HasSurface() bool { return c.OpenAPI != nil || c.HAR != nil }

// IsURL reports whether a surface source is a URL rather than a file.
func IsURL(source string) bool {
	return strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://")
}

// decodeSurface reads `openapi: spec.yaml` or `openapi: {source: ..., destructive: [...]}`.
func (d *decoder) decodeSurface(e entry) *Surface {
	s := &Surface{}
	n, ok := d.resolve(e.value, e.path, e.line)
	if !ok {
		return s
	}
	if _, _, isScalar := scalarText(n); isScalar {
		s.Source = d.str(e)
		return s
	}
	if _, isMap := n.(*ast.MappingNode); !isMap {
		if _, isKV := n.(*ast.MappingValueNode); !isKV {
			d.add(e.line, e.path, "must be a file or URL, or a mapping, not "+describe(n), "e.g. "+e.key+": openapi.yaml, or "+e.key+": {source: openapi.yaml, destructive: [deleteItem]}")
			return s
		}
	}
	for _, f := range d.mapping(e.value, e.path, e.line, surfaceFields) {
		switch f.key {
		case "source":
			s.Source = d.str(f)
		case "destructive":
			s.Destructive = d.strList(f, "[deleteItem, POST /items]")
		case "single_use":
			s.SingleUse = d.strList(f, "[redeemCoupon]")
		}
	}
	return s
}

// resolveSurfaces makes relative source files absolute from dir, the config file's folder.
func (c *Config) resolveSurfaces(dir string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	_, surfaces := c.Surfaces()
	for _, s := range surfaces {
		if s.Source != "" && !IsURL(s.Source) && !filepath.IsAbs(s.Source) {
			s.Source = filepath.Join(abs, s.Source)
		}
	}
}

// surfaces checks openapi and har.
func (v *validator) surfaces() {
	fields, surfaces := v.c.Surfaces()
	for i, s := range surfaces {
		field := fields[i]
		switch {
		case s.Source == "":
			v.add(field, "missing source", "the file (relative to this config's folder) or, for openapi, the URL of the document")
		case IsURL(s.Source) && field == "har":
			v.add(field+".source", "a HAR file is read from a file, not a URL", "save the recording and give its path")
		case IsURL(s.Source):
			v.checkURL(field+".source", s.Source, "https://api.example.com/openapi.json")
		case strings.Contains(s.Source, "://"):
			v.add(field+".source", "not an http(s) URL nor a file path", "give a file path, or an http(s) URL on an allowed origin")
		}
		for what, refs := range map[string][]string{"destructive": s.Destructive, "single_use": s.SingleUse} {
			for j, ref := range refs {
				if strings.TrimSpace(ref) == "" {
					v.add(fmt.Sprintf("%s.%s[%d]", field, what, j), "empty operation", "an operationId, or METHOD /path")
				}
			}
		}
	}
	for _, name := range v.c.IdentityNames() {
		if id := v.c.Identities[name]; id != nil && id.Downgrade != nil {
			for j, scope := range id.Downgrade.Removes {
				if strings.TrimSpace(scope) == "" {
					v.add(fmt.Sprintf("identities.%s.downgrade.removes[%d]", name, j), "empty scope", "the scope the downgrade takes away, e.g. reports:read")
				}
			}
		}
	}
}

// ValidateProbe checks a probe made outside the file (from an OpenAPI operation) as Validate checks
// the file's own, in this config's context: its variables, identities and origins. nil when it is
// sound.
func (c *Config) ValidateProbe(p *Probe) error {
	v := &validator{c: c, ps: problems{file: c.file}, origins: make(map[string]bool)}
	for _, raw := range c.Target.Origins {
		if canon, msg := parseOrigin(raw); msg == "" {
			v.origins[canon] = true
		}
	}
	v.oneProbe("probes."+p.Name, p)
	return v.ps.err()
}
