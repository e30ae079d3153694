package server

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"userapi/gen"
)

// DefaultHealthMaxAge is how old a /health answer may be: /health is public
// and never limited, so each call must not cost a probe of every dependency.
const DefaultHealthMaxAge = time.Second

// healthCache keeps the latest /health result for maxAge. Callers that find
// it stale share one probe of the dependencies instead of each running one.
type healthCache struct {
	maxAge time.Duration
	probe  func(context.Context) gen.Health
	flight singleflight.Group

	mu     sync.Mutex
	last   gen.Health
	probed time.Time // when last's probe began; zero before the first
}

func newHealthCache(maxAge time.Duration, probe func(context.Context) gen.Health) *healthCache {
	if maxAge <= 0 {
		maxAge = DefaultHealthMaxAge
	}
	return &healthCache{maxAge: maxAge, probe: probe}
}

// get returns a result at most maxAge old, probing when there is none.
func (c *healthCache) get(ctx context.Context) (gen.Health, error) {
	c.mu.Lock()
	last, probed := c.last, c.probed
	c.mu.Unlock()
	if !probed.IsZero() && time.Since(probed) < c.maxAge {
		return last, nil
	}
	ch := c.flight.DoChan("health", func() (any, error) {
		start := time.Now()
		// Not the first caller's context: its leaving must not fail the
		// probe the others wait for. The probe bounds itself.
		h := c.probe(context.WithoutCancel(ctx))
		c.mu.Lock()
		c.last, c.probed = h, start
		c.mu.Unlock()
		return h, nil
	})
	select {
	case r := <-ch:
		return r.Val.(gen.Health), nil
	case <-ctx.Done():
		return gen.Health{}, ctx.Err()
	}
}
