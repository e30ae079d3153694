// Package cache serves users from process memory, then Redis, then the
// store it wraps. Reads use rueidis client-side caching: Redis tracks what
// each instance holds and tells it when a key changes, so a hot read costs no
// network round trip and a write through any instance is seen by all at once.
// Misses go through rueidisaside, whose per-key lock in Redis lets one caller
// in the whole fleet load a key while the others wait for it, and whose
// conditional SET refuses to store a row that a writer invalidated while it
// was being loaded.
//
// Redis is optional: when it is unreachable every call goes to the store, and
// the cache comes back by itself.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidisaside"

	"userapi/store"
)

// Options configures the cache.
type Options struct {
	// URL is the Redis URL (redis://, rediss:// or unix://).
	URL string
	// Prefix starts every key, so that deployments (or tests) sharing a
	// Redis do not see each other's entries. Defaults to "userapi:".
	Prefix string
	// TTL bounds how long an entry lives. Writes invalidate entries at once;
	// the TTL only limits memory held by users nobody reads. Defaults to 5m.
	TTL time.Duration
	// NegativeTTL is how long "no such user" is remembered. Defaults to 10s.
	NegativeTTL time.Duration
	// Logger receives one line per change of the cache's state.
	Logger *slog.Logger
}

// retryInterval is how long the cache is bypassed after Redis fails, and how
// often a cache that could not connect at start-up tries again.
const retryInterval = time.Second

// maxPendingInvalidations bounds the keys remembered while Redis is down, to
// be deleted when it returns.
const maxPendingInvalidations = 10000

// negative is the cached value for "no user has this id".
const negative = "-"

// Users is a store.UserService that caches single-user reads.
type Users struct {
	next   store.UserService
	opts   Options
	logger *slog.Logger

	client    atomic.Pointer[rueidisaside.CacheAsideClient] // nil until connected
	downUntil atomic.Int64                                  // unix nanos; bypass Redis until then
	down      atomic.Bool                                   // pending invalidations must be flushed before the cache is used
	outage    atomic.Bool                                   // a Redis call failed since the cache was last usable

	mu       sync.Mutex
	pending  map[string]struct{} // invalidations that could not reach Redis
	overflow bool                // pending lost keys: entries may be stale until their TTL

	hits struct{ memory, redis, database, bypassed atomic.Uint64 }

	decoded      sync.Map // user id -> *decodedEntry
	decodedCount atomic.Int64

	waitMu  sync.Mutex
	waiters map[string][]chan struct{} // writers waiting to hear their invalidation

	stop context.CancelFunc
	done chan struct{}
}

var _ store.UserService = (*Users)(nil)

// NewUsers wraps next with a cache in the Redis at opts.URL. It never fails
// on Redis being unreachable: it logs one line, serves from next, and keeps
// trying to connect in the background. It fails only on a URL it cannot parse.
func NewUsers(next store.UserService, opts Options) (*Users, error) {
	if opts.Prefix == "" {
		opts.Prefix = "userapi:"
	}
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Minute
	}
	if opts.NegativeTTL <= 0 {
		opts.NegativeTTL = 10 * time.Second
	}
	if opts.NegativeTTL > opts.TTL {
		opts.NegativeTTL = opts.TTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	clientOpt, err := rueidis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("parse Redis URL: %w", err)
	}
	// Fail fast on a dead or unreachable Redis: the store answers meanwhile.
	clientOpt.Dialer.Timeout = retryInterval
	clientOpt.ConnWriteTimeout = retryInterval
	clientOpt.DisableRetry = true

	ctx, cancel := context.WithCancel(context.Background())
	u := &Users{
		next:    next,
		opts:    opts,
		logger:  opts.Logger.With("component", "cache"),
		pending: make(map[string]struct{}),
		waiters: make(map[string][]chan struct{}),
		stop:    cancel,
		done:    make(chan struct{}),
	}
	go u.connect(ctx, clientOpt)
	return u, nil
}

// connect makes the Redis client, retrying until it works or Close is called.
func (u *Users) connect(ctx context.Context, opt rueidis.ClientOption) {
	defer close(u.done)
	for attempt := 0; ; attempt++ {
		c, err := rueidisaside.NewClient(rueidisaside.ClientOption{
			ClientOption: opt,
			ClientBuilder: func(opt rueidis.ClientOption) (rueidis.Client, error) {
				// Also hear invalidations ourselves: writers wait for theirs.
				asides := opt.OnInvalidations
				opt.OnInvalidations = func(msgs []rueidis.RedisMessage) {
					asides(msgs)
					u.onInvalidation(msgs)
				}
				return rueidis.NewClient(opt)
			},
		})
		if err == nil {
			u.down.Store(true) // the first call flushes what was missed before this
			u.client.Store(&c)
			u.logger.Info("cache connected", "redis", redactedAddr(opt))
			return
		}
		if attempt == 0 {
			u.logger.Warn("cache unavailable: Redis is unreachable; serving from the database and retrying in the background",
				"redis", redactedAddr(opt), "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retryInterval):
		}
	}
}

// Close stops the background work and closes the Redis client.
func (u *Users) Close() {
	u.stop()
	<-u.done
	if c := u.client.Load(); c != nil {
		(*c).Close()
	}
}

// RedisClient returns the connection to Redis, or nil until there is one,
// so that other users of Redis share it.
func (u *Users) RedisClient() rueidis.Client {
	if c := u.client.Load(); c != nil {
		return (*c).Client()
	}
	return nil
}

// Ping reports whether Redis answers; /health shows it.
func (u *Users) Ping(ctx context.Context) error {
	c := u.client.Load()
	if c == nil {
		return errors.New("not connected")
	}
	return (*c).Client().Do(ctx, (*c).Client().B().Ping().Build()).Error()
}

// available returns the client unless Redis is absent or failed within the
// last retryInterval. The first call after an outage first deletes the keys
// whose invalidation failed meanwhile, so that no entry written before the
// outage is trusted while a newer row exists.
func (u *Users) available(ctx context.Context) rueidisaside.CacheAsideClient {
	c := u.client.Load()
	if c == nil || time.Now().UnixNano() < u.downUntil.Load() {
		return nil
	}
	if u.down.Load() {
		if err := u.flushPending(ctx); err != nil {
			u.failed(err)
			return nil
		}
		if u.down.Swap(false) && u.outage.Swap(false) {
			u.logger.Info("cache available again")
		}
	}
	return *c
}

// failed records a Redis failure: calls bypass the cache for a while.
func (u *Users) failed(err error) {
	u.downUntil.Store(time.Now().Add(retryInterval).UnixNano())
	u.outage.Store(true)
	if !u.down.Swap(true) {
		u.logger.Warn("cache unavailable: serving from the database", "error", err.Error())
	}
}

func (u *Users) key(id int64) string {
	return u.opts.Prefix + "user:" + strconv.FormatInt(id, 10)
}

// loadError carries an error of the store through rueidisaside, so that it
// is not mistaken for a failure of Redis.
type loadError struct{ err error }

func (e *loadError) Error() string { return e.err.Error() }
func (e *loadError) Unwrap() error { return e.err }

// Stats counts where Get's answers came from.
type Stats struct {
	Memory   uint64 // this process's memory, no network round trip
	Redis    uint64 // Redis, one round trip
	Database uint64 // the store, after a miss
	Bypassed uint64 // the store, because Redis was unavailable
}

// Stats returns the counts since the cache was made.
func (u *Users) Stats() Stats {
	return Stats{Memory: u.hits.memory.Load(), Redis: u.hits.redis.Load(), Database: u.hits.database.Load(), Bypassed: u.hits.bypassed.Load()}
}

// Get returns the user with this id from memory, Redis or the store, in that
// order. Returns store.ErrNotFound if there is none.
func (u *Users) Get(ctx context.Context, id int64) (store.User, error) {
	c := u.available(ctx)
	if c == nil {
		u.hits.bypassed.Add(1)
		return u.next.Get(ctx, id)
	}
	val, from, err := lookup(ctx, c, u.key(id), u.opts.TTL, func(ctx context.Context) (string, error) {
		user, err := u.next.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			rueidisaside.OverrideCacheTTL(ctx, u.opts.NegativeTTL)
			return negative, nil
		}
		if err != nil {
			return "", err
		}
		return encode(user)
	})
	var le *loadError
	if errors.As(err, &le) {
		return store.User{}, le.err
	}
	if err != nil {
		return u.bypass(ctx, id, err)
	}
	switch from {
	case fromMemory:
		u.hits.memory.Add(1)
	case fromRedis:
		u.hits.redis.Add(1)
	case fromLoad:
		u.hits.database.Add(1)
	}
	return u.fromEntry(ctx, id, val)
}

// source is where lookup found a value.
type source int

const (
	fromMemory source = iota // this process's memory
	fromRedis                // Redis, or another caller that loaded it meanwhile
	fromLoad                 // load, after a miss
)

// lookup returns key's value from memory, Redis, or else load, which runs
// under rueidisaside's per-key lock and whose result is stored for ttl.
// Errors of load come back as *loadError; any other error is Redis's.
func lookup(ctx context.Context, c rueidisaside.CacheAsideClient, key string, ttl time.Duration, load func(ctx context.Context) (string, error)) (string, source, error) {
	// Fast path: a value held in memory or in Redis. Only a miss, or a key
	// another caller is loading, takes the locking path below.
	rc := c.Client()
	res := rc.DoCache(ctx, rc.B().Get().Key(key).Cache(), ttl)
	val, err := res.ToString()
	switch {
	case err == nil && !strings.HasPrefix(val, rueidisaside.PlaceholderPrefix):
		if res.IsCacheHit() {
			return val, fromMemory, nil
		}
		return val, fromRedis, nil
	case err != nil && !rueidis.IsRedisNil(err):
		return "", 0, err
	}

	loaded := false
	val, err = c.Get(ctx, ttl, key, func(ctx context.Context, _ string) (string, error) {
		loaded = true
		val, err := load(ctx)
		if err != nil {
			return "", &loadError{err}
		}
		return val, nil
	})
	if err != nil {
		return "", 0, err
	}
	if loaded {
		return val, fromLoad, nil
	}
	return val, fromRedis, nil
}

// bypass answers from the store after Redis failed.
func (u *Users) bypass(ctx context.Context, id int64, err error) (store.User, error) {
	if ctx.Err() != nil {
		return store.User{}, ctx.Err()
	}
	u.failed(err)
	u.hits.bypassed.Add(1)
	return u.next.Get(ctx, id)
}

// fromEntry decodes a cached value. An entry that does not decode is dropped
// and the store answers instead.
func (u *Users) fromEntry(ctx context.Context, id int64, val string) (store.User, error) {
	if val == negative {
		return store.User{}, fmt.Errorf("cache: user %d: %w", id, store.ErrNotFound)
	}
	user, err := u.decode(id, val)
	if err != nil {
		u.logger.Error("cache entry does not decode; dropping it", "key", u.key(id), "error", err.Error())
		u.invalidate(ctx, id)
		return u.next.Get(ctx, id)
	}
	return user, nil
}

// GetMany answers from memory and Redis with one multi-get, and asks the
// store once for the rest.
//
// It does not store what it loaded: doing so safely needs rueidisaside's
// per-key lock, which only single-key reads take. A plain SET here could put
// back a row a writer had just invalidated. Single reads warm the cache.
func (u *Users) GetMany(ctx context.Context, ids []int64) ([]store.User, error) {
	c := u.available(ctx)
	if c == nil {
		return u.next.GetMany(ctx, ids)
	}
	rc := c.Client()
	cmds := make([]rueidis.CacheableTTL, len(ids))
	for i, id := range ids {
		cmds[i] = rueidis.CT(rc.B().Get().Key(u.key(id)).Cache(), u.opts.TTL)
	}
	found := make([]store.User, 0, len(ids))
	var misses []int64
	for i, res := range rc.DoMultiCache(ctx, cmds...) {
		val, err := res.ToString()
		switch {
		case rueidis.IsRedisNil(err):
			misses = append(misses, ids[i])
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			u.failed(err)
			return u.next.GetMany(ctx, ids)
		case val == negative:
			// Known not to exist.
		case strings.HasPrefix(val, rueidisaside.PlaceholderPrefix):
			misses = append(misses, ids[i]) // someone is loading it right now
		default:
			user, err := u.decode(ids[i], val)
			if err != nil {
				misses = append(misses, ids[i])
				continue
			}
			found = append(found, user)
		}
	}
	if len(misses) == 0 {
		return found, nil
	}
	loaded, err := u.next.GetMany(ctx, misses)
	if err != nil {
		return nil, err
	}
	return append(found, loaded...), nil
}

// List is not cached: pages change with every write anywhere.
func (u *Users) List(ctx context.Context, f store.UserFilter) (store.UserPage, error) {
	return u.next.List(ctx, f)
}

// Create stores a user, then forgets any "no such user" remembered for its id.
// Inside a caller's transaction (store.WithTx) that waits for its end: a
// read between the delete and the commit would remember "no such user" again.
func (u *Users) Create(ctx context.Context, nu store.NewUser) (store.User, error) {
	user, err := u.next.Create(ctx, nu)
	if err == nil {
		store.AfterTx(ctx, func() { u.invalidate(ctx, user.ID) })
	}
	return user, err
}

// Update changes the user in the store first, then invalidates its entry
// everywhere (after the caller's transaction, if any). It invalidates after
// failures too: a refused update may have raced with another instance's
// write whose invalidation was lost.
func (u *Users) Update(ctx context.Context, id int64, c store.UserChange) (store.User, error) {
	user, err := u.next.Update(ctx, id, c)
	store.AfterTx(ctx, func() { u.invalidate(ctx, id) })
	return user, err
}

// Delete removes the user from the store, then invalidates its entry (after
// the caller's transaction, if any).
func (u *Users) Delete(ctx context.Context, id int64) error {
	err := u.next.Delete(ctx, id)
	store.AfterTx(ctx, func() { u.invalidate(ctx, id) })
	return err
}

// invalidationWait bounds how long a writer waits to hear its own
// invalidation come back from Redis.
const invalidationWait = 100 * time.Millisecond

// invalidate deletes the user's entry in Redis, which makes Redis push an
// invalidation to every instance holding it in memory. When Redis is
// unreachable the key is kept, to be deleted when it returns.
//
// Redis pushes the invalidation to all tracking connections, this one
// included, in the same pass; the writer returns once its own has arrived,
// so that by the time its client hears of the write, the other instances
// have been told too. That makes a read through another instance right after
// the write very likely to see it, but not certain: each instance drops its
// entry when its own process gets to the message, usually within a
// millisecond.
func (u *Users) invalidate(ctx context.Context, id int64) {
	u.invalidateKey(ctx, u.key(id))
}

// invalidateKey deletes one key as invalidate describes.
func (u *Users) invalidateKey(ctx context.Context, key string) {
	c := u.available(ctx)
	if c != nil {
		// The write has committed: finish the invalidation even if the
		// client has gone away.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), retryInterval)
		defer cancel()
		heard := u.awaitInvalidation(key)
		defer u.stopAwaiting(key, heard)
		rc := c.Client()
		// Track the key on this connection, so that Redis tells us too.
		err := rc.DoCache(dctx, rc.B().Get().Key(key).Cache(), u.opts.TTL).Error()
		if err == nil || rueidis.IsRedisNil(err) {
			var n int64
			n, err = rc.Do(dctx, rc.B().Del().Key(key).Build()).AsInt64()
			if err == nil {
				if n > 0 {
					select {
					case <-heard:
					case <-time.After(invalidationWait):
					}
				}
				return
			}
		}
		u.failed(err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.pending) >= maxPendingInvalidations {
		if !u.overflow {
			u.logger.Error("cache invalidations lost while Redis was down; some entries may be stale until their TTL", "ttl", u.opts.TTL.String())
		}
		u.overflow = true
		return
	}
	u.pending[key] = struct{}{}
}

// awaitInvalidation returns a channel closed when Redis next says key changed.
func (u *Users) awaitInvalidation(key string) chan struct{} {
	ch := make(chan struct{})
	u.waitMu.Lock()
	u.waiters[key] = append(u.waiters[key], ch)
	u.waitMu.Unlock()
	return ch
}

func (u *Users) stopAwaiting(key string, ch chan struct{}) {
	u.waitMu.Lock()
	defer u.waitMu.Unlock()
	list := u.waiters[key]
	for i, c := range list {
		if c == ch {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(u.waiters, key)
	} else {
		u.waiters[key] = list
	}
}

// onInvalidation wakes the writers waiting for these keys; nil means the
// connection was lost, which invalidates everything.
func (u *Users) onInvalidation(msgs []rueidis.RedisMessage) {
	u.waitMu.Lock()
	defer u.waitMu.Unlock()
	if msgs == nil {
		for key, list := range u.waiters {
			for _, ch := range list {
				close(ch)
			}
			delete(u.waiters, key)
		}
		return
	}
	for _, m := range msgs {
		key, _ := m.ToString()
		for _, ch := range u.waiters[key] {
			close(ch)
		}
		delete(u.waiters, key)
	}
}

// flushPending deletes the keys whose invalidation failed while Redis was
// down. On failure the keys stay pending.
func (u *Users) flushPending(ctx context.Context) error {
	c := u.client.Load()
	if c == nil {
		return errors.New("not connected")
	}
	u.mu.Lock()
	keys := make([]string, 0, len(u.pending))
	for k := range u.pending {
		keys = append(keys, k)
	}
	u.pending = make(map[string]struct{})
	u.overflow = false
	u.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	rc := (*c).Client()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), retryInterval)
	defer cancel()
	if err := rc.Do(dctx, rc.B().Del().Key(keys...).Build()).Error(); err != nil {
		u.mu.Lock()
		for _, k := range keys {
			u.pending[k] = struct{}{}
		}
		u.mu.Unlock()
		return err
	}
	u.logger.Info("cache caught up on invalidations missed while Redis was down", "keys", len(keys))
	return nil
}

// decode turns a cached entry into a user. It remembers the result for as
// long as the cached text is the same: comparing the text is far cheaper
// than decoding it again.
func (u *Users) decode(id int64, val string) (store.User, error) {
	if d, ok := u.decoded.Load(id); ok && d.(*decodedEntry).raw == val {
		return d.(*decodedEntry).user, nil
	}
	user, err := decode(val)
	if err != nil {
		return store.User{}, err
	}
	if u.decodedCount.Add(1) > maxDecoded {
		u.decoded.Clear()
		u.decodedCount.Store(0)
	}
	u.decoded.Store(id, &decodedEntry{raw: val, user: user})
	return user, nil
}

// maxDecoded bounds the decoded users remembered; past it they are all
// forgotten and the hot ones come back on their next read.
const maxDecoded = 100000

type decodedEntry struct {
	raw  string
	user store.User
}

// entry is how a user is kept in Redis: JSON, never code.
type entry struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func encode(u store.User) (string, error) {
	b, err := json.Marshal(entry(u))
	return string(b), err
}

func decode(s string) (store.User, error) {
	var e entry
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return store.User{}, fmt.Errorf("cache: decode entry: %w", err)
	}
	return store.User(e), nil
}

func redactedAddr(opt rueidis.ClientOption) string {
	return strings.Join(opt.InitAddress, ",")
}
