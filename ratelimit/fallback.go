package ratelimit

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Fallback asks Primary, and Secondary when Primary fails. After a failure
// it skips Primary for a second, and it logs once per outage.
type Fallback struct {
	Primary, Secondary Limiter
	Logger             *slog.Logger

	skipUntil atomic.Int64
	down      atomic.Bool
}

// Allow decides for key under p.
func (f *Fallback) Allow(ctx context.Context, key string, p Policy) (Decision, error) {
	if time.Now().UnixNano() >= f.skipUntil.Load() {
		d, err := f.Primary.Allow(ctx, key, p)
		if err == nil {
			if f.down.Swap(false) {
				f.Logger.Info("rate limiter: shared budget available again")
			}
			return d, nil
		}
		if ctx.Err() != nil {
			return Decision{}, ctx.Err()
		}
		f.skipUntil.Store(time.Now().Add(time.Second).UnixNano())
		if !f.down.Swap(true) {
			f.Logger.Warn("rate limiter: Redis unavailable; limiting each instance on its own until it returns", "error", err.Error())
		}
	}
	return f.Secondary.Allow(ctx, key, p)
}
