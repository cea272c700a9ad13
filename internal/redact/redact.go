// Package redact keeps secrets out of everything tocsin writes. Every secret of the run (tokens,
// passwords, client secrets, ${VAR} values, cookies, extracted values, credential fields of the
// requests and responses: DESIGN.md, "Secrets of the run") is registered here the moment it is
// learned, whatever its length; anything bound for a report, a log line or an error message passes
// through String first.
//
// A secret of 8 bytes or more is replaced wherever it occurs. A shorter one (a 3-character password,
// an id "42") would wreck a report if every occurrence went, so it is replaced where it stands as a
// whole value: not glued to a letter, a digit or one of ._~+%- on either side, and, under 4 bytes,
// only right after "=" or ":" (spaces allowed between), a quote or a "/": a query or form value, a
// JSON or header value, a path segment. Every secret is also registered in the forms it takes on the
// wire (query-, path- and JSON-escaped), all under one label.
package redact

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

const (
	// anywhereLen is the length from which a secret is replaced wherever it occurs, even inside
	// other text: shorter runs of text match by chance too often.
	anywhereLen = 8
	// boundLen is the length under which a secret must also follow "=", ":", a quote or a "/" to be
	// replaced: one or three characters standing alone in prose ("pass 1 of 3") are not a value.
	boundLen = 4
)

// KindToken is the kind of a bearer token. A token's label always says so, even when the value was
// first learned as something else (a login's response field), because evidence names the token each
// request carried by its label.
const KindToken = "token"

// Redactor replaces registered secrets with a short label. The zero value is ready to use and safe for
// concurrent use; a nil *Redactor knows no secret and changes nothing.
type Redactor struct {
	mu        sync.RWMutex
	originals map[string]bool   // the secrets as registered
	labels    map[string]string // every form of every secret -> its label
	// Built from labels when String next needs them, and never written after: String reads them
	// without the lock held.
	built       bool
	replacer    *strings.Replacer // forms of anywhereLen bytes or more
	short       []string          // shorter forms, longest first
	shortLabels map[string]string // their labels
}

// Add registers a secret of the given kind ("token", "password", "env", "extract", ...). Its label is
// "[kind:fingerprint]"; registering it again keeps the first kind, except that KindToken replaces
// any other. Empty values, and true, false and null (which are no one's secret), are ignored.
func (r *Redactor) Add(kind, secret string) {
	if r == nil || secret == "" || secret == "true" || secret == "false" || secret == "null" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.labels == nil {
		r.labels = make(map[string]string)
		r.originals = make(map[string]bool)
	}
	if old, ok := r.labels[secret]; ok && (kind != KindToken || strings.HasPrefix(old, "["+KindToken+":")) {
		return
	}
	label := "[" + kind + ":" + Fingerprint(secret) + "]"
	r.originals[secret] = true
	for _, form := range wireForms(secret) {
		if old, ok := r.labels[form]; ok && form != secret && strings.HasPrefix(old, "["+KindToken+":") {
			continue // an encoded form that is itself a token keeps its own label
		}
		r.labels[form] = label
	}
	r.built = false
}

// wireForms are the ways a secret appears in what tocsin sends and reads: as is, query- and
// path-escaped, and escaped in a JSON string (with and without HTML escaping).
func wireForms(s string) []string {
	forms := []string{s, url.QueryEscape(s), url.PathEscape(s)}
	if b, err := json.Marshal(s); err == nil {
		forms = append(forms, string(b[1:len(b)-1]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(s) == nil {
		b := bytes.TrimSpace(buf.Bytes())
		forms = append(forms, string(b[1:len(b)-1]))
	}
	out := forms[:0]
	for _, f := range forms {
		if f != "" && !containsString(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Fingerprint identifies a secret by a short hash prefix without revealing it.
func Fingerprint(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:4])
}

// Label is how a registered secret appears in output, e.g. "[token:1a2b3c4d]": the same value always
// has the same label, so a timeline stays legible.
func (r *Redactor) Label(secret string) string {
	if r != nil {
		r.mu.RLock()
		l, ok := r.labels[secret]
		r.mu.RUnlock()
		if ok {
			return l
		}
	}
	return "[secret:" + Fingerprint(secret) + "]"
}

// Known reports whether s is a registered secret, in any of its forms.
func (r *Redactor) Known(s string) bool {
	if r == nil {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.labels[s]
	return ok
}

// Secrets returns every registered secret, sorted. It exists for tests that prove no secret reaches a
// report; nothing that writes output should need it.
func (r *Redactor) Secrets() []string {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.originals))
	for s := range r.originals {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// String returns s with every registered secret replaced by its label.
func (r *Redactor) String(s string) string {
	if r == nil || s == "" {
		return s
	}
	rep, short, labels := r.snapshot()
	if rep == nil && len(short) == 0 {
		return s
	}
	if rep != nil {
		s = rep.Replace(s)
	}
	if len(short) > 0 {
		s = replaceWhole(s, short, labels)
	}
	return s
}

// snapshot returns what String needs, building it first if a secret was added since.
func (r *Redactor) snapshot() (*strings.Replacer, []string, map[string]string) {
	r.mu.RLock()
	if r.built || len(r.labels) == 0 {
		defer r.mu.RUnlock()
		return r.replacer, r.short, r.shortLabels
	}
	r.mu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.built {
		r.build()
	}
	return r.replacer, r.short, r.shortLabels
}

// build makes the replacer of the long forms and the list of the short ones, new each time, since
// String uses the last ones without holding the lock.
func (r *Redactor) build() {
	var long, short []string
	shortLabels := make(map[string]string)
	for form, label := range r.labels {
		if len(form) >= anywhereLen {
			long = append(long, form)
		} else {
			short = append(short, form)
			shortLabels[form] = label
		}
	}
	// Longest first, so that a secret containing another is replaced whole.
	byLength := func(list []string) {
		sort.Slice(list, func(i, j int) bool {
			if len(list[i]) != len(list[j]) {
				return len(list[i]) > len(list[j])
			}
			return list[i] < list[j]
		})
	}
	byLength(long)
	byLength(short)
	r.replacer = nil
	if len(long) > 0 {
		pairs := make([]string, 0, 2*len(long))
		for _, k := range long {
			pairs = append(pairs, k, r.labels[k])
		}
		r.replacer = strings.NewReplacer(pairs...)
	}
	r.short, r.shortLabels = short, shortLabels
	r.built = true
}

// labelText matches a label String wrote, which short secrets must not be matched inside.
var labelText = regexp.MustCompile(`\[[a-z][a-z0-9-]*:[0-9a-f]{8}\]`)

// replaceWhole replaces the short secrets of s where they stand as whole values, leaving labels
// alone.
func replaceWhole(s string, short []string, labels map[string]string) string {
	var b strings.Builder
	last := 0
	for _, span := range labelText.FindAllStringIndex(s, -1) {
		b.WriteString(replaceWholeIn(s[last:span[0]], short, labels))
		b.WriteString(s[span[0]:span[1]])
		last = span[1]
	}
	if last == 0 {
		return replaceWholeIn(s, short, labels)
	}
	b.WriteString(replaceWholeIn(s[last:], short, labels))
	return b.String()
}

func replaceWholeIn(s string, short []string, labels map[string]string) string {
	var b strings.Builder
	done := 0
	for i := 0; i < len(s); i++ {
		if i > 0 && glued(s[i-1]) {
			continue // a whole value starts after a boundary
		}
		for _, form := range short {
			end := i + len(form)
			if end > len(s) || s[i:end] != form || (end < len(s) && glued(s[end])) || !boundBefore(s, i, len(form)) {
				continue
			}
			if done == 0 {
				b.Grow(len(s))
			}
			b.WriteString(s[done:i])
			b.WriteString(labels[form])
			done = end
			i = end - 1
			break
		}
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// glued reports whether c continues a value: a letter, a digit or one of ._~+%-.
func glued(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._~+%-", c) >= 0
}

// boundBefore reports whether a secret of length n starting at s[i] stands where a value does: a
// secret of boundLen bytes or more anywhere it is not glued to its neighbours; a shorter one only
// after "=" or ":" (spaces allowed between), a quote or a "/", or as the whole of s.
func boundBefore(s string, i, n int) bool {
	if n >= boundLen || i == 0 && n == len(s) {
		return true
	}
	j := i - 1
	for j >= 0 && s[j] == ' ' {
		j--
	}
	if j < 0 {
		return false
	}
	switch s[j] {
	case '=', ':':
		return true
	case '"', '\'', '/':
		return j == i-1
	}
	return false
}

// Error wraps err so that its message is redacted; errors.Is and errors.As still see the original.
func (r *Redactor) Error(err error) error {
	if err == nil || r == nil {
		return err
	}
	return &redactedError{msg: r.String(err.Error()), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Excerpt returns the start of b for a report or a message: at most max bytes (cut on a character
// boundary, "..." marking the cut), with every registered secret replaced first, so that a cut can
// never leave part of a secret that redaction would have caught whole. truncated says that b itself
// was cut short (a response read up to its size limit): its end may hold the start of a secret,
// which no whole-secret replacement matches, so a tail that begins a registered secret is dropped.
func (r *Redactor) Excerpt(b []byte, max int, truncated bool) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if truncated {
		s = r.dropSecretPrefixAtEnd(s)
	}
	s = strings.TrimSpace(r.String(s))
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// dropSecretPrefixAtEnd removes the longest tail of s that is the start of a registered secret (of
// a short one, only where it would stand as a whole value).
func (r *Redactor) dropSecretPrefixAtEnd(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	longest := 0
	for form := range r.labels {
		// Only a tail starting where s has the form's first byte can be its start.
		for i := max(len(s)-len(form)+1, 0); i < len(s) && len(s)-i > longest; i++ {
			if s[i] != form[0] || !strings.HasPrefix(form, s[i:]) {
				continue
			}
			if len(form) < anywhereLen && (i > 0 && glued(s[i-1]) || !boundBefore(s, i, len(form))) {
				continue
			}
			longest = len(s) - i
			break
		}
	}
	if longest == 0 {
		return s
	}
	return s[:len(s)-longest] + "[cut]"
}

// Shows reports whether text holds secret where String would replace it: in any form it takes on
// the wire, anywhere for a secret of 8 bytes or more, as a whole value for a shorter one. Tests use
// it to prove that no secret of the run reached an output.
func Shows(text, secret string) bool {
	var r Redactor
	r.Add("secret", secret)
	return r.String(text) != text
}
