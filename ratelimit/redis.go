package ratelimit

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// gcraScript is gcra in Lua for a cost of several requests, run atomically
// in Redis with Redis's clock, so instances with skewed clocks still share
// one budget. It grants as many of the cost's requests as the budget holds
// (the rest are refused), and stores the new tat in microseconds with an
// expiry of when the budget is full again, so idle clients cost no memory.
//
// KEYS[1] the client's key; ARGV[1] interval in µs; ARGV[2] limit;
// ARGV[3] cost. Returns {granted, remaining after them, reset µs,
// retry-after µs for the first refused}; with a cost of 1 it is gcra.
var gcraScript = rueidis.NewLuaScript(`
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call("GET", KEYS[1]) or "0")
if tat < now then tat = now end
local burst = limit * interval
local granted = math.min(cost, math.floor((now + burst - tat) / interval))
if granted < 1 then
  return {0, 0, tat - now, tat + interval - burst - now}
end
local new_tat = tat + granted * interval
-- %.0f: Lua would print a number this large in exponent notation.
redis.call("SET", KEYS[1], string.format("%.0f", new_tat), "PX", math.ceil((new_tat - now) / 1000))
local retry = 0
if granted < cost then retry = new_tat + interval - burst - now end
return {granted, math.floor((now + burst - new_tat) / interval), new_tat - now, retry}
`)

// Conn is a connection to Redis shared with others, such as cache.Client.
// Do runs call with a short deadline, and fails at once while Redis is known
// to be down (not connected yet, failing, or hung), so that a Fallback
// decides from memory without waiting.
type Conn interface {
	Do(ctx context.Context, call func(ctx context.Context, c rueidis.Client) error) error
}

// Redis is a Limiter whose state all instances share.
//
// Concurrent requests of one client under one policy share round trips:
// while one script call is in flight, the requests that arrive wait, and
// the next call spends for all of them at once. A refusal is remembered
// until the budget can pass a request again (a time that other instances
// can only push later), and requests meanwhile are refused from memory.
type Redis struct {
	conn   Conn
	prefix string

	mu      sync.Mutex
	pending map[slotKey]*slot
	closed  map[slotKey]closedWindow
	swept   time.Time // when closed was last swept of expired windows
}

// closedBound is how many closed windows are remembered before the
// expired ones are swept.
const closedBound = 10000

type slotKey struct {
	key    string
	policy Policy
}

// slot is one client's traffic under one policy: whether a call is in
// flight, and the requests waiting for the next one.
type slot struct {
	waiting []chan<- answer
}

type answer struct {
	d   Decision
	err error
}

// closedWindow is when a refused client's budget holds a request again, and
// when it is full, by this process's clock.
type closedWindow struct {
	until, full time.Time
}

// NewRedis returns a Limiter on conn, its keys starting with prefix.
func NewRedis(conn Conn, prefix string) *Redis {
	return &Redis{conn: conn, prefix: prefix, pending: map[slotKey]*slot{}, closed: map[slotKey]closedWindow{}}
}

// Allow decides for key under p: in one round trip shared with the
// client's concurrent requests, or none while its budget is known spent.
func (r *Redis) Allow(ctx context.Context, key string, p Policy) (Decision, error) {
	k := slotKey{key, p}
	r.mu.Lock()
	if w, ok := r.closed[k]; ok {
		if now := time.Now(); now.Before(w.until) {
			r.mu.Unlock()
			return Decision{Limit: p.Limit, Reset: w.full.Sub(now), RetryAfter: w.until.Sub(now)}, nil
		}
		delete(r.closed, k)
	}
	if s, busy := r.pending[k]; busy {
		ch := make(chan answer, 1)
		s.waiting = append(s.waiting, ch)
		r.mu.Unlock()
		select {
		case a := <-ch:
			return a.d, a.err
		case <-ctx.Done():
			return Decision{}, ctx.Err()
		}
	}
	r.pending[k] = &slot{}
	r.mu.Unlock()
	ds, err := r.spend(ctx, k, 1)
	r.next(ctx, k)
	if err != nil {
		return Decision{}, err
	}
	return ds[0], nil
}

// next sends the requests that waited during a call, as one call of their
// own, or marks the slot idle when none did.
func (r *Redis) next(ctx context.Context, k slotKey) {
	r.mu.Lock()
	s := r.pending[k]
	if len(s.waiting) == 0 {
		delete(r.pending, k)
		r.mu.Unlock()
		return
	}
	batch := s.waiting
	s.waiting = nil
	r.mu.Unlock()
	// Not on the caller's time: it has its answer, and the others must not
	// fail because it left.
	go func() {
		ctx := context.WithoutCancel(ctx)
		ds, err := r.spend(ctx, k, len(batch))
		for i, ch := range batch {
			if err != nil {
				ch <- answer{err: err}
			} else {
				ch <- answer{d: ds[i]}
			}
		}
		r.next(ctx, k)
	}()
}

// spend takes cost requests from k's budget in one script call, and returns
// each one's decision as if they had been sent one after the other.
func (r *Redis) spend(ctx context.Context, k slotKey, cost int) ([]Decision, error) {
	interval := max(k.policy.interval().Microseconds(), 1)
	sent := time.Now()
	var vals []int64
	err := r.conn.Do(ctx, func(ctx context.Context, c rueidis.Client) (err error) {
		vals, err = gcraScript.Exec(ctx, c,
			[]string{r.prefix + k.key},
			[]string{strconv.FormatInt(interval, 10), strconv.Itoa(k.policy.Limit), strconv.Itoa(cost)},
		).AsIntSlice()
		return err
	})
	if err != nil {
		return nil, err
	}
	granted, remaining := int(vals[0]), int(vals[1])
	reset, retry := time.Duration(vals[2])*time.Microsecond, time.Duration(vals[3])*time.Microsecond
	step := time.Duration(interval) * time.Microsecond
	ds := make([]Decision, cost)
	for i := range ds {
		if i < granted {
			// The i-th of the granted left the budget as the later ones
			// found it, plus what they took.
			later := granted - 1 - i
			ds[i] = Decision{Allowed: true, Limit: k.policy.Limit, Remaining: remaining + later, Reset: reset - time.Duration(later)*step}
		} else {
			ds[i] = Decision{Limit: k.policy.Limit, Reset: reset, RetryAfter: retry}
		}
	}
	if granted < cost {
		// Counted from before the call, which Redis's TIME follows: the
		// window is remembered closed no longer than it is.
		r.remember(k, closedWindow{until: sent.Add(retry), full: sent.Add(reset)})
	}
	return ds, nil
}

func (r *Redis) remember(k slotKey, w closedWindow) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.closed) >= closedBound {
		now := time.Now()
		if now.Sub(r.swept) < time.Second {
			return // swept a moment ago: not again, under the lock every request takes
		}
		r.swept = now
		for k, w := range r.closed {
			if !now.Before(w.until) {
				delete(r.closed, k)
			}
		}
		if len(r.closed) >= closedBound {
			return // many clients refused at once: they ask Redis
		}
	}
	r.closed[k] = w
}
