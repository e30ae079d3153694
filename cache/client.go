// Package cache serves users and API keys from process memory, then Redis,
// then the store it wraps. Reads use rueidis client-side caching: Redis
// tracks what each instance holds and tells it when a key changes, so a hot
// read costs no network round trip and a write through any instance is seen
// by all at once. Misses go through rueidisaside, whose per-key lock in Redis
// lets one caller in the whole fleet load a key while the others wait for it,
// and whose conditional SET refuses to store a row that a writer invalidated
// while it was being loaded.
//
// Client owns the connection: connecting, noticing Redis failing or hanging,
// replaying invalidations it missed, and the invalidation round trip. Users
// and Keys are thin decorators of their stores over one generic read path.
//
// Redis is optional: when it is unreachable, or does not answer within
// Options.Timeout, every call goes to the store, and the cache comes back by
// itself.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidisaside"

	"userapi/internal/lazydeadline"
	"userapi/store"
)

// Options configures the connection to Redis and the entries kept in it.
type Options struct {
	// URL is the Redis URL (redis://, rediss:// or unix://).
	URL string
	// Prefix starts every key, so that deployments (or tests) sharing a
	// Redis do not see each other's entries. Defaults to "userapi:".
	Prefix string
	// TTL bounds how long a user's entry lives. Writes invalidate entries at
	// once; the TTL only limits memory held by users nobody reads. Defaults
	// to 5m.
	TTL time.Duration
	// NegativeTTL is how long "no such user" (or key) is remembered.
	// Defaults to 10s.
	NegativeTTL time.Duration
	// Timeout bounds each Redis round trip. A call that takes longer counts
	// as Redis failing: it is bypassed for a second. Defaults to 50ms.
	Timeout time.Duration
	// Logger receives one line per change of the cache's state.
	Logger *slog.Logger
	// Log, when set, is the durable record of invalidations that the store
	// writes in each change's transaction. The client deletes every key it
	// names that this client has not deleted yet (see follow), and all those
	// of the last TTL before using Redis again after losing it. Without it,
	// a write through an instance that cannot reach Redis leaves other
	// instances serving the old entry until that instance reaches Redis
	// again, or until the TTL.
	Log *store.InvalidationLog
	// Poll is how often Log is read besides when PostgreSQL says it grew
	// (LISTEN/NOTIFY), in case a notification is lost. Defaults to 1s.
	Poll time.Duration
}

// ErrUnavailable is Client.Do's answer while Redis is known to be down.
var ErrUnavailable = errors.New("cache: Redis unavailable")

// Client is the connection to Redis that the caches and the rate limiter
// share.
type Client struct {
	opts   Options
	logger *slog.Logger
	aside  atomic.Pointer[rueidisaside.CacheAsideClient] // nil until connected
	outage *outage
	inv    invalidations
	log    logCursor

	// replayMu guards the replay of missed invalidations, which runs in
	// the background (see available); replayDone is closed when the last
	// one started ends.
	replayMu   sync.Mutex
	replaying  bool
	replayDone chan struct{}
	closed     bool

	life      context.Context // ends at Close
	stop      context.CancelFunc
	done      chan struct{}
	followers sync.WaitGroup
	closeOnce sync.Once
}

// NewClient connects to the Redis at opts.URL. It never fails on Redis being
// unreachable: it logs one line and keeps trying in the background, and
// meanwhile every call bypasses Redis. It fails only on a URL it cannot parse.
func NewClient(opts Options) (*Client, error) {
	if opts.Prefix == "" {
		opts.Prefix = "userapi:"
	}
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Minute
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = 10 * time.Second
	}
	opts.NegativeTTL = min(opts.NegativeTTL, opts.TTL)
	if opts.Timeout <= 0 {
		opts.Timeout = 50 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	clientOpt, err := rueidis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("parse Redis URL: %w", err)
	}
	// Fail fast on a dead or unreachable Redis: the store answers meanwhile.
	// ConnWriteTimeout also closes a connection whose Redis stops answering
	// pings (hung, not gone), which releases any call still waiting on it.
	clientOpt.Dialer.Timeout = retryInterval
	clientOpt.ConnWriteTimeout = retryInterval
	clientOpt.DisableRetry = true

	logger := opts.Logger.With("component", "cache")
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		opts:   opts,
		logger: logger,
		outage: newOutage(logger),
		inv:    invalidations{pending: make(map[string]struct{}), waiters: make(map[string][]chan struct{})},
		life:   ctx,
		stop:   cancel,
		done:   make(chan struct{}),
	}
	go c.connect(ctx, clientOpt)
	if opts.Log != nil {
		c.followers.Go(func() { c.follow(ctx) })
	}
	return c, nil
}

// connect makes the Redis client, retrying until it works or Close is called.
func (c *Client) connect(ctx context.Context, opt rueidis.ClientOption) {
	defer close(c.done)
	for attempt := 0; ; attempt++ {
		a, err := rueidisaside.NewClient(rueidisaside.ClientOption{
			ClientOption: opt,
			ClientBuilder: func(opt rueidis.ClientOption) (rueidis.Client, error) {
				// Also hear invalidations ourselves: writers wait for theirs.
				asides := opt.OnInvalidations
				opt.OnInvalidations = func(msgs []rueidis.RedisMessage) {
					asides(msgs)
					c.inv.heard(msgs)
					if msgs == nil {
						// The connection was lost (or Redis flushed): rueidis
						// reconnects on the next call, maybe to a Redis that
						// restarted with old entries. Replay first.
						c.outage.connected()
					}
				}
				return rueidis.NewClient(opt)
			},
		})
		if err == nil {
			c.outage.connected() // the first call replays what was missed before this
			c.aside.Store(&a)
			c.logger.Info("cache connected", "redis", strings.Join(opt.InitAddress, ","))
			return
		}
		if attempt == 0 {
			c.logger.Warn("cache unavailable: Redis is unreachable; serving from the database and retrying in the background",
				"redis", strings.Join(opt.InitAddress, ","), "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retryInterval):
		}
	}
}

// Close stops the background work and closes the Redis connection. Calls
// after the first do nothing.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		c.stop()
		<-c.done
		c.followers.Wait()
		c.replayMu.Lock()
		c.closed = true
		replay := c.replayDone
		c.replayMu.Unlock()
		if replay != nil {
			<-replay
		}
		if a := c.aside.Load(); a != nil {
			(*a).Close()
		}
	})
}

// Ping reports whether Redis answers within the deadline; /health shows it.
func (c *Client) Ping(ctx context.Context) error {
	a := c.aside.Load()
	if a == nil {
		return errors.New("not connected")
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	rc := (*a).Client()
	return rc.Do(ctx, rc.B().Ping().Build()).Error()
}

// Available reports whether calls use Redis now: it is connected, has not
// failed within the last retryInterval, and no invalidation missed before
// remains to be replayed. A replay that is due starts.
func (c *Client) Available() bool { return c.available() != nil }

// Do runs call on the connection with the deadline, or returns
// ErrUnavailable at once while Redis is known to be down. An error of call,
// unless the caller's context ended, counts as Redis failing.
//
// Missed invalidations do not concern its callers, which keep no cached
// entries (the rate limiter, the replicas' write positions): it uses Redis
// while a replay runs, so that budgets stay shared across instances then.
func (c *Client) Do(ctx context.Context, call func(ctx context.Context, rc rueidis.Client) error) error {
	a := c.reachable()
	if a == nil {
		return ErrUnavailable
	}
	return c.do(ctx, a.Client(), call)
}

// do runs one round trip with the deadline. A failure or timeout of Redis
// (not a nil reply, not the caller leaving) starts an outage.
func (c *Client) do(ctx context.Context, rc rueidis.Client, call func(ctx context.Context, rc rueidis.Client) error) error {
	tctx, cancel := lazydeadline.With(ctx, time.Now().Add(c.opts.Timeout))
	defer cancel()
	err := call(tctx, rc)
	if err == nil || rueidis.IsRedisNil(err) || ctx.Err() != nil {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %s: %w", c.opts.Timeout, err)
	}
	c.failed(err)
	return err
}

// failed records that Redis failed: calls bypass it for a while.
func (c *Client) failed(err error) { c.outage.fail(err) }

// available returns the connection unless Redis is absent, failed within
// the last retryInterval, or may hold entries older than their rows. In the
// last case it starts deleting the keys whose invalidation may have been
// missed (see replayMissed), and callers bypass Redis until that is done:
// after a busy outage it may take seconds, which no request should wait for.
func (c *Client) available() rueidisaside.CacheAsideClient {
	a := c.reachable()
	if a == nil {
		return nil
	}
	if _, stale := c.outage.needsReplay(); stale || c.inv.dirty.Load() {
		c.startReplay(a.Client())
		return nil
	}
	return a
}

// reachable returns the connection unless Redis is absent or failed within
// the last retryInterval.
func (c *Client) reachable() rueidisaside.CacheAsideClient {
	a := c.aside.Load()
	if a == nil || c.outage.bypassing() {
		return nil
	}
	return *a
}

// startReplay runs replayMissed in the background unless it runs already.
func (c *Client) startReplay(rc rueidis.Client) {
	c.replayMu.Lock()
	defer c.replayMu.Unlock()
	if c.replaying || c.closed {
		return
	}
	c.replaying = true
	done := make(chan struct{})
	c.replayDone = done
	go func() {
		defer close(done)
		c.replayMissed(rc)
	}()
}

// replayMissed replays the invalidations missed up to now, then again while
// writes made meanwhile (which bypassed Redis) left keys to delete, until
// none are left, Redis fails, or the client closes. After a failure to read
// the log it waits retryInterval before the next call may try again.
func (c *Client) replayMissed(rc rueidis.Client) {
	for {
		e, _ := c.outage.needsReplay()
		err := c.replay(c.life, rc)
		if err == nil {
			c.outage.replayed(e)
		} else if !c.outage.bypassing() {
			select {
			case <-c.life.Done():
			case <-time.After(retryInterval):
			}
		}
		c.replayMu.Lock()
		_, stale := c.outage.needsReplay()
		again := err == nil && c.life.Err() == nil && !c.outage.bypassing() && (stale || c.inv.dirty.Load())
		c.replaying = again
		c.replayMu.Unlock()
		if !again {
			return
		}
	}
}
