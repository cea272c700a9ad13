package client

import (
	"context"
	"time"
)

// Ready waits, without spending anything, until the rate limit would let n requests through back to
// back. A timed sequence such as "revoke, then read at once" calls it first, so that the limiter
// paces whole experiments instead of stretching one halfway through and blurring what it measures.
func (c *Client) Ready(ctx context.Context, n int) error {
	l := c.guard.limiter
	n = min(n, l.Burst())
	for {
		missing := float64(n) - l.Tokens()
		if missing <= 0 {
			return ctx.Err()
		}
		wait := time.Duration(missing / float64(l.Limit()) * float64(time.Second))
		timer := time.NewTimer(max(wait, 100*time.Microsecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}
