package probe

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// A template is text with {{name}} placeholders; spaces inside the braces are allowed ({{ name }}).
// Names are letters, digits, '_', '-' and '.'.

// VarNames returns the variable names tmpl refers to, each once, in order of first use, for config
// validation. It stops at a malformed placeholder; Render reports those. (It is not called Vars because
// that name is the map type.)
func VarNames(tmpl string) []string {
	var names []string
	seen := map[string]bool{}
	_ = scan(tmpl, func(string) {}, func(name string) error {
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
		return nil
	})
	return names
}

// Render replaces every {{name}} in tmpl with vars[name], as is. A variable missing from vars is an
// error naming it, never an empty string: a probe sent to /items/ instead of /items/42 would measure
// the wrong thing.
func Render(tmpl string, vars Vars) (string, error) {
	return render(tmpl, vars, nil)
}

// RenderURL renders a URL template: values substituted into the path are path-escaped (so a value
// holding '/' or '?' stays one path segment), into the query query-escaped, into the fragment
// fragment-escaped, and into the scheme and authority as is (the client's allowlist still decides
// where the request may go). The result must parse as an absolute URL.
func RenderURL(tmpl string, vars Vars) (string, error) {
	pathStart, queryStart, fragStart := urlParts(tmpl)
	parts := []struct {
		text   string
		escape func(string) string
	}{
		{tmpl[:pathStart], nil},
		{tmpl[pathStart:queryStart], url.PathEscape},
		{tmpl[queryStart:fragStart], url.QueryEscape},
		{tmpl[fragStart:], url.PathEscape},
	}
	var b strings.Builder
	for _, p := range parts {
		s, err := render(p.text, vars, p.escape)
		if err != nil {
			return "", err
		}
		b.WriteString(s)
	}
	out := b.String()
	u, err := url.Parse(out)
	if err != nil {
		return "", fmt.Errorf("rendered URL does not parse: %w", errors.Unwrap(err))
	}
	if !u.IsAbs() || u.Host == "" {
		return "", errors.New("rendered URL is not absolute (want scheme://host/path)")
	}
	return out, nil
}

// urlParts finds where the path, query and fragment of a URL template begin, looking only at the
// template's literal text so that a value cannot move the boundaries.
func urlParts(tmpl string) (pathStart, queryStart, fragStart int) {
	lit := maskPlaceholders(tmpl)
	pathStart = 0
	if i := strings.Index(lit, "://"); i >= 0 {
		rest := i + len("://")
		if j := strings.IndexAny(lit[rest:], "/?#"); j >= 0 {
			pathStart = rest + j
		} else {
			pathStart = len(lit)
		}
	}
	fragStart = len(lit)
	if i := strings.IndexByte(lit[pathStart:], '#'); i >= 0 {
		fragStart = pathStart + i
	}
	queryStart = fragStart
	if i := strings.IndexByte(lit[pathStart:fragStart], '?'); i >= 0 {
		queryStart = pathStart + i
	}
	return pathStart, queryStart, fragStart
}

// maskPlaceholders returns tmpl with each well-formed placeholder's bytes replaced by 'x', keeping
// offsets, so that "{{a?b}}" is never taken for the start of a query.
func maskPlaceholders(tmpl string) string {
	b := []byte(tmpl)
	for i := 0; i < len(b); {
		open := strings.Index(tmpl[i:], "{{")
		if open < 0 {
			break
		}
		open += i
		end := strings.Index(tmpl[open+2:], "}}")
		if end < 0 {
			break
		}
		end += open + 2 + 2
		for k := open; k < end; k++ {
			b[k] = 'x'
		}
		i = end
	}
	return string(b)
}

func render(tmpl string, vars Vars, escape func(string) string) (string, error) {
	var b strings.Builder
	err := scan(tmpl, func(lit string) { b.WriteString(lit) }, func(name string) error {
		v, ok := vars[name]
		if !ok {
			return fmt.Errorf("unknown variable %q", name)
		}
		if escape != nil {
			v = escape(v)
		}
		b.WriteString(v)
		return nil
	})
	if err != nil {
		return "", err
	}
	return b.String(), nil
}

// scan walks tmpl, handing literal text to lit and each placeholder's name to ref.
func scan(tmpl string, lit func(string), ref func(name string) error) error {
	for {
		open := strings.Index(tmpl, "{{")
		if open < 0 {
			lit(tmpl)
			return nil
		}
		lit(tmpl[:open])
		end := strings.Index(tmpl[open+2:], "}}")
		if end < 0 {
			return fmt.Errorf("unclosed {{ in %q", excerpt(tmpl[open:]))
		}
		name := strings.TrimSpace(tmpl[open+2 : open+2+end])
		if !validName(name) {
			return fmt.Errorf("bad variable name %q in {{...}} (want letters, digits, '_', '-', '.')", name)
		}
		if err := ref(name); err != nil {
			return err
		}
		tmpl = tmpl[open+2+end+2:]
	}
}

func validName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
		default:
			return false
		}
	}
	return true
}

func excerpt(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
