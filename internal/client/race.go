package client

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"
)

// The methods below let the race engine (package race), which writes HTTP/2 frames and HTTP/1.1 bytes
// on its own connections, keep to the same allowlist, budget and rate limit as every other request.

// Allow reports, as an error wrapping ErrOrigin, a URL whose origin the config does not name.
func (c *Client) Allow(u *url.URL) error {
	origin, err := originOf(u)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrOrigin, err)
	}
	if !c.guard.origins[origin] {
		return fmt.Errorf("%w: %s", ErrOrigin, origin)
	}
	return nil
}

// Reserve spends n requests of the budget at once, all or none, and then waits until the rate limit
// lets n requests through. A synchronised batch must not be cut short halfway by the budget, and its
// requests leave together, so the rate limit is paid before the batch rather than between requests.
func (c *Client) Reserve(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	g := c.guard
	for {
		used := g.used.Load()
		if used+int64(n) > g.budget {
			return fmt.Errorf("%w (%d requests; a batch of %d needs more than the %d left)", ErrBudget, g.budget, n, g.budget-used)
		}
		if g.used.CompareAndSwap(used, used+int64(n)) {
			break
		}
	}
	// WaitN refuses n above the burst, so the tokens are taken a burst at a time.
	for left := n; left > 0; {
		k := min(left, g.limiter.Burst())
		if err := g.limiter.WaitN(ctx, k); err != nil {
			g.used.Add(-int64(n)) // nothing was sent
			return fmt.Errorf("waiting for the rate limit: %w", err)
		}
		left -= k
	}
	g.logged(Logged{Batch: n})
	return nil
}

// Timeout is the per-request time limit.
func (c *Client) Timeout() time.Duration { return c.guard.timeout }

// MaxResponseBytes is how many bytes of each response body are read.
func (c *Client) MaxResponseBytes() int64 { return c.maxBody }

// MaxHeaderBytes is how many bytes of each response's status line and headers are read.
func (c *Client) MaxHeaderBytes() int64 { return MaxHeaderBytes }

// Reach dials an allowed origin's host and port and hangs up, sending nothing: it tells whether the
// target is up without touching it (tocsin validate). It returns how long the connection took.
func (c *Client) Reach(ctx context.Context, origin string) (time.Duration, error) {
	key, err := parseOrigin(origin)
	if err != nil {
		return 0, err
	}
	if !c.guard.origins[key] {
		return 0, fmt.Errorf("%w: %s", ErrOrigin, key)
	}
	u, _ := url.Parse(key)
	d := net.Dialer{Timeout: c.guard.timeout}
	start := time.Now()
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return 0, err
	}
	took := time.Since(start)
	return took, conn.Close()
}
