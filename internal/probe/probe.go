// Package probe turns a request template from the config into requests: {{var}} substitution, the
// bearer token, values extracted from JSON responses, and the verdict on whether the API let the
// request through.
package probe

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/redact"
)

// Outcome is the verdict on one response.
type Outcome int

const (
	Inconclusive Outcome = iota // neither accepted nor rejected: 5xx, 429, unexpected status
	Accepted                    // status in Accept
	Rejected                    // status in Reject
)

func (o Outcome) String() string {
	switch o {
	case Accepted:
		return "accepted"
	case Rejected:
		return "rejected"
	}
	return "inconclusive"
}

// Vars are template variables. "token" is the bearer token of the identity sending the probe.
type Vars map[string]string

// Probe is a request template. Build it through the target package, which validates it.
type Probe struct {
	Name        string
	Method      string
	URL         string // absolute URL template: the config's path resolved against the first origin
	Path        string // the path template as written in the config, for display
	Headers     map[string]string
	Body        string
	Accept      []int // default: 200-299
	Reject      []int // default: 401, 403
	Destructive bool
	Extract     map[string]string // variable -> selector into the JSON response body (see Extract)
	// As names the identity a step of a chain runs as: "" for the chain's default, Anonymous for
	// no credential, or an identity's name. Top-level probes run as the identity under test.
	As string
	// Copies is how many synchronised copies a race sends (0: the check's default).
	Copies int
	// Shared, Privileged, List and Assign describe the probe for the authz checks (see
	// config.Probe): the object is seen by every identity; the operation needs a privilege; how an
	// identity lists the objects it may see; extra properties to assign.
	Shared, Privileged bool
	List               *Probe
	Assign             map[string]string
	// The chains around the probe, each a list of steps run in order, each step's extracts feeding
	// the later steps and the probe: Setup creates the resource (as the identity under test by
	// default), Verify reads it back (as the check's verifier), Teardown removes it (as a still-valid
	// identity).
	Setup, Verify, Teardown []*Probe
}

// Anonymous is the As of a step sent with no credential.
const Anonymous = "anonymous"

// Endpoint names the probe in reports: method and path template, e.g. "GET /items/{{item_id}}", with
// the literal values of its query left out ("GET /reports?api_key=..."): one may be a credential,
// and a finding's stable id, made from the endpoint, must not change when a key is rotated.
func (p *Probe) Endpoint() string { return p.Method + " " + redact.TemplateURL(p.Path) }

// WithoutCredential returns a copy of p that carries no credential: no header that names the
// {{token}} variable (nor any Authorization header), so that with no token in its vars it is sent
// anonymously. Controls use it to show that the API refuses a request without authentication.
func (p *Probe) WithoutCredential() *Probe {
	q := *p
	q.Headers = make(map[string]string, len(p.Headers))
	for k, v := range p.Headers {
		if strings.EqualFold(k, "Authorization") || slices.Contains(VarNames(v), "token") {
			continue
		}
		q.Headers[k] = v
	}
	return &q
}

// Result is one sent probe.
type Result struct {
	Method string
	// URL is the rendered URL as evidence shows it (ShownURL): with the client's redactor, every
	// variable that is a secret of the run stands as its label where the template put it.
	URL string
	// Token is the bearer token the request really carried: the {{token}} it was rendered with,
	// where the request holds it, else the credential of its Authorization header; empty when it
	// carried none.
	Token     string
	Response  *client.Response
	Outcome   Outcome
	Extracted Vars // values named by Extract, when Outcome is Accepted
}

// Do renders the probe with vars and sends it through c. It adds "Authorization: Bearer {{token}}"
// when vars has a token and the probe sets no Authorization header. An unknown variable is an error,
// not an empty string. An Extract path missing from an accepted response is an error.
//
// Do sends this probe only: running Setup first and Verify after is the caller's business, since
// only the check knows when (and as which identity) each belongs. When an accepted response lacks an
// Extract path, Do returns the Result, for evidence, together with the error.
func (p *Probe) Do(ctx context.Context, c *client.Client, vars Vars) (*Result, error) {
	req, rendered, err := p.request(ctx, vars)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("probe %q: %w", p.Name, err)
	}
	res := &Result{
		Method:   req.Method,
		URL:      req.URL.String(),
		Token:    rendered.carriedToken(vars["token"]),
		Response: resp,
		Outcome:  Judge(resp.Status, p.Accept, p.Reject),
	}
	if red := c.Redactor(); red != nil {
		if shown, err := p.ShownURL(vars, red); err == nil {
			res.URL = shown
		}
	}
	if resp.Redirect != "" && res.Outcome == Inconclusive {
		// Asking again would be redirected again: say where to, and what to change.
		return res, fmt.Errorf("probe %q: %s %s answered %s (hint: if that origin is part of the API, add it to target.origins; if the redirect is how the API refuses (a login page), add %d to the probe's reject statuses)",
			p.Name, req.Method, redact.URL(req.URL.String()), resp.StatusText(), resp.Status)
	}
	if res.Outcome != Accepted || len(p.Extract) == 0 {
		return res, nil
	}
	res.Extracted = make(Vars, len(p.Extract))
	// Sorted so that, of several missing paths, the same one is reported every run.
	for _, name := range sortedKeys(p.Extract) {
		// A selector may name a variable, to pick the element that matches it: #(code=="{{code}}").
		sel, err := Render(p.Extract[name], vars)
		if err != nil {
			return res, fmt.Errorf("probe %q: extract %s: %w", p.Name, name, err)
		}
		v, err := Extract(resp.Body, sel)
		if err != nil {
			if resp.Truncated {
				err = fmt.Errorf("%w (the response was cut at the max_response_bytes limit)", err)
			}
			return res, fmt.Errorf("probe %q: extract %s from the %d response: %w", p.Name, name, resp.Status, err)
		}
		res.Extracted[name] = v
		if !redact.Descriptive(name) { // an expires_in of 2 is no secret, and would hide every "2"
			c.Redactor().Add("extract", v)
		}
	}
	return res, nil
}
