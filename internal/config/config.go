// Package config reads a tocsin scan configuration: the YAML format documented field by field in
// examples/tocsin.yaml. Parse and Load decode strictly (unknown and duplicate fields are errors),
// expand ${NAME} from the environment, apply defaults and validate; every problem found is reported
// at once, each with its file, line, field path and a hint, in a single *Error.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Check IDs this version of tocsin knows how to run.
const (
	CheckRevokedTokenAccepted = "toctou/revoked-token-accepted"
	CheckScopeDowngrade       = "toctou/scope-downgrade-ignored"
	CheckInflightRevocation   = "toctou/inflight-revocation"
	CheckLimitOverrun         = "race/limit-overrun"
	CheckAuthMissing          = "auth/missing"
	CheckJWTNone              = "jwt/none-algorithm"
	CheckJWTSignature         = "jwt/signature-not-verified"
	CheckJWTWeakSecret        = "jwt/weak-hmac-secret"
	CheckJWTConfusion         = "jwt/algorithm-confusion"
	CheckJWTEmbeddedKey       = "jwt/embedded-key"
	CheckJWTExpired           = "jwt/expired-accepted"
	CheckBOLA                 = "authz/bola"
	CheckBFLA                 = "authz/bfla"
	CheckMassAssignment       = "authz/mass-assignment"
)

// KnownChecks lists the check IDs a config may name under checks. Validate rejects any other.
var KnownChecks = []string{CheckRevokedTokenAccepted, CheckScopeDowngrade, CheckInflightRevocation, CheckLimitOverrun,
	CheckAuthMissing, CheckJWTNone, CheckJWTSignature, CheckJWTWeakSecret, CheckJWTConfusion, CheckJWTEmbeddedKey, CheckJWTExpired,
	CheckBOLA, CheckBFLA, CheckMassAssignment}

// JWTChecks are the checks that forge tokens from the identity's JWT and send them to read probes.
var JWTChecks = []string{CheckJWTNone, CheckJWTSignature, CheckJWTWeakSecret, CheckJWTConfusion, CheckJWTEmbeddedKey, CheckJWTExpired}

// AuthzChecks are the checks between identities. They run from the probes a config lists for them,
// or pick operations of an API description by what construction proves (package check's select.go):
// an object a setup creates belongs to the identity that ran it; a scope one identity's source asks
// for and another's does not is a privilege; a readOnly property is the server's to set.
var AuthzChecks = []string{CheckBOLA, CheckBFLA, CheckMassAssignment}

// Defaults for limits left out of the file.
const (
	DefaultRequestBudget    = 2000
	DefaultRate             = 200
	DefaultTimeout          = 10 * time.Second
	DefaultMaxWindow        = 60 * time.Second
	DefaultPrecision        = 5 * time.Millisecond
	DefaultMaxResponseBytes = 1 << 20
	DefaultAuthStyle        = "basic"
	DefaultProbeMethod      = "GET"
)

// Config is a whole scan configuration.
type Config struct {
	Version int
	Target  Target
	Limits  Limits
	// OpenAPI and HAR, when set, describe the API's operations: probes are made from them, and checks
	// that name no probes pick theirs among them.
	OpenAPI *Surface
	HAR     *Surface
	// Identities by name; IdentityOrder lists the names in file order.
	Identities    map[string]*Identity
	IdentityOrder []string
	Vars          map[string]string // template variables available to every probe
	Probes        []*Probe          // top-level probes in file order
	Checks        []*Check          // checks in file order; a check not listed does not run
	// FromEnv lists every value a ${NAME} expanded to, with the field it was written in: secrets of
	// the run (EnvSecrets).
	FromEnv []EnvValue

	file  string             // name used in problems
	dir   string             // the config file's folder, absolute, when loaded from a file
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
	RequestBudget int
	Rate          float64 // requests per second
	Timeout       time.Duration
	MaxWindow     time.Duration
	// Precision is how narrowly a staleness measurement brackets its figure before it stops adding
	// passes (the request budget may stop it sooner).
	Precision        time.Duration
	MaxResponseBytes int64
}

// Identity is a named principal: where its tokens come from and its lifecycle hooks.
type Identity struct {
	Name  string
	Token TokenSource
	// Fresh is "per-scan" (the default: checks mint tokens as they need them) or "per-experiment":
	// a new token for every experiment, so a source that registers an account per token gives
	// every experiment its own account.
	Fresh string
	// Teardown removes what minting a token created (an account a login chain registered): steps run
	// at the end of the scan once per token the source minted, with that token's variables.
	Teardown []*Probe
	// JWKSURL is where the issuer of this identity's JWTs publishes its public keys (a JWKS), for
	// jwt/algorithm-confusion; empty: found through the issuer's OpenID discovery document.
	JWKSURL string
	// Scheme names the OpenAPI security scheme (components.securitySchemes) this identity's tokens
	// answer: operations from the document are tried as this identity only where one of their
	// security alternatives needs that scheme alone. Empty: an oauth2 identity answers the scheme
	// whose flow has its token_url, any other identity every operation.
	Scheme    string
	Revoke    *Hook // nil when absent
	Downgrade *Hook
	Restore   *Hook
}

// TokenSource holds exactly one of its fields.
type TokenSource struct {
	Static  string   // a fixed token
	Command []string // argv; stdout, trimmed, is the token, or a JSON object {"token", "id", ...}
	OAuth2  *OAuth2
	HTTP    []*Probe // a login: steps sent without a credential; the last extracts "token"
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

// Hook is a lifecycle action; exactly one of RFC7009, HTTP and Command is set. RFC7009 is allowed
// for revoke only.
type Hook struct {
	RFC7009 *RFC7009
	HTTP    *HTTPHook
	Command []string // argv; {{token}} is the token; exit status 0 acknowledges
	// Removes, on a downgrade, names the scopes it takes away: operations that need one of them are
	// what toctou/scope-downgrade-ignored replays when the config names no probes for it.
	Removes []string
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
	Extract     map[string]string // variable -> selector into the JSON response
	// As, on a step of a chain, is the identity the step runs as: an identity's name or
	// "anonymous"; empty for the chain's default.
	As string
	// Copies is how many synchronised copies race/limit-overrun sends (0: the default, 20).
	Copies int
	// Shared says the object the probe acts on is meant to be seen by every identity (a public
	// catalogue, a team document): authz/bola makes no claim about it.
	Shared bool
	// Privileged says the operation needs a privilege that not every identity has: authz/bfla sends
	// it as an identity without it.
	Privileged bool
	// List is a request that lists the objects of this kind the identity sending it may see (GET
	// /notes). authz/bola sends it as the identity under test and leaves out an object that
	// identity lists; without a setup, its extract finds the owner's object in the owner's list.
	List *Probe
	// Assign are properties authz/mass-assignment adds to the request body besides its defaults
	// (role, is_admin, admin, scopes, balance, owner): name -> value, JSON when the value parses as
	// JSON, else a string.
	Assign map[string]string
	// Chains of steps: Setup runs first (as the identity under test by default) and creates the
	// resource; Verify reads it back (as the check's verifier); Teardown removes it after the
	// check (as the identity under test, with a fresh token). Steps never have chains of their own.
	Setup, Verify, Teardown []*Probe
}

// EnvValue is what one ${NAME} in the file expanded to.
type EnvValue struct {
	Field string // the field path, e.g. probes.summary.path
	Name  string // the variable
	Value string
}

// EnvSecrets returns the values from the environment that are secrets of the run: every one but
// those of fields that shape the scan rather than carry data (target, limits, checks, and a
// request's method, as, statuses, extract selectors, copies, an identity's fresh, an OAuth2 grant,
// auth style and scopes, a revocation's token type hint), and those an origin holds, since reports
// show the origins (a port, a host). Redacting "GET" or an origin would wreck every report and hide
// nothing.
func (c *Config) EnvSecrets() []string {
	var out []string
	for _, e := range c.FromEnv {
		if e.Value == "" || shapesTheScan(e.Field) || slices.ContainsFunc(c.Target.Origins, func(o string) bool { return strings.Contains(o, e.Value) }) {
			continue
		}
		out = append(out, e.Value)
	}
	return out
}

// shapesTheScan reports whether field names or shapes the scan rather than carrying a value a
// request sends.
func shapesTheScan(field string) bool {
	parts := strings.Split(field, ".")
	if slices.Contains([]string{"version", "target", "limits", "checks"}, parts[0]) {
		return true
	}
	if parts[0] == "vars" || len(parts) < 2 {
		return false
	}
	last, _, _ := strings.Cut(parts[len(parts)-1], "[")
	parent := parts[len(parts)-2]
	if parent == "headers" {
		return false
	}
	return parent == "extract" || slices.Contains([]string{"method", "as", "accept", "reject", "expect", "destructive", "copies", "fresh", "grant", "auth_style", "scopes", "token_type_hint"}, last)
}

// Anonymous names no identity: a step or verifier that sends no credential.
const Anonymous = "anonymous"

// Fresh values.
const (
	FreshPerScan       = "per-scan"
	FreshPerExperiment = "per-experiment"
)

// Probe copies bounds: two copies are the least that can race; past 100 a batch is a load test.
const (
	DefaultCopies = 20
	MaxCopies     = 100
)

// Check says which identities and probes one check runs with.
type Check struct {
	ID       string
	Identity string
	Verifier string // optional second identity that stays valid, or "anonymous"
	// Owner is, for the authz checks, the identity entitled to what Identity tries: the owner of
	// the objects (authz/bola) or the holder of the privilege (authz/bfla). Setup, verify and
	// teardown run as it by default; the probe runs as Identity.
	Owner  string
	Probes []string
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

// Load reads, parses and validates the config file at path. It reads at most MaxFileBytes, so that a
// device or an endless stream given by mistake is refused at once. Commands given by a relative path
// (./get-token.sh, scripts/revoke.sh) resolve from the config file's folder, not the working
// directory, and every command runs in that folder (so [python3, get_token.py] finds its script), so
// a config runs the same from anywhere; a bare program name is looked up on PATH.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(path, data, nil)
	if err != nil {
		return cfg, err
	}
	cfg.resolveCommands(filepath.Dir(path))
	cfg.resolveSurfaces(filepath.Dir(path))
	return cfg, nil
}

// Dir is the config file's folder, where its commands run ("" for a config not loaded from a file:
// they run in the working directory).
func (c *Config) Dir() string { return c.dir }

// resolveCommands makes every command's relative program path absolute from dir, and records dir
// as the folder the commands run in, so that relative files among their arguments resolve there.
func (c *Config) resolveCommands(dir string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	c.dir = abs
	resolve := func(argv []string) {
		if len(argv) > 0 && !filepath.IsAbs(argv[0]) && strings.ContainsRune(argv[0], filepath.Separator) {
			argv[0] = filepath.Join(abs, argv[0])
		}
	}
	for _, id := range c.Identities {
		if id == nil {
			continue
		}
		resolve(id.Token.Command)
		for _, h := range []*Hook{id.Revoke, id.Downgrade, id.Restore} {
			if h != nil {
				resolve(h.Command)
			}
		}
	}
}

// Parse decodes, applies defaults to and validates a config. name is used in messages. ${NAME} in
// any string value is replaced through lookupEnv (os.LookupEnv when nil); $${ stands for a literal ${.
// A returned error is an *Error listing every problem found. Data over MaxFileBytes, MaxDepth or
// MaxElements is refused before it is parsed.
func Parse(name string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if err := checkShape(data); err != nil {
		return &Config{file: name}, asShapeError(name, err)
	}
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
	if set("limits.precision", c.Limits.Precision == 0) {
		c.Limits.Precision = DefaultPrecision
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
		if id.Fresh == "" && !c.written("identities."+id.Name+".fresh") {
			id.Fresh = FreshPerScan
		}
		for _, q := range append(slices.Clone(id.Token.HTTP), id.Teardown...) {
			if q != nil && q.Method == "" {
				q.Method = DefaultProbeMethod
			}
		}
	}
	for _, p := range c.Probes {
		for _, q := range p.WithSteps() {
			if q.Method == "" {
				q.Method = DefaultProbeMethod
			}
		}
	}
}

// WithSteps returns p and every step of its chains (setup, verify, teardown) and its list request,
// skipping nils. Steps have no chains of their own.
func (p *Probe) WithSteps() []*Probe {
	if p == nil {
		return nil
	}
	out := []*Probe{p}
	for _, chain := range [][]*Probe{p.Setup, p.Verify, p.Teardown, {p.List}} {
		for _, q := range chain {
			if q != nil {
				out = append(out, q)
			}
		}
	}
	return out
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
