package guard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// revokedChannel is the Redis pub/sub channel revocations are published on.
const revokedChannel = "guard:revoked"

// WithRedis makes [Guard.Revoke] publish each revocation on Redis, and [Guard.Listen] receive the
// other replicas' revocations, so that their caches refuse a revoked grant's tokens at once.
//
// Redis is never the last word: it only speeds up denials. A revocation it loses (Redis pub/sub
// delivers at most once, and replication is asynchronous) costs a round trip to the store, which
// refuses the grant anyway; a replica cut off from Redis empties its cache and stops using it until
// it is back.
func WithRedis(rdb *redis.Client) Option {
	return func(g *Guard) { g.redis = rdb }
}

// publishTimeout bounds telling the other replicas; a publish that fails costs them only speed.
const publishTimeout = time.Second

func (g *Guard) publishRevoked(ctx context.Context, grantID string) {
	if g.redis == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	_ = g.redis.Publish(ctx, revokedChannel, grantID).Err()
}

// listenPing is how often Listen checks a quiet subscription is still alive.
const listenPing = 5 * time.Second

// Listen receives revocations published by other replicas (see [WithRedis]) until ctx ends; run it
// in a goroutine of its own. Whenever the subscription is lost, Listen empties the cache and stops
// using it, since revocations may be missed; it resubscribes, empties the cache again and uses it
// once more. It returns ctx's error, or an error at once if the Guard has no Redis.
func (g *Guard) Listen(ctx context.Context) error {
	if err := g.usable(); err != nil {
		return err
	}
	if g.redis == nil {
		return errors.New("guard: listen: no Redis client (hint: create the Guard with WithRedis)")
	}
	backoff := 50 * time.Millisecond
	for {
		err := g.listenOnce(ctx)
		g.cache.flush(true)
		if ctx.Err() != nil {
			return fmt.Errorf("guard: listen: %w", ctx.Err())
		}
		if err != nil {
			backoff = min(backoff*2, 2*time.Second)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("guard: listen: %w", ctx.Err())
		case <-time.After(backoff):
		}
	}
}

// listenOnce subscribes and applies revocations until the subscription fails.
func (g *Guard) listenOnce(ctx context.Context) error {
	sub := g.redis.Subscribe(ctx, revokedChannel)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription's confirmation
		return err
	}
	// Subscribed: whatever was published while we were not is lost, so start from nothing.
	g.cache.flush(false)
	for {
		msg, err := sub.ReceiveTimeout(ctx, listenPing)
		if err != nil {
			var netErr interface{ Timeout() bool }
			if errors.As(err, &netErr) && netErr.Timeout() && ctx.Err() == nil {
				if err := sub.Ping(ctx); err != nil {
					return err
				}
				continue
			}
			return err
		}
		if m, ok := msg.(*redis.Message); ok {
			g.cache.markRevoked(m.Payload)
		}
	}
}
