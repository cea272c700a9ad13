// Package redact keeps secrets out of everything tocsin writes. Every token, password and client
// secret the scan learns is registered here; anything bound for a report, a log line or an error
// message passes through String first.
package redact

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// minSecretLen guards against redacting every "a" because someone registered a one-letter value.
const minSecretLen = 4

// Redactor replaces registered secrets with a short label. The zero value is ready to use and safe for
// concurrent use.
type Redactor struct {
	mu       sync.RWMutex
	secrets  map[string]string // secret -> label
	replacer *strings.Replacer
}

// Add registers a secret of the given kind ("token", "client-secret", "password", ...).
func (r *Redactor) Add(kind, secret string) {
	if len(secret) < minSecretLen {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.secrets == nil {
		r.secrets = make(map[string]string)
	}
	if _, ok := r.secrets[secret]; ok {
		return
	}
	r.secrets[secret] = "[" + kind + ":" + Fingerprint(secret) + "]"
	r.replacer = nil
}

// Fingerprint identifies a secret by a short hash prefix without revealing it.
func Fingerprint(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:4])
}

// Label is how a registered secret appears in output, e.g. "[token:1a2b3c4d]".
func (r *Redactor) Label(secret string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if l, ok := r.secrets[secret]; ok {
		return l
	}
	return "[secret:" + Fingerprint(secret) + "]"
}

// Secrets returns every registered secret, sorted. It exists for tests that prove no secret reaches a
// report; nothing that writes output should need it.
func (r *Redactor) Secrets() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.secrets))
	for s := range r.secrets {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// String returns s with every registered secret replaced by its label.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	rep := r.replacer
	n := len(r.secrets)
	r.mu.RUnlock()
	if n == 0 {
		return s
	}
	if rep == nil {
		rep = r.build()
	}
	return rep.Replace(s)
}

func (r *Redactor) build() *strings.Replacer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.replacer != nil {
		return r.replacer
	}
	// Longest first, so that a secret containing another is replaced whole.
	keys := make([]string, 0, len(r.secrets))
	for k := range r.secrets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	pairs := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		pairs = append(pairs, k, r.secrets[k])
	}
	r.replacer = strings.NewReplacer(pairs...)
	return r.replacer
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
	if r == nil {
		r = &Redactor{}
	}
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

// dropSecretPrefixAtEnd removes the longest tail of s that is the start of a registered secret.
func (r *Redactor) dropSecretPrefixAtEnd(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	longest := 0
	for secret := range r.secrets {
		// Only a tail starting where s has the secret's first byte can be its start.
		for i := max(len(s)-len(secret)+1, 0); i < len(s) && len(s)-i > longest; i++ {
			if s[i] == secret[0] && strings.HasPrefix(secret, s[i:]) {
				longest = len(s) - i
				break
			}
		}
	}
	if longest == 0 {
		return s
	}
	return s[:len(s)-longest] + "[cut]"
}
