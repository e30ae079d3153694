package ratelimit

import "context"

// Fallback asks Primary, and Secondary when Primary fails. It keeps no
// record of outages: the Redis limiter's connection knows when Redis is down
// and then fails at once.
type Fallback struct {
	Primary, Secondary Limiter
}

// Allow decides for key under p.
func (f *Fallback) Allow(ctx context.Context, key string, p Policy) (Decision, error) {
	d, err := f.Primary.Allow(ctx, key, p)
	if err == nil {
		return d, nil
	}
	if ctx.Err() != nil {
		return Decision{}, ctx.Err()
	}
	return f.Secondary.Allow(ctx, key, p)
}
