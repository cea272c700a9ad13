package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/tocsin/tocsin/internal/redact"
)

// rateBurst lets a short burst through (a race needs several requests at once) while keeping the
// sustained rate to the configured one.
const rateBurst = 10

// guard is the http.RoundTripper that enforces the client's rules on every request, redirects included.
type guard struct {
	origins   map[string]bool // normalised scheme://host:port
	budget    int64
	used      atomic.Int64
	unmetered atomic.Int64 // requests outside the budget (Unmetered), counted for reports only
	limiter   *rate.Limiter
	timeout   time.Duration
	transport *http.Transport
	log       atomic.Pointer[func(Logged)] // SetLog
	secrets   *redact.Redactor             // learns every request and response; may be nil
	maxBody   int64                        // how much of a response body is learned
}

// Logged is one request for a verbose log (tocsin -v): sent and answered, failed, or refused before
// anything was sent. URL has no query, user info or fragment, which may hold secrets.
type Logged struct {
	Method, URL string
	Status      int   // 0 when no response came
	Err         error // why it failed or was refused
	Took        time.Duration
	// Batch, when not zero, is a batch of synchronised requests the race engine sends on its own
	// connections (Reserve): Method and URL are empty.
	Batch int
}

// SetLog has fn told about every request the client sends or refuses (each hop of a redirect), and
// every batch reserved for the race engine. fn must be safe for concurrent use; nil turns it off.
func (c *Client) SetLog(fn func(Logged)) {
	if fn == nil {
		c.guard.log.Store(nil)
		return
	}
	c.guard.log.Store(&fn)
}

func (g *guard) logged(l Logged) {
	if fn := g.log.Load(); fn != nil {
		(*fn)(l)
	}
}

func newGuard(origins map[string]bool, budget int64, perSecond float64, timeout time.Duration) *guard {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &guard{
		origins: origins,
		budget:  budget,
		limiter: rate.NewLimiter(rate.Limit(perSecond), rateBurst),
		timeout: timeout,
		transport: &http.Transport{
			// No Proxy: a proxy from the environment would receive every token, and it is not an
			// origin the config names.
			Proxy:               nil,
			DialContext:         dialer.DialContext,
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        100,
			MaxIdleConnsPerHost: 32, // a race opens many connections to one host; keep them warm
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: timeout,
			// Headers can be slow when the API is slow; the per-request context bounds the wait.
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: MaxHeaderBytes,
		},
	}
}

// RoundTrip refuses disallowed origins and a spent budget before any network traffic, waits for the
// rate limiter, and bounds the exchange by the per-request timeout until the body is closed.
func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	closeRequestBody := func() {
		if req.Body != nil {
			_ = req.Body.Close()
		}
	}
	refuse := func(err error) (*http.Response, error) {
		closeRequestBody()
		g.logged(Logged{Method: req.Method, URL: safeURL(req.URL), Err: err})
		return nil, err
	}
	origin, err := originOf(req.URL)
	if err != nil || !g.origins[origin] {
		if err != nil {
			return refuse(fmt.Errorf("%w: %v", ErrOrigin, err))
		}
		return refuse(fmt.Errorf("%w: %s", ErrOrigin, origin))
	}
	metered := req.Context().Value(unmeteredKey{}) == nil
	if metered && !g.take() {
		return refuse(fmt.Errorf("%w (%d requests)", ErrBudget, g.budget))
	}
	parent := req.Context()
	if err := g.limiter.Wait(parent); err != nil {
		if metered {
			g.used.Add(-1) // nothing was attempted
		}
		closeRequestBody()
		return nil, fmt.Errorf("waiting for the rate limit: %w", err)
	}

	if !metered {
		g.unmetered.Add(1)
	}
	g.learnRequest(req)
	ctx, cancel := context.WithTimeout(parent, g.timeout)
	if st, ok := parent.Value(stampsKey{}).(*stamps); ok {
		st.attempt()
	}
	start := time.Now()
	resp, err := g.transport.RoundTrip(req.WithContext(ctx))
	if err != nil {
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded) && parent.Err() == nil
		cancel()
		if timedOut {
			err = fmt.Errorf("no response within %s: %w", g.timeout, err)
		}
		g.logged(Logged{Method: req.Method, URL: safeURL(req.URL), Err: err, Took: time.Since(start)})
		return nil, err
	}
	if err := checkLocation(req, resp); err != nil {
		resp.Body.Close()
		cancel()
		g.logged(Logged{Method: req.Method, URL: safeURL(req.URL), Err: err, Took: time.Since(start)})
		return nil, err
	}
	g.logged(Logged{Method: req.Method, URL: safeURL(req.URL), Status: resp.StatusCode, Took: time.Since(start)})
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	if g.secrets != nil {
		resp.Body = &learningBody{ReadCloser: resp.Body, header: resp.Header, secrets: g.secrets, max: g.maxBody, description: parent.Value(descriptionKey{}) != nil}
	}
	return resp, nil
}

// learnRequest teaches the redactor what req carries. Its body is read through GetBody, which
// http.NewRequest sets for the in-memory bodies every request of the scanner has; a body without it
// is left unread.
func (g *guard) learnRequest(req *http.Request) {
	if g.secrets == nil {
		return
	}
	var body []byte
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			body, _ = io.ReadAll(io.LimitReader(rc, maxLearnedRequest))
			rc.Close()
		}
	}
	g.secrets.LearnRequest(req.URL, req.Header, body)
}

// maxLearnedRequest bounds what of a request body is read to learn its secrets: the scanner's own
// requests are small.
const maxLearnedRequest = 1 << 20

// learningBody keeps what its reader read of a response body, up to max, and teaches the redactor
// the response's secrets when the body is closed: before Do returns it, and before a library such
// as x/oauth2 builds an error message quoting it.
type learningBody struct {
	io.ReadCloser
	header  http.Header
	secrets *redact.Redactor
	max     int64
	kept    []byte
	learned bool
	// description: the body describes the API (Description); only the JWTs in it are learned.
	description bool
}

func (b *learningBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if room := b.max - int64(len(b.kept)); room > 0 && n > 0 {
		b.kept = append(b.kept, p[:min(int64(n), room)]...)
	}
	return n, err
}

func (b *learningBody) Close() error {
	if !b.learned {
		b.learned = true
		if b.description {
			b.secrets.LearnJWTs(b.kept)
		} else {
			b.secrets.LearnResponse(b.header, b.kept)
		}
		b.kept = nil
	}
	return b.ReadCloser.Close()
}

type descriptionKey struct{}

// Description marks requests made with the returned context as fetching a description of the API
// (its OpenAPI document, an OpenID discovery document, a JWKS): strings under credential-named keys there describe credentials
// ("/oauth/token": {"description": "a token"}) and are not learned as secrets, which would turn
// every "a token" of every report into a label. A JWT in it (an example) still is.
func Description(ctx context.Context) context.Context {
	return context.WithValue(ctx, descriptionKey{}, true)
}

type unmeteredKey struct{}

// Unmetered marks requests made with the returned context as outside the request budget: putting
// back what the scan changed (restoring an identity, removing what it created) must never be
// refused because the scan spent its budget. The allowlist, rate limit and timeouts still apply.
func Unmetered(ctx context.Context) context.Context {
	return context.WithValue(ctx, unmeteredKey{}, true)
}

// take spends one request of the budget, or reports that none is left.
func (g *guard) take() bool {
	for {
		n := g.used.Load()
		if n >= g.budget {
			return false
		}
		if g.used.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// checkRedirect follows redirects within the allowed origins only. A redirect elsewhere is handed back
// as the 3xx response itself, with Response.Redirect saying where it pointed, so that the caller (a
// probe that lists 302 as refused, say) decides what it means.
func (g *guard) checkRedirect(req *http.Request, via []*http.Request) error {
	if origin, err := originOf(req.URL); err != nil || !g.origins[origin] {
		if r, ok := req.Context().Value(refusedRedirectKey{}).(*refusedRedirect); ok {
			r.to = safeURL(req.URL)
		}
		return http.ErrUseLastResponse
	}
	if len(via) > maxRedirects {
		return fmt.Errorf("stopped after %d redirects, the last to %s (hint: the API redirects in a loop; point the request at the final URL)", maxRedirects, safeURL(req.URL))
	}
	return nil
}

// refusedRedirect carries, from checkRedirect back to Do through the request's context, where a
// redirect that was not followed pointed.
type refusedRedirect struct{ to string }

type refusedRedirectKey struct{}

// checkLocation refuses a redirect whose Location is not a URL, before http.Client does: its error
// would quote the whole Location, query and all.
func checkLocation(req *http.Request, resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return nil
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil
	}
	if _, err := req.URL.Parse(loc); err != nil {
		return fmt.Errorf("status %d, a redirect to a Location that is not a URL: %q", resp.StatusCode, redact.URL(loc))
	}
	return nil
}

// cancelOnClose releases the per-request timeout once the caller is done with the body.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// parseOrigin validates an origin from the config and returns its normalised form. Messages show
// the origin without user info, query or fragment, which may hold secrets.
func parseOrigin(s string) (string, error) {
	shown := redact.URL(s)
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error // it quotes the whole URL
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("origin %q: %w", shown, err)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("origin %q: want scheme://host[:port] with no path, query or credentials", shown)
	}
	key, err := originOf(u)
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", shown, err)
	}
	return key, nil
}

// originOf is u's origin as scheme://host:port, lower-cased and with the scheme's default port made
// explicit, so that http://API.example and http://api.example:80 compare equal.
func originOf(u *url.URL) (string, error) {
	if u == nil {
		return "", errors.New("no URL")
	}
	scheme := strings.ToLower(u.Scheme)
	var defaultPort string
	switch scheme {
	case "http":
		defaultPort = "80"
	case "https":
		defaultPort = "443"
	default:
		return "", fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", errors.New("no host")
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}
