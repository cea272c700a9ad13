// Package lab runs a small bearer-token API with its own identity provider on a loopback port, in a
// vulnerable flavour that has the time-of-check/time-of-use flaws tocsin looks for and a fixed
// flavour built on package guard that has none. The scanner's tests and `tocsin demo` scan it, so
// every check can be shown to find the flaw in one and nothing in the other.
//
// The identity provider issues HS256 JWTs (RFC 6749 password and client_credentials grants),
// introspects them (RFC 7662), revokes them (RFC 7009), and lets an admin change a subject's scopes.
// The resource API serves items and a report on the same origin.
package lab

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tocsin/tocsin/guard"
)

// The flavours of lab.
const (
	Vulnerable = "vulnerable" // cached introspection and permissions, decisions held across the action
	Fixed      = "fixed"      // every action runs inside guard.Do; revocation waits for it
)

// Options configure a lab. Zero values take the defaults documented on each field.
type Options struct {
	Flavor           string        // Vulnerable or Fixed; required
	IntrospectionTTL time.Duration // vulnerable: how long a token's introspection is cached; default 2s, negative = no cache
	PermissionTTL    time.Duration // vulnerable: how long a subject's scopes are cached; default 2s, negative = no cache
	ActionGap        time.Duration // both: pause between loading an item and deleting it; default 150ms, negative = none
	TokenLifetime    time.Duration // default 15m
	// SingleWriter makes the API behave like an application on a single-writer database (sqlite):
	// every request that carries a bearer token writes a last-used stamp, and a DELETE holds the
	// write lock from its load to its commit, so a token-bearing read waits behind a delete while an
	// anonymous read (GET /public/items/{id}) does not. Both flavours.
	SingleWriter bool
	// LegacyTokenLifetime is how long the tokens of POST /legacy/login live (tokens.go); default 2s.
	LegacyTokenLifetime time.Duration
	Logger              *slog.Logger // nil discards

	// How the vulnerable API learns that a token was revoked. By default it introspects the token at
	// the identity provider and caches the answer for IntrospectionTTL; each of the three below
	// replaces that with another pattern real APIs ship, and at most one may be set.
	OfflineJWT       bool          // verify the JWT's signature and exp locally and never check revocation: a revoked token works until its exp
	DenylistSync     time.Duration // verify locally and refuse the token IDs of a revocation list pulled from the identity provider every DenylistSync
	PropagationDelay time.Duration // verify locally and refuse tokens the revocation store, read from a replica that lags PropagationDelay behind, lists as revoked

	// IntrospectionLatency, for the vulnerable API's introspection, is how long each call to the
	// identity provider takes, drawn uniformly per call (a remote introspection endpoint).
	IntrospectionLatency Latency
	// StampOnAnswer starts a cached introspection's lifetime when the identity provider's answer
	// arrives, as real proxies do, instead of when the request that needed it arrived.
	StampOnAnswer bool

	// Guard, in the fixed flavour, is the guard the API and the identity provider share; nil makes a
	// memory one. Pass a guard on PostgreSQL (guard.NewPostgres) to run replicas (StartReplica).
	Guard *guard.Guard

	// ClientSecret and AdminKey replace the random secrets a lab makes for itself, so that a script
	// can know them before the lab starts. Empty means random.
	ClientSecret string
	AdminKey     string

	// onGap, when set by a test, is called as DELETE enters its check-to-use gap, so the test can
	// act inside the gap without guessing its timing.
	onGap func(ctx context.Context)
}

// Validate reports options Start would refuse, such as two ways of learning of a revocation.
func (o Options) Validate() error {
	_, err := o.withDefaults()
	return err
}

func (o Options) withDefaults() (Options, error) {
	if o.Flavor != Vulnerable && o.Flavor != Fixed {
		return o, fmt.Errorf("lab: unknown flavor %q (hint: use %q or %q)", o.Flavor, Vulnerable, Fixed)
	}
	if o.IntrospectionTTL == 0 {
		o.IntrospectionTTL = 2 * time.Second
	}
	if o.PermissionTTL == 0 {
		o.PermissionTTL = 2 * time.Second
	}
	if o.ActionGap == 0 {
		o.ActionGap = 150 * time.Millisecond
	}
	if o.ActionGap < 0 {
		o.ActionGap = 0
	}
	if o.TokenLifetime == 0 {
		o.TokenLifetime = 15 * time.Minute
	}
	if o.LegacyTokenLifetime == 0 {
		o.LegacyTokenLifetime = 2 * time.Second
	}
	if o.TokenLifetime < time.Second || o.LegacyTokenLifetime < time.Second {
		return o, fmt.Errorf("lab: token lifetime %v is too short (hint: at least 1s; JWT times have whole seconds)", o.TokenLifetime)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	modes := 0
	for _, set := range []bool{o.OfflineJWT, o.DenylistSync != 0, o.PropagationDelay != 0} {
		if set {
			modes++
		}
	}
	if modes > 1 {
		return o, errors.New("lab: offline JWT verification, a denylist sync and a propagation delay are different ways to learn of a revocation (hint: choose one)")
	}
	if o.DenylistSync < 0 || o.PropagationDelay < 0 {
		return o, errors.New("lab: the denylist sync period and the propagation delay must not be negative")
	}
	if err := o.IntrospectionLatency.validate(); err != nil {
		return o, err
	}
	return o, nil
}

// Latency is a range a delay is drawn from, uniformly, for each call.
type Latency struct{ Min, Max time.Duration }

// maxLatency bounds a simulated call; a lab slower than this helps no one.
const maxLatency = 10 * time.Second

// ParseLatency reads "20ms" (always 20 ms) or "5ms-60ms" (uniform between them).
func ParseLatency(s string) (Latency, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	least, err := time.ParseDuration(strings.TrimSpace(lo))
	if err != nil {
		return Latency{}, fmt.Errorf("latency %q: %w (hint: 20ms, or a range such as 5ms-60ms)", s, err)
	}
	l := Latency{least, least}
	if isRange {
		if l.Max, err = time.ParseDuration(strings.TrimSpace(hi)); err != nil {
			return Latency{}, fmt.Errorf("latency %q: %w (hint: a range such as 5ms-60ms)", s, err)
		}
	}
	return l, l.validate()
}

func (l Latency) validate() error {
	if l.Min < 0 || l.Max < l.Min || l.Max > maxLatency {
		return fmt.Errorf("lab: latency %s: want 0 <= min <= max <= %s", l, maxLatency)
	}
	return nil
}

func (l Latency) String() string {
	if l.Min == l.Max {
		return l.Min.String()
	}
	return l.Min.String() + "-" + l.Max.String()
}

// wait sleeps for a duration drawn from l, or until ctx ends.
func (l Latency) wait(ctx context.Context) error {
	if l.Max <= 0 {
		return nil
	}
	d := l.Min
	if l.Max > l.Min {
		d += mathrand.N(l.Max - l.Min + 1)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Lab is a running lab. Close stops it.
type Lab struct {
	opts      Options
	url       string
	srv       *http.Server
	served    chan error
	idp       *idp
	api       *api
	jwt       *jwtRoutes   // tokens.go
	guard     *guard.Guard // fixed flavour only
	stop      func()       // stops the vulnerable API's background work (a denylist sync), if any
	closeOnce sync.Once
	closeErr  error
}

// Start listens on addr, which must be a loopback address such as "127.0.0.1:0" (the lab is
// vulnerable on purpose), and serves the lab until Close. ctx bounds only the start.
func Start(ctx context.Context, addr string, opts Options) (*Lab, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("lab: listen on %s: %w", addr, err)
	}
	l := &Lab{opts: opts, url: "http://" + ln.Addr().String(), served: make(chan error, 1)}

	l.idp = newIDP(l.url, opts.TokenLifetime, opts.Logger)
	if opts.ClientSecret != "" {
		l.idp.clientSecret = opts.ClientSecret
	}
	if opts.AdminKey != "" {
		l.idp.adminKey = opts.AdminKey
	}
	var authz authorizer
	switch opts.Flavor {
	case Vulnerable:
		v := newVulnerable(l.idp, opts)
		l.stop = v.start()
		authz = v
	case Fixed:
		l.guard = opts.Guard
		if l.guard == nil {
			l.guard = guard.New()
		}
		l.idp.guard = l.guard
		authz = &fixed{idp: l.idp, guard: l.guard}
	}
	l.api = newAPI(authz, opts.ActionGap, opts.onGap)
	l.api.singleWriter = opts.SingleWriter
	l.api.accountsAPI.accounts = l.idp.accountNames
	l.idp.accountDeleted = l.api.accountsAPI.forget
	l.jwt = newJWTRoutes(l.idp, l.url, opts.Flavor == Vulnerable, opts.LegacyTokenLifetime)
	l.serve(ln)
	return l, nil
}

// StartReplica starts another replica of a fixed-flavour lab on addr: the same identity provider and
// resources, but its own guard, as another process of the service would have its own connection pool
// to the shared database. With the primary and every replica on guard.NewPostgres over one database,
// a revocation through any replica waits for actions in flight on all of them.
func (l *Lab) StartReplica(ctx context.Context, addr string, g *guard.Guard) (*Lab, error) {
	if l.opts.Flavor != Fixed || g == nil {
		return nil, errors.New("lab: replicas need the fixed flavour and a guard (hint: guard.NewPostgres on the database the primary's Options.Guard uses)")
	}
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("lab: listen on %s: %w", addr, err)
	}
	r := &Lab{opts: l.opts, url: "http://" + ln.Addr().String(), served: make(chan error, 1), idp: l.idp, guard: g, jwt: l.jwt}
	r.api = &api{authz: &fixed{idp: l.idp, guard: g}, gap: l.api.gap, onGap: l.api.onGap, resources: l.api.resources, singleWriter: l.api.singleWriter}
	r.serve(ln)
	return r, nil
}

// serve routes the identity provider and the API on ln until Close.
func (l *Lab) serve(ln net.Listener) {
	opts := l.opts
	mux := http.NewServeMux()
	l.idp.routes(mux)
	l.api.routes(mux)
	mux.HandleFunc("GET /openapi.json", l.serveOpenAPI)
	l.jwt.routes(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "flavor": opts.Flavor})
	})
	l.srv = &http.Server{
		Handler:           logRequests(opts.Logger, mux),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	go func() { l.served <- l.srv.Serve(ln) }()
	opts.Logger.Info("lab started", "url", l.url, "flavor", opts.Flavor)
}

// checkLoopback refuses addresses other hosts could reach, including an empty host, which means
// every interface.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("lab: address %q: %w (hint: use 127.0.0.1:0 or 127.0.0.1:8787)", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("lab: address %q is not a loopback address; the lab is vulnerable on purpose and must not be reachable from other hosts (hint: use 127.0.0.1:0 or 127.0.0.1:8787)", addr)
	}
	return nil
}

// URL returns the lab's origin, such as "http://127.0.0.1:8787".
func (l *Lab) URL() string { return l.url }

// Close stops the lab at once, cutting requests in flight.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		if l.stop != nil {
			l.stop()
		}
		err := l.srv.Close()
		if serveErr := <-l.served; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
			err = serveErr
		}
		if err != nil {
			l.closeErr = fmt.Errorf("lab: close: %w", err)
		}
	})
	return l.closeErr
}

// Resources counts what the lab holds that a scan could have created: items and coupons by owner,
// and under "accounts" the accounts registered through POST /register. A scan that cleans up after
// itself leaves these as it found them.
func (l *Lab) Resources() map[string]int {
	out := l.api.count()
	if n := l.idp.registeredAccounts(); n > 0 {
		out["accounts"] = n
	}
	return out
}

// ActiveTokens counts the access tokens of subject that are neither revoked nor expired: tests
// check with it that a scan leaves no token it minted valid.
func (l *Lab) ActiveTokens(subject string) int { return l.idp.activeTokens(subject) }

// Env returns the lab's secrets under the names its ConfigYAML refers to.
func (l *Lab) Env() map[string]string {
	return map[string]string{
		"TOCSIN_LAB_CLIENT_SECRET": l.idp.clientSecret,
		"TOCSIN_LAB_ADMIN_KEY":     l.idp.adminKey,
	}
}

// randomText returns a random string of about 130 bits, safe in URLs, shells and HTTP Basic auth.
func randomText() string { return rand.Text() }

// logRequests logs each request at debug level. It never logs headers, so tokens stay out of logs.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(status int) {
	s.status = status
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
