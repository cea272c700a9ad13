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
