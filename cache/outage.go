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
// bypasses it for retryInterval; the first call after that starts a replay
// of the invalidations missed meanwhile, in the background, and the cache's
// reads and writes bypass Redis until it is done (see Client.available). It
// is the one record of Redis's health: the cache and the rate limiter both
// read it.
type outage struct {
	logger *slog.Logger

	until atomic.Int64 // unix nanos; bypass Redis until then
	// Each failure and each new connection starts an epoch in which
	// invalidations may have been missed; Redis is used again once those of
	// the latest epoch are replayed. A failure during a replay starts
	// another, so that replay does not count.
	epoch    atomic.Uint64
	caughtUp atomic.Uint64 // the last epoch replayed
	failed   atomic.Bool   // a call failed since Redis was last usable (for the log lines)
	// full is set by a new connection: the next replay must cover the
	// log's whole window, since the Redis at the other end may hold entries
	// whose invalidation it never sent us. After a failure on a connection
	// that stayed up, the log since this client's cursor is enough.
	full atomic.Bool

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
	o.epoch.Add(1)
	o.mu.Lock()
	o.cancel()
	o.cut, o.cancel = context.WithCancel(context.Background())
	o.mu.Unlock()
	if !o.failed.Swap(true) {
		o.logger.Warn("cache unavailable: serving from the database, and rate limits are per instance until Redis returns", "error", err.Error())
	}
}

// connected records a new connection, or a lost one (rueidis reconnects by
// itself on the next call): what was missed meanwhile must be replayed
// first. A Redis restarted from its persisted data holds entries from before
// the outage, however short it was.
func (o *outage) connected() {
	o.full.Store(true)
	o.epoch.Add(1)
}

// needsReplay reports whether missed invalidations must be replayed before
// Redis is used, and the epoch to pass to replayed once they are.
func (o *outage) needsReplay() (uint64, bool) {
	e := o.epoch.Load()
	return e, e != o.caughtUp.Load()
}

// replayed records that what was missed up to epoch e is replayed: Redis is
// usable again unless it failed since.
func (o *outage) replayed(e uint64) {
	o.caughtUp.Store(e)
	if o.epoch.Load() == e && o.failed.Swap(false) {
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
