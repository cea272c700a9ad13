// Package client is the scanner's only way onto the network: an HTTP client that refuses origins the
// config does not name, never follows a redirect off those origins, spends a request budget, keeps to
// a rate limit, bounds each request's time and the bytes read of each response, and stamps when each
// request was sent and its response received.
//
// Every rule is enforced in the client's http.RoundTripper, not in Do, so that the *http.Client handed
// to libraries (HTTPClient, used by golang.org/x/oauth2) obeys exactly the same rules.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"time"

	"github.com/tocsin/tocsin/internal/redact"
)

// Errors a caller may test with errors.Is.
var (
	ErrOrigin = errors.New("origin not allowed by the config")
	ErrBudget = errors.New("request budget spent")
)

// Options bound what the client may do. Zero values take the defaults documented on each field.
type Options struct {
	Origins          []string      // allowed origins, scheme://host[:port]; required
	Budget           int           // total requests; default 2000
	Rate             float64       // requests per second; default 200
	Timeout          time.Duration // per request; default 10s
	MaxResponseBytes int64         // body bytes read per response; default 1 MiB
	// Redactor, when set, learns the secrets of every request sent and every response read, by this
	// client, its HTTPClient and the race engine, before anyone else sees them (redact.LearnRequest,
	// LearnResponse): a cookie, a token in a setup's answer, a credential-named field.
	Redactor *redact.Redactor
}

// Defaults for zero Options fields.
const (
	DefaultBudget           = 2000
	DefaultRate             = 200
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 1 << 20
)

// MaxHeaderBytes bounds the status line and header section read of each response, by this client and
// by the race engine alike: net/http's own default for servers, and ten times less than its client
// default, since an API's headers are a few kilobytes and a hostile server's are endless.
const MaxHeaderBytes = 1 << 20

// maxRedirects is how many same-origin redirects one request may follow.
const maxRedirects = 5

// maxDrainBytes bounds how much of an over-long body is read and thrown away so that its connection can
// be reused; past this, closing the connection is cheaper than reading on.
const maxDrainBytes = 256 << 10

// Client is safe for concurrent use.
type Client struct {
	guard   *guard
	http    *http.Client // used by Do and returned by HTTPClient
	maxBody int64
}

// New validates o and returns a client.
func New(o Options) (*Client, error) {
	if len(o.Origins) == 0 {
		return nil, errors.New("client: no origins allowed (hint: list the target's origins under target.origins)")
	}
	origins := make(map[string]bool, len(o.Origins))
	for _, s := range o.Origins {
		key, err := parseOrigin(s)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		origins[key] = true
	}
	if o.Budget < 0 || o.Rate < 0 || o.Timeout < 0 || o.MaxResponseBytes < 0 {
		return nil, errors.New("client: budget, rate, timeout and max response bytes must not be negative")
	}
	if o.Budget == 0 {
		o.Budget = DefaultBudget
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxResponseBytes == 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	g := newGuard(origins, int64(o.Budget), o.Rate, o.Timeout)
	g.secrets, g.maxBody = o.Redactor, o.MaxResponseBytes
	return &Client{
		guard: g,
		// No Timeout here: the guard bounds each hop, and Do's body read, itself. No Jar: cookies set by
		// one identity's responses must not ride along with another identity's requests.
		http:    &http.Client{Transport: g, CheckRedirect: g.checkRedirect},
		maxBody: o.MaxResponseBytes,
	}, nil
}

// Response is a response whose body has been read (up to the cap) and closed.
type Response struct {
	Status    int
	Header    http.Header
	Body      []byte
	Truncated bool      // the body was longer than MaxResponseBytes
	Sent      time.Time // just before the request was written
	Received  time.Time // when the response headers arrived
	// Redirect is set when this response is a redirect that was not followed because it leaves the
	// allowed origins: where it pointed, resolved, without user info, query or fragment.
	Redirect string
}

// StatusText names the status for a message: the number, and for a redirect that was not followed,
// where it pointed.
func (r *Response) StatusText() string {
	if r.Redirect == "" {
		return strconv.Itoa(r.Status)
	}
	return fmt.Sprintf("%d, a redirect to %s, not followed: that origin is not in target.origins", r.Status, r.Redirect)
}

// Do sends req within the client's limits. It fails without sending when req's origin is not
// allowed (ErrOrigin) or the budget is spent (ErrBudget).
//
// Do uses ctx, not req's own context. It follows up to 5 redirects within the allowed origins; a
// redirect elsewhere is returned as the 3xx response itself. Sent and Received describe the last hop:
// Sent is when the transport got the connection the request is written on, immediately before it writes
// (on a kept-alive connection, microseconds before the bytes leave); Received is when the first
// response byte arrived. Neither includes time spent waiting on the rate limit or dialling.
func (c *Client) Do(ctx context.Context, req *http.Request) (*Response, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	where := method + " " + safeURL(req.URL)

	st := &stamps{}
	ctx = context.WithValue(ctx, stampsKey{}, st)
	ctx = httptrace.WithClientTrace(ctx, st.trace())
	refused := &refusedRedirect{}
	ctx = context.WithValue(ctx, refusedRedirectKey{}, refused)
	resp, err := c.http.Do(req.WithContext(ctx))
	if err != nil {
		// http.Client's *url.Error prints the full URL, query included; the query may carry secrets,
		// so the message is rebuilt around the stripped URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	defer resp.Body.Close()
	sent, received := st.get()
	if received.IsZero() {
		received = time.Now()
	}

	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading response body: %w", where, err)
	}
	truncated := int64(len(body)) > c.maxBody
	if truncated {
		body = body[:c.maxBody]
	}
	// Reading to EOF before Close is what lets the transport put the connection back in its idle
	// pool; a closed-unread body costs a new connection (and a handshake) on the next request, which
	// would blur the timings the scanner measures.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))

	return &Response{
		Status:    resp.StatusCode,
		Header:    resp.Header,
		Body:      body,
		Truncated: truncated,
		Sent:      sent,
		Received:  received,
		Redirect:  refused.to,
	}, nil
}

// HTTPClient returns an *http.Client bound by the same allowlist, budget and rate limit, for libraries
// such as golang.org/x/oauth2 that want one.
//
// Its transport also applies the per-request timeout. It does not cap response bodies: that is left to
// the library (x/oauth2 reads at most 1 MiB of a token response).
func (c *Client) HTTPClient() *http.Client {
	return &http.Client{Transport: c.guard, CheckRedirect: c.guard.checkRedirect}
}

// Redactor is the redactor the client teaches the secrets of its traffic (Options.Redactor), or nil.
func (c *Client) Redactor() *redact.Redactor { return c.guard.secrets }

// Sent reports how many requests the client has sent, within the budget or not (Unmetered).
func (c *Client) Sent() int { return int(c.guard.used.Load() + c.guard.unmetered.Load()) }

// safeURL is u for messages: no query, fragment or user info, which may hold secrets.
func safeURL(u *url.URL) string {
	if u == nil {
		return "<nil URL>"
	}
	return redact.URL(u.String())
}
