package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidisaside"

	"userapi/store"
)

// negative is the cached value for "no such record".
const negative = "-"

// maxDecoded bounds the decoded records a reader remembers; past it they are
// all forgotten and the hot ones come back on their next read.
const maxDecoded = 100000

// reader serves one kind of record from memory, Redis, or its store: the
// read path Users and Keys share. Records are kept in Redis as text made by
// encode; store.ErrNotFound is kept too, as a negative entry.
type reader[T any] struct {
	client      *Client
	ttl         time.Duration
	negativeTTL time.Duration
	encode      func(T) (string, error)
	decode      func(string) (T, error)

	// decoded remembers each key's last decoded record with its text:
	// comparing the text is far cheaper than decoding it again.
	decoded      sync.Map // key -> *decodedEntry[T]
	decodedCount atomic.Int64

	hits struct{ memory, redis, database, bypassed atomic.Uint64 }
}

type decodedEntry[T any] struct {
	raw string
	val T
}

func newReader[T any](client *Client, ttl time.Duration, encode func(T) (string, error), decode func(string) (T, error)) *reader[T] {
	return &reader[T]{client: client, ttl: ttl, negativeTTL: min(client.opts.NegativeTTL, ttl), encode: encode, decode: decode}
}

// Stats counts where a cache's answers came from.
type Stats struct {
	Memory   uint64 // this process's memory, no network round trip
	Redis    uint64 // Redis, one round trip
	Database uint64 // the store, after a miss
	Bypassed uint64 // the store, because Redis was unavailable
}

func (r *reader[T]) stats() Stats {
	return Stats{Memory: r.hits.memory.Load(), Redis: r.hits.redis.Load(), Database: r.hits.database.Load(), Bypassed: r.hits.bypassed.Load()}
}

// get returns key's record from memory, Redis or load, in that order, and
// store.ErrNotFound if load says there is none. It answers from load alone
// while Redis is unavailable.
func (r *reader[T]) get(ctx context.Context, key string, load func(ctx context.Context) (T, error)) (T, error) {
	var zero T
	a := r.client.available()
	if a == nil {
		r.hits.bypassed.Add(1)
		return load(ctx)
	}
	val, from, err := r.lookup(ctx, a, key, load)
	var le *loadError
	switch {
	case errors.As(err, &le):
		return zero, le.err
	case err != nil && ctx.Err() != nil:
		return zero, ctx.Err()
	case err != nil:
		r.hits.bypassed.Add(1)
		return load(ctx)
	}
	switch from {
	case fromMemory:
		r.hits.memory.Add(1)
	case fromRedis:
		r.hits.redis.Add(1)
	case fromLoad:
		r.hits.database.Add(1)
	}
	if val == negative {
		return zero, fmt.Errorf("cache: %s: %w", key, store.ErrNotFound)
	}
	v, err := r.decoded1(key, val)
	if err != nil {
		r.client.logger.Error("cache entry does not decode; dropping it", "key", key, "error", err.Error())
		r.client.invalidate(ctx, key)
		return load(ctx)
	}
	return v, nil
}

// source is where lookup found a value.
type source int

const (
	fromMemory source = iota // this process's memory
	fromRedis                // Redis, or another caller that loaded it meanwhile
	fromLoad                 // load, after a miss
)

// loadError carries an error of the store through rueidisaside, so that it
// is not mistaken for a failure of Redis.
type loadError struct{ err error }

func (e *loadError) Error() string { return e.err.Error() }
func (e *loadError) Unwrap() error { return e.err }

// lookup returns key's text from memory, Redis, or else load, which runs
// under rueidisaside's per-key lock and whose result is stored for the ttl.
// Errors of load come back as *loadError; any other error is Redis's, and
// has been recorded as an outage.
func (r *reader[T]) lookup(ctx context.Context, a rueidisaside.CacheAsideClient, key string, load func(ctx context.Context) (T, error)) (string, source, error) {
	// Fast path: a value held in memory or in Redis, one round trip with the
	// deadline. Only a miss, or a key another caller is loading, takes the
	// locking path below.
	var val string
	var inMemory bool
	err := r.client.do(ctx, a.Client(), func(ctx context.Context, rc rueidis.Client) (err error) {
		res := rc.DoCache(ctx, rc.B().Get().Key(key).Cache(), r.ttl)
		val, err = res.ToString()
		inMemory = res.IsCacheHit()
		return err
	})
	switch {
	case err == nil && !strings.HasPrefix(val, rueidisaside.PlaceholderPrefix):
		if inMemory {
			return val, fromMemory, nil
		}
		return val, fromRedis, nil
	case err != nil && !rueidis.IsRedisNil(err):
		return "", 0, err
	}

	// The miss path may wait for another instance's load, so it cannot take
	// the deadline; it gives up as soon as any call finds Redis failing.
	mctx, stop := r.client.outage.untilFailure(ctx)
	defer stop()
	loaded, didLoad := "", false
	val, err = a.Get(mctx, r.ttl, key, func(actx context.Context, _ string) (string, error) {
		// The caller's context: Redis failing meanwhile does not cancel
		// the store's read.
		v, err := load(ctx)
		s := negative
		switch {
		case errors.Is(err, store.ErrNotFound):
			rueidisaside.OverrideCacheTTL(actx, r.negativeTTL)
		case err != nil:
			return "", &loadError{err}
		default:
			if s, err = r.encode(v); err != nil {
				return "", &loadError{err}
			}
		}
		loaded, didLoad = s, true
		return s, nil
	})
	var le *loadError
	switch {
	case errors.As(err, &le):
		return "", 0, err
	case err != nil && ctx.Err() == nil:
		r.client.failed(err)
	}
	if didLoad {
		// Even if storing it failed: the caller has its answer.
		return loaded, fromLoad, nil
	}
	if err != nil {
		return "", 0, err
	}
	return val, fromRedis, nil
}

// decoded1 decodes a cached text, or returns what it decoded to last time.
func (r *reader[T]) decoded1(key, val string) (T, error) {
	if d, ok := r.decoded.Load(key); ok && d.(*decodedEntry[T]).raw == val {
		return d.(*decodedEntry[T]).val, nil
	}
	v, err := r.decode(val)
	if err != nil {
		return v, err
	}
	if r.decodedCount.Add(1) > maxDecoded {
		r.decoded.Clear()
		r.decodedCount.Store(0)
	}
	r.decoded.Store(key, &decodedEntry[T]{raw: val, val: v})
	return v, nil
}

// peek is what the cache holds for one key of a batch.
type peek int

const (
	peekMiss   peek = iota // not cached: ask the store
	peekFound              // cached record
	peekAbsent             // cached "no such record"
)

// peekMany returns what memory and Redis hold for keys, in one round trip,
// without loading or storing anything.
//
// Only keys this process has decoded a record for (so they exist, or did
// lately) are read with client-side caching. The rest are read without it:
// Redis would otherwise track every key asked for, existing or not, and a
// stream of unknown ids would grow its tracking table without bound.
func (r *reader[T]) peekMany(ctx context.Context, a rueidisaside.CacheAsideClient, keys []string) ([]T, []peek, error) {
	vals := make([]T, len(keys))
	kinds := make([]peek, len(keys))
	var cached, plain []int // indexes into keys
	for i, k := range keys {
		if _, ok := r.decoded.Load(k); ok {
			cached = append(cached, i)
		} else {
			plain = append(plain, i)
		}
	}
	results := make([]rueidis.RedisResult, len(keys))
	err := r.client.do(ctx, a.Client(), func(ctx context.Context, rc rueidis.Client) error {
		cmds := make([]rueidis.CacheableTTL, len(cached))
		for j, i := range cached {
			cmds[j] = rueidis.CT(rc.B().Get().Key(keys[i]).Cache(), r.ttl)
		}
		gets := make(rueidis.Commands, len(plain))
		for j, i := range plain {
			gets[j] = rc.B().Get().Key(keys[i]).Build()
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if len(cached) > 0 {
				for j, res := range rc.DoMultiCache(ctx, cmds...) {
					results[cached[j]] = res
				}
			}
		})
		if len(plain) > 0 {
			for j, res := range rc.DoMulti(ctx, gets...) {
				results[plain[j]] = res
			}
		}
		wg.Wait()
		for _, res := range results {
			if err := res.Error(); err != nil && !rueidis.IsRedisNil(err) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for i, res := range results {
		val, err := res.ToString()
		switch {
		case rueidis.IsRedisNil(err):
			r.decoded.Delete(keys[i]) // gone: stop tracking it
		case val == negative:
			kinds[i] = peekAbsent
		case strings.HasPrefix(val, rueidisaside.PlaceholderPrefix):
			// Someone is loading it right now.
		default:
			if v, err := r.decoded1(keys[i], val); err == nil {
				vals[i], kinds[i] = v, peekFound
			}
		}
	}
	return vals, kinds, nil
}
