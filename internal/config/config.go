// Package config reads a tocsin scan configuration: the YAML format documented field by field in
// examples/tocsin.yaml. Parse and Load decode strictly (unknown and duplicate fields are errors),
// expand ${NAME} from the environment, apply defaults and validate; every problem found is reported
// at once, each with its file, line, field path and a hint, in a single *Error.
package config

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Check IDs this version of tocsin knows how to run.
const (
	CheckRevokedTokenAccepted = "toctou/revoked-token-accepted"
	CheckScopeDowngrade       = "toctou/scope-downgrade-ignored"
	CheckInflightRevocation   = "toctou/inflight-revocation"
	CheckLimitOverrun         = "race/limit-overrun"
)

// KnownChecks lists the check IDs a config may name under checks. Validate rejects any other.
var KnownChecks = []string{CheckRevokedTokenAccepted, CheckScopeDowngrade, CheckInflightRevocation, CheckLimitOverrun}

// Defaults for limits left out of the file.
const (
	DefaultRequestBudget    = 2000
	DefaultRate             = 200
	DefaultTimeout          = 10 * time.Second
	DefaultMaxWindow        = 60 * time.Second
	DefaultMaxResponseBytes = 1 << 20
	DefaultAuthStyle        = "basic"
	DefaultProbeMethod      = "GET"
)

// Config is a whole scan configuration.
type Config struct {
	Version int
	Target  Target
	Limits  Limits
	// Identities by name; IdentityOrder lists the names in file order.
	Identities    map[string]*Identity
	IdentityOrder []string
	Vars          map[string]string // template variables available to every probe
	Probes        []*Probe          // top-level probes in file order
	Checks        []*Check          // checks in file order; a check not listed does not run

	file  string             // name used in problems
	lines map[string]int     // field path -> line of its key; a path present here was written in the file
	keys  map[string]KeySpan // field path -> where its key is written (mapping keys only)
}

// KeySpan is where a field's key is written in the file: 1-based line and columns, EndColumn just
// past the key.
type KeySpan struct{ Line, Column, EndColumn int }

// Key returns where the key of field (a path such as "probes.read-item") is written; ok is false
// when the file does not contain it, or the config was built in code.
func (c *Config) Key(field string) (span KeySpan, ok bool) {
	span, ok = c.keys[field]
	return span, ok
}

// Target names where the scan may go.
type Target struct {
	Origins []string // scheme://host[:port]; relative probe paths resolve against the first
}

// Limits bound the scan.
type Limits struct {
	RequestBudget    int
	Rate             float64 // requests per second
	Timeout          time.Duration
	MaxWindow        time.Duration
	MaxResponseBytes int64
}

// Identity is a named principal: where its tokens come from and its lifecycle hooks.
type Identity struct {
	Name      string
	Token     TokenSource
	Revoke    *Hook // nil when absent
	Downgrade *Hook
	Restore   *Hook
}

// TokenSource holds exactly one of its fields.
type TokenSource struct {
	Static  string   // a fixed token
	Command []string // argv; stdout, trimmed, is the token
	OAuth2  *OAuth2
}

// OAuth2 mints tokens from a token endpoint.
type OAuth2 struct {
	Grant        string // "password" or "client_credentials"
	TokenURL     string
	ClientID     string
	ClientSecret string
	AuthStyle    string // "basic" (default) or "post"
	Username     string // password grant only
	Password     string
	Scopes       []string
}

// Hook is a lifecycle action; exactly one field is set. RFC7009 is allowed for revoke only.
type Hook struct {
	RFC7009 *RFC7009
	HTTP    *HTTPHook
	Command []string // argv; {{token}} is the token; exit status 0 acknowledges
}

// RFC7009 is token revocation at an RFC 7009 endpoint with client authentication.
type RFC7009 struct {
	URL           string
	ClientID      string
	ClientSecret  string
	AuthStyle     string // "basic" (default) or "post"
	TokenTypeHint string // "", "access_token" or "refresh_token"
}

// HTTPHook is any HTTP request; {{token}} in URL, header values and body is the token acted on.
type HTTPHook struct {
	Method  string
	URL     string
	Headers map[string]string
	Body    string
	Expect  []int // statuses that acknowledge; empty means any 2xx
}

// Probe is a request template.
type Probe struct {
	Name        string
	Method      string // default GET
	Path        string // starts with "/" (resolved against the first origin) or an absolute URL
	Headers     map[string]string
	Body        string
	Accept      []int // empty means 200-299
	Reject      []int // empty means 401, 403
	Destructive bool
	Extract     map[string]string // variable -> dot path into the JSON response
	Setup       *Probe            // runs first as the same identity; never has its own Setup or Verify
	Verify      *Probe            // reads the resource back as the verifying identity
}

// Check says which identities and probes one check runs with.
type Check struct {
	ID       string
	Identity string
	Verifier string // optional second identity that stays valid
	Probes   []string
}

// Identity returns the named identity, or nil.
func (c *Config) Identity(name string) *Identity { return c.Identities[name] }

// Probe returns the named top-level probe, or nil.
func (c *Config) Probe(name string) *Probe {
	for _, p := range c.Probes {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Load reads, parses and validates the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, nil)
}

// Parse decodes, applies defaults to and validates a config. name is used in messages. ${NAME} in
// any string value is replaced through lookupEnv (os.LookupEnv when nil); $${ stands for a literal ${.
// A returned error is an *Error listing every problem found.
func Parse(name string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	d := newDecoder(name, lookupEnv)
	cfg := d.decodeFile(data)
	cfg.ApplyDefaults()
	decodeProblems := d.problems.list
	vErr := cfg.Validate()
	if vErr == nil && len(decodeProblems) == 0 {
		return cfg, nil
	}
	all := &problems{file: name, list: decodeProblems}
	if vErr != nil {
		// A field that could not be decoded leaves its parent half filled in; what Validate says
		// about that parent would be noise next to the real problem.
		for _, p := range vErr.(*Error).Problems {
			if !underBroken(p.Field, decodeProblems) {
				all.list = append(all.list, p)
			}
		}
	}
	return cfg, all.err()
}

// underBroken reports whether field lies within the parent of a field that failed to decode.
func underBroken(field string, decodeProblems []Problem) bool {
	for _, p := range decodeProblems {
		parent := parentPath(p.Field)
		if parent == "" {
			// A broken top-level field or a syntax error: the whole file is suspect.
			return true
		}
		if field == parent || strings.HasPrefix(field, parent+".") || strings.HasPrefix(field, parent+"[") {
			return true
		}
	}
	return false
}

// parentPath strips the last ".name" or "[i]" from a field path.
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// ApplyDefaults fills in limits, auth styles and probe methods left unset. A value written
// explicitly in the file, even zero, is kept so that Validate can report it.
func (c *Config) ApplyDefaults() {
	set := func(field string, zero bool) bool { return zero && !c.written(field) }
	if set("limits.request_budget", c.Limits.RequestBudget == 0) {
		c.Limits.RequestBudget = DefaultRequestBudget
	}
	if set("limits.rate", c.Limits.Rate == 0) {
		c.Limits.Rate = DefaultRate
	}
	if set("limits.timeout", c.Limits.Timeout == 0) {
		c.Limits.Timeout = DefaultTimeout
	}
	if set("limits.max_window", c.Limits.MaxWindow == 0) {
		c.Limits.MaxWindow = DefaultMaxWindow
	}
	if set("limits.max_response_bytes", c.Limits.MaxResponseBytes == 0) {
		c.Limits.MaxResponseBytes = DefaultMaxResponseBytes
	}
	for _, id := range c.Identities {
		if id == nil {
			continue
		}
		if o := id.Token.OAuth2; o != nil && o.AuthStyle == "" {
			o.AuthStyle = DefaultAuthStyle
		}
		if h := id.Revoke; h != nil && h.RFC7009 != nil && h.RFC7009.AuthStyle == "" {
			h.RFC7009.AuthStyle = DefaultAuthStyle
		}
	}
	for _, p := range c.Probes {
		if p == nil {
			continue
		}
		// Only two levels: a setup or verify never has its own (Validate says so).
		for _, q := range []*Probe{p, p.Setup, p.Verify} {
			if q != nil && q.Method == "" {
				q.Method = DefaultProbeMethod
			}
		}
	}
}

// written reports whether the field path appeared in the file.
func (c *Config) written(field string) bool {
	_, ok := c.lines[field]
	return ok
}

// lineOf returns the line of field, or of its nearest ancestor written in the file. A top-level field
// missing from a file is placed on line 1; a config built in code has no lines (0).
func (c *Config) lineOf(field string) int {
	for f := field; f != ""; f = parentPath(f) {
		if l, ok := c.lines[f]; ok {
			return l
		}
	}
	if c.lines != nil {
		return 1
	}
	return 0
}
