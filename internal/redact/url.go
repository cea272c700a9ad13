package redact

import "strings"

// URL returns raw without its user info, query and fragment, the parts of a URL that carry
// credentials (https://user:pw@host, ?api_key=..., #access_token=...): what of a URL may appear in a
// message or a report. It works on text, so that a URL that does not parse is cut the same way.
func URL(raw string) string {
	// User info first: a '?' or '#' in a malformed password must not leave half of it behind.
	if i := strings.Index(raw, "//"); i >= 0 {
		authority := raw[i+2:]
		if end := strings.IndexByte(authority, '/'); end >= 0 {
			authority = authority[:end]
		}
		if at := strings.LastIndexByte(authority, '@'); at >= 0 {
			raw = raw[:i+2] + raw[i+2+at+1:]
		}
	}
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	return raw
}

// TemplateURL shows a URL template (a probe's path, a hook's url) as written, {{var}} and all, for a
// name or a message: without user info or fragment, and of its query only the names and the values
// that are one {{variable}}, since a literal value there may be a credential (?api_key=...) that a
// report must not show and a finding's stable id must not depend on.
func TemplateURL(raw string) string {
	base, query, hasQuery := strings.Cut(raw, "?")
	base, _, _ = strings.Cut(base, "#")
	if i := strings.Index(base, "://"); i >= 0 {
		if at := strings.LastIndexByte(base[i+3:], '@'); at >= 0 && !strings.Contains(base[i+3:i+3+at], "/") {
			base = base[:i+3] + base[i+3+at+1:]
		}
	}
	if !hasQuery {
		return base
	}
	query, _, _ = strings.Cut(query, "#")
	parts := strings.Split(query, "&")
	for i, kv := range parts {
		k, v, _ := strings.Cut(kv, "=")
		if !(strings.HasPrefix(v, "{{") && strings.HasSuffix(v, "}}") && strings.Count(v, "{{") == 1) {
			v = "..."
		}
		parts[i] = k + "=" + v
	}
	return base + "?" + strings.Join(parts, "&")
}
