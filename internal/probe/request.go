package probe

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tocsin/tocsin/internal/redact"
)

// Rendered is a probe's request with its templates filled in.
type Rendered struct {
	Method string
	URL    string
	// Header holds the probe's headers, and "Authorization: Bearer {{token}}" when vars has a token
	// and the probe sets no Authorization header. A Host header, if set, names the host to send.
	Header http.Header
	Body   string
}

// Render fills in the probe's templates with vars, as Do does before sending. An unknown variable is
// an error, not an empty string.
func (p *Probe) Render(vars Vars) (*Rendered, error) {
	r := &Rendered{Method: p.Method, Header: http.Header{}}
	if r.Method == "" {
		r.Method = http.MethodGet
	}
	var err error
	if r.URL, err = RenderURL(p.URL, vars); err != nil {
		return nil, fmt.Errorf("probe %q: url %s: %w", p.Name, p.Path, err)
	}
	if r.Body, err = Render(p.Body, vars); err != nil {
		return nil, fmt.Errorf("probe %q: body: %w", p.Name, err)
	}
	for _, name := range sortedKeys(p.Headers) {
		v, err := Render(p.Headers[name], vars)
		if err != nil {
			return nil, fmt.Errorf("probe %q: header %s: %w", p.Name, name, err)
		}
		r.Header.Set(name, v)
	}
	if tok := vars["token"]; tok != "" && r.Header.Get("Authorization") == "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r, nil
}

// ShownURL is the probe's URL rendered with vars as evidence shows it: a variable whose value is a
// secret of the run stands as its label exactly where the template put it, whatever its length and
// whatever text it is glued to (/reports/{{id}}.pdf), and the rest is redacted as any text.
func (p *Probe) ShownURL(vars Vars, red *redact.Redactor) (string, error) {
	shown := make(Vars, len(vars))
	labels := map[string]string{}
	for k, v := range vars {
		shown[k] = v
		if v != "" && red.Known(v) {
			// Letters and digits only, so that no escaping changes it.
			placeholder := fmt.Sprintf("tocsinSecretVar%dx", len(labels))
			labels[placeholder] = red.Label(v)
			shown[k] = placeholder
		}
	}
	u, err := RenderURL(p.URL, shown)
	if err != nil {
		return "", err
	}
	for placeholder, label := range labels {
		u = strings.ReplaceAll(u, placeholder, label)
	}
	return red.String(u), nil
}

// carriedToken is the bearer token the rendered request really carries: token (the {{token}} it
// was rendered with) when the request holds it, else the credential of its Authorization header,
// else "".
func (r *Rendered) carriedToken(token string) string {
	if token != "" && (strings.Contains(r.URL, token) || strings.Contains(r.Body, token)) {
		return token
	}
	for _, values := range r.Header {
		for _, v := range values {
			if token != "" && strings.Contains(v, token) {
				return token
			}
		}
	}
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	if _, cred, ok := strings.Cut(auth, " "); ok {
		return strings.TrimSpace(cred)
	}
	return auth
}

// request renders the probe into an HTTP request.
func (p *Probe) request(ctx context.Context, vars Vars) (*http.Request, *Rendered, error) {
	r, err := p.Render(vars)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, strings.NewReader(r.Body))
	if err != nil {
		return nil, nil, fmt.Errorf("probe %q: %w", p.Name, err)
	}
	if r.Body == "" {
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	}
	if host := r.Header.Get("Host"); host != "" {
		req.Host = host // net/http sends req.Host, not a Host header
		r.Header.Del("Host")
	}
	req.Header = r.Header.Clone()
	return req, r, nil
}

// Judge classifies a status. accept defaults to 200-299 and reject to 401 and 403; a status in both
// counts as accepted.
func Judge(status int, accept, reject []int) Outcome {
	if len(accept) == 0 {
		if status >= 200 && status <= 299 {
			return Accepted
		}
	} else if slices.Contains(accept, status) {
		return Accepted
	}
	if len(reject) == 0 {
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			return Rejected
		}
	} else if slices.Contains(reject, status) {
		return Rejected
	}
	return Inconclusive
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
