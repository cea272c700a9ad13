package probe

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// request renders the probe into an HTTP request.
func (p *Probe) request(ctx context.Context, vars Vars) (*http.Request, error) {
	method := p.Method
	if method == "" {
		method = http.MethodGet
	}
	u, err := RenderURL(p.URL, vars)
	if err != nil {
		return nil, fmt.Errorf("probe %q: url %s: %w", p.Name, p.Path, err)
	}
	body, err := Render(p.Body, vars)
	if err != nil {
		return nil, fmt.Errorf("probe %q: body: %w", p.Name, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("probe %q: %w", p.Name, err)
	}
	if body == "" {
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	}
	hasAuth := false
	for _, name := range sortedKeys(p.Headers) {
		v, err := Render(p.Headers[name], vars)
		if err != nil {
			return nil, fmt.Errorf("probe %q: header %s: %w", p.Name, name, err)
		}
		if strings.EqualFold(name, "Host") {
			req.Host = v // net/http sends req.Host, not a Host header
			continue
		}
		if strings.EqualFold(name, "Authorization") {
			hasAuth = true
		}
		req.Header.Set(name, v)
	}
	if tok := vars["token"]; tok != "" && !hasAuth {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
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
