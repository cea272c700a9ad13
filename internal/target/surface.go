package target

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/redact"
	"github.com/tocsin/tocsin/internal/surface"
)

// Surface is the API's operations, read from the config's openapi: and har:, and what became of
// each: the probe that sends it, or why there is none. Checks that the config gives no probes pick
// theirs here (package check), and record which operations fed them and why.
type Surface struct {
	// Sources name each document read: "openapi: /abs/spec.yaml (OpenAPI 3.1.0)".
	Sources []string
	Docs    []*surface.Document
	Ops     []*Op
	Notes   []string
	// Auto is true when the config lists no checks: every check that fits the operations runs.
	Auto bool
	// Scopes are the scopes each identity's oauth2 source asks for; an identity missing here
	// may hold any (its source does not say).
	Scopes map[string][]string
	// Removes are the scopes each identity's downgrade takes away (downgrade.removes).
	Removes map[string][]string
	// Schemes are the security schemes identities answer (identities.NAME.scheme, or the oauth2
	// scheme whose flow has the identity's token_url); an identity missing here may answer any.
	Schemes map[string]string
	// SchemeWhy says, per identity in Schemes, how its scheme was known.
	SchemeWhy map[string]string
	// IdentityOrder lists the identities in config order: checks pick the first that fits.
	IdentityOrder []string
	// Unselected says, per check, why it runs on no operation (written by the check selection).
	Unselected map[string]string
	chosen     bool
}

// Op is one operation and what became of it.
type Op struct {
	*surface.Operation
	Doc *surface.Document
	// Probe names the probe that sends the operation: generated from it, or written in the config
	// for the same method and path. Empty when there is none; Reason says why.
	Probe       string
	HandWritten bool
	// How says where the generated probe's values come from (setup, verify, teardown).
	How       string
	Reason    string
	SingleUse bool
	// Creates is the operation whose setup creates the object the probe acts on ("" for none),
	// and OnIdentity says the probe writes to the calling identity itself (see surface.Generated).
	Creates    string
	OnIdentity bool
	// Uses are the checks that picked the operation, each with why.
	Uses []Use
}

// Use is one check's use of an operation.
type Use struct {
	Check, Why string
}

// Chosen reports whether the checks have picked their operations already, and marks it done.
func (s *Surface) Chosen() bool {
	was := s.chosen
	s.chosen = true
	return was
}

// loadSurfaces reads the config's openapi and har documents, makes probes of their operations and
// adds them to t.Probes. A spec given as a URL is fetched through the scan's client, so the origin
// allowlist, the budget and the response cap apply to it as to every request.
func (t *Target) loadSurfaces(ctx context.Context, cfg *config.Config) error {
	s := &Surface{Auto: len(cfg.Checks) == 0, Scopes: map[string][]string{}, Removes: map[string][]string{}, Unselected: map[string]string{}, IdentityOrder: cfg.IdentityNames()}
	for _, name := range cfg.IdentityNames() {
		id := cfg.Identities[name]
		if o := id.Token.OAuth2; o != nil && len(o.Scopes) > 0 {
			s.Scopes[name] = slices.Clone(o.Scopes)
		}
		if id.Downgrade != nil && len(id.Downgrade.Removes) > 0 {
			s.Removes[name] = slices.Clone(id.Downgrade.Removes)
		}
	}
	handWritten := map[string]string{}
	for _, p := range cfg.Probes {
		handWritten[p.Method+" "+surface.NormalizePath(StripOrigin(p.Path))] = p.Name
	}
	fields, surfaces := cfg.Surfaces()
	for i, src := range surfaces {
		field := fields[i]
		doc, err := t.readSurface(ctx, field, src)
		if err != nil {
			return err
		}
		s.Docs = append(s.Docs, doc)
		s.Sources = append(s.Sources, fmt.Sprintf("%s: %s (%s)", field, t.Redactor.String(redact.URL(src.Source)), doc.Source))
		s.Notes = append(s.Notes, doc.Notes...)
		destructive, err := refs(doc, field, "destructive", src.Destructive)
		if err != nil {
			return err
		}
		singleUse, err := refs(doc, field, "single_use", src.SingleUse)
		if err != nil {
			return err
		}
		gen := surface.Probes(doc, surface.Policy{
			Destructive: func(op *surface.Operation) bool { return destructive[op] || singleUse[op] },
			SingleUse:   func(op *surface.Operation) bool { return singleUse[op] },
			Vars:        cfg.Vars,
			HandWritten: func(method, path string) string { return handWritten[method+" "+surface.NormalizePath(path)] },
			Taken: func(name string) bool {
				_, taken := t.Probes[name]
				return taken
			},
		})
		base := cfg.Target.Origins[0]
		for _, g := range gen {
			op := &Op{Operation: g.Op, Doc: doc, Probe: g.HandWritten, HandWritten: g.HandWritten != "", How: g.How, Reason: g.Reason, SingleUse: singleUse[g.Op], Creates: g.Creates, OnIdentity: g.OnIdentity}
			if g.Probe != nil && g.OnIdentity {
				// What it changes is the calling identity: only one minted per experiment sends it.
				if g.Probe.As = perExperiment(cfg); g.Probe.As == "" {
					op.Reason = "a write on the calling identity itself, and no identity is minted per experiment to send it (hint: add an identity with fresh: per-experiment)"
					g.Probe = nil
				} else {
					op.How += ", as " + g.Probe.As
				}
			}
			if g.Probe != nil {
				if err := cfg.ValidateProbe(g.Probe); err != nil {
					// A probe tocsin made that its own rules refuse: say so rather than send it.
					op.Reason = "the probe made from it is not valid: " + t.Redactor.String(err.Error())
				} else {
					op.Probe = g.Probe.Name
					t.Probes[g.Probe.Name] = buildProbe(g.Probe, base)
				}
			}
			s.Ops = append(s.Ops, op)
		}
	}
	if err := s.matchSchemes(cfg); err != nil {
		return err
	}
	t.Surface = s
	return nil
}

// matchSchemes fills s.Schemes: the scheme each identity names, checked against the documents, or
// for an oauth2 identity the oauth2 scheme one of whose flows has its token_url (relative token
// URLs resolve against the document's first server, else the first origin).
func (s *Surface) matchSchemes(cfg *config.Config) error {
	s.Schemes, s.SchemeWhy = map[string]string{}, map[string]string{}
	var names []string
	for _, d := range s.Docs {
		for _, sc := range d.Schemes {
			if !slices.Contains(names, sc.Name) {
				names = append(names, sc.Name)
			}
		}
	}
	for _, name := range cfg.IdentityNames() {
		id := cfg.Identities[name]
		if id.Scheme != "" {
			if !slices.Contains(names, id.Scheme) {
				have := "it declares none"
				if len(names) > 0 {
					have = "it declares " + strings.Join(names, ", ")
				}
				return fmt.Errorf("target: identities.%s.scheme: no security scheme %q in the OpenAPI document (%s) (hint: name one of components.securitySchemes, or remove scheme)", name, id.Scheme, have)
			}
			s.Schemes[name], s.SchemeWhy[name] = id.Scheme, "identities."+name+".scheme"
			continue
		}
		o := id.Token.OAuth2
		if o == nil {
			continue
		}
		for _, d := range s.Docs {
			base := cfg.Target.Origins[0]
			if len(d.Servers) > 0 {
				base = d.Servers[0]
			}
			for _, sc := range d.Schemes {
				for _, f := range sc.Flows {
					if f.TokenURL != "" && sameURL(resolveRef(base, f.TokenURL), o.TokenURL) && s.Schemes[name] == "" {
						s.Schemes[name], s.SchemeWhy[name] = sc.Name, fmt.Sprintf("its token_url is the tokenUrl of the %s flow of scheme %s", f.Grant, sc.Name)
					}
				}
			}
		}
	}
	return nil
}

// resolveRef resolves ref against base; a ref that does not parse is returned as it is.
func resolveRef(base, ref string) string {
	b, err := url.Parse(base)
	if err != nil {
		return ref
	}
	r, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return b.ResolveReference(r).String()
}

// sameURL compares two URLs as an endpoint: scheme and host case-insensitively, paths without a
// trailing slash.
func sameURL(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host) && strings.TrimSuffix(ua.Path, "/") == strings.TrimSuffix(ub.Path, "/")
}

// perExperiment returns the first identity in the config minted per experiment, or "".
func perExperiment(cfg *config.Config) string {
	for _, name := range cfg.IdentityNames() {
		if cfg.Identities[name].Fresh == config.FreshPerExperiment {
			return name
		}
	}
	return ""
}

// readSurface reads one document, from a file or through the client.
func (t *Target) readSurface(ctx context.Context, field string, src *config.Surface) (*surface.Document, error) {
	var data []byte
	what := "an OpenAPI document"
	if field == "har" {
		what = "a HAR file"
	}
	if config.IsURL(src.Source) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.Source, nil)
		if err != nil {
			return nil, fmt.Errorf("target: %s: %w", field, err)
		}
		req.Header.Set("Accept", "application/json, application/yaml;q=0.9, */*;q=0.5")
		fetch := ctx
		if field == "openapi" {
			fetch = client.Description(ctx)
		}
		resp, err := t.Client.Do(fetch, req)
		shown := redact.URL(src.Source)
		switch {
		case err != nil:
			return nil, fmt.Errorf("target: %s: fetch %s: %w", field, shown, err)
		case resp.Status != http.StatusOK:
			return nil, fmt.Errorf("target: %s: fetch %s: %s (hint: the URL must serve the document to a request without credentials; or save it and give its path)", field, shown, resp.StatusText())
		case resp.Truncated:
			return nil, fmt.Errorf("target: %s: %s is larger than limits.max_response_bytes (hint: raise limits.max_response_bytes, at most %d MiB for a document, or save it and give its path)", field, shown, surface.MaxBytes>>20)
		}
		data = resp.Body
	} else {
		var err error
		if data, err = config.ReadFile(src.Source, what); err != nil {
			return nil, fmt.Errorf("target: %s: %w", field, err)
		}
	}
	var doc *surface.Document
	var err error
	if field == "har" {
		allowed := map[string]bool{}
		for _, o := range t.Origins {
			allowed[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
		}
		doc, err = surface.ParseHAR(data, func(origin string) bool { return allowed[strings.ToLower(origin)] })
	} else {
		doc, err = surface.ParseOpenAPI(data)
	}
	if err != nil {
		return nil, fmt.Errorf("target: %s: %s: %w (hint: the source must be %s)", field, t.Redactor.String(redact.URL(src.Source)), err, what)
	}
	return doc, nil
}

// refs resolves the operations a list names (by operationId or METHOD /path).
func refs(doc *surface.Document, field, list string, names []string) (map[*surface.Operation]bool, error) {
	out := map[*surface.Operation]bool{}
	for i, ref := range names {
		op := doc.Operation(strings.TrimSpace(ref))
		if op == nil {
			return nil, fmt.Errorf("target: %s.%s[%d]: no operation %q in the document (hint: name an operationId, or METHOD /path as the report's surface section lists them%s)", field, list, i, ref, nearest(doc, ref))
		}
		out[op] = true
	}
	return out, nil
}

// nearest suggests the operation whose ID or endpoint is closest to ref.
func nearest(doc *surface.Document, ref string) string {
	for _, op := range doc.Operations {
		for _, name := range []string{op.ID, op.Endpoint()} {
			if strings.EqualFold(name, ref) || strings.Contains(strings.ToLower(name), strings.ToLower(ref)) {
				return fmt.Sprintf("; did you mean %q?", name)
			}
		}
	}
	return ""
}

// StripOrigin returns the path of an absolute URL template, or path as it is.
func StripOrigin(path string) string {
	if i := strings.Index(path, "://"); i > 0 {
		rest := path[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return rest[j:]
		}
		return "/"
	}
	return path
}
