package cache

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// retryInterval is how long Redis is bypassed after it fails (or does not
// answer within the deadline), and how often a client that could not connect
// at start-up tries again.
const retryInterval = time.Second

// errCut is why a call in flight was abandoned: another call found Redis
// failing meanwhile.
var errCut = errors.New("cache: Redis failed during the call")

// outage tracks whether Redis may be used. After a failure every caller
// bypasses it for retryInterval; the first call after that replays the
// invalidations missed meanwhile before Redis is trusted again. It is the
// one record of Redis's health: the cache and the rate limiter both read it.
type outage struct {
	logger *slog.Logger

	until  atomic.Int64 // unix nanos; bypass Redis until then
	stale  atomic.Bool  // invalidations may have been missed: replay them before Redis is used
	failed atomic.Bool  // a call failed since Redis was last usable (for the "available again" line)

	mu     sync.Mutex
	cut    context.Context // cancelled at the next failure
	cancel context.CancelFunc
}

func newOutage(logger *slog.Logger) *outage {
	o := &outage{logger: logger}
	o.cut, o.cancel = context.WithCancel(context.Background())
	return o
}

// bypassing reports whether Redis failed within the last retryInterval.
func (o *outage) bypassing() bool { return time.Now().UnixNano() < o.until.Load() }

// fail records a failure of Redis: callers bypass it for a while, and calls
// still waiting on it give up (see untilFailure).
func (o *outage) fail(err error) {
	o.until.Store(time.Now().Add(retryInterval).UnixNano())
	o.failed.Store(true)
	o.mu.Lock()
	o.cancel()
	o.cut, o.cancel = context.WithCancel(context.Background())
	o.mu.Unlock()
	if !o.stale.Swap(true) {
		o.logger.Warn("cache unavailable: serving from the database, and rate limits are per instance until Redis returns", "error", err.Error())
	}
}

// connected records a new connection: what was missed before it must be
// replayed first.
func (o *outage) connected() { o.stale.Store(true) }

// needsReplay reports whether missed invalidations must be replayed before
// Redis is used.
func (o *outage) needsReplay() bool { return o.stale.Load() }

// replayed records that Redis is usable again.
func (o *outage) replayed() {
	if o.stale.Swap(false) && o.failed.Swap(false) {
		o.logger.Info("cache available again")
	}
}

// untilFailure returns ctx, cancelled as well when Redis next fails: for
// calls that cannot take a short deadline because they also wait for a
// load elsewhere (rueidisaside's lock), so a hung Redis still releases them
// as soon as any other call notices it.
func (o *outage) untilFailure(ctx context.Context) (context.Context, context.CancelFunc) {
	o.mu.Lock()
	cut := o.cut
	o.mu.Unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(cut, func() { cancel(errCut) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}
