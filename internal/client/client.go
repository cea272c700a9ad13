// Package client is the scanner's only way onto the network: an HTTP client that refuses origins the
// config does not name, never follows a redirect off those origins, spends a request budget, keeps to
// a rate limit, bounds each request's time and the bytes read of each response, and stamps when each
// request was sent and its response received.
package client

import (
	"context"
	"errors"
	"net/http"
	"time"
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
}

// Client is safe for concurrent use.
type Client struct {
	// implemented by the client package
}

// New validates o and returns a client.
func New(o Options) (*Client, error) { panic("unimplemented") }

// Response is a response whose body has been read (up to the cap) and closed.
type Response struct {
	Status    int
	Header    http.Header
	Body      []byte
	Truncated bool      // the body was longer than MaxResponseBytes
	Sent      time.Time // just before the request was written
	Received  time.Time // when the response headers arrived
}

// Do sends req within the client's limits. It fails without sending when req's origin is not
// allowed (ErrOrigin) or the budget is spent (ErrBudget).
func (c *Client) Do(ctx context.Context, req *http.Request) (*Response, error) {
	panic("unimplemented")
}

// HTTPClient returns an *http.Client bound by the same allowlist, budget and rate limit, for libraries
// such as golang.org/x/oauth2 that want one.
func (c *Client) HTTPClient() *http.Client { panic("unimplemented") }

// Sent reports how many requests the client has sent.
func (c *Client) Sent() int { panic("unimplemented") }
