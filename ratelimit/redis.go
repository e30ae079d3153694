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
// While at least ARGV[5] requests would remain after them, it also leases
// the caller up to ARGV[4] more, at most a sixteenth of what remains: taken
// from the budget like the others, for the caller to hand out or give back.
//
// KEYS[1] the client's key; ARGV[1] interval in µs; ARGV[2] limit;
// ARGV[3] cost; ARGV[4] most to lease; ARGV[5] the lease floor. Returns
// {granted, leased, remaining after them, reset µs, retry-after µs for the
// first refused}; with a cost of 1 and nothing leased it is gcra.
var gcraScript = rueidis.NewLuaScript(`
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call("GET", KEYS[1]) or "0")
if tat < now then tat = now end
local burst = limit * interval
local avail = math.floor((now + burst - tat) / interval)
local granted = math.min(cost, avail)
if granted < 1 and cost > 0 then
  return {0, 0, 0, tat - now, tat + interval - burst - now}
end
local leased = 0
if avail - granted >= tonumber(ARGV[5]) then
  leased = math.min(tonumber(ARGV[4]), math.floor((avail - granted) / 16))
end
if granted + leased == 0 then
  return {0, 0, avail, tat - now, 0}
end
local new_tat = tat + (granted + leased) * interval
-- %.0f: Lua would print a number this large in exponent notation.
redis.call("SET", KEYS[1], string.format("%.0f", new_tat), "PX", math.ceil((new_tat - now) / 1000))
local retry = 0
if granted < cost then retry = new_tat + interval - burst - now end
return {granted, leased, math.floor((now + burst - new_tat) / interval), new_tat - now, retry}
`)

// giveBackScript returns ARGV[2] requests, each worth ARGV[1] µs, to the
// budget at KEYS[1]: a lease's unused part. A budget full again is deleted.
var giveBackScript = rueidis.NewLuaScript(`
local tat = tonumber(redis.call("GET", KEYS[1]) or "0")
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local new_tat = tat - tonumber(ARGV[1]) * tonumber(ARGV[2])
if new_tat <= now then
  redis.call("DEL", KEYS[1])
else
  redis.call("SET", KEYS[1], string.format("%.0f", new_tat), "PX", math.ceil((new_tat - now) / 1000))
end
return 0
`)

// Leases: while a client is far from its limit (leaseFloor requests would
// remain), each call also takes up to leaseMost requests ahead for this
// instance, which then decides that client's next requests from memory.
// What is not handed out within leaseTTL goes back to the budget. Close
// to the limit no instance holds a lease, and every request is decided in
// Redis: exactly the budget passes.
const (
	leaseFloor = 1000
	leaseMost  = 128
	leaseTTL   = 100 * time.Millisecond
)

// intervalMicros is p's interval in whole microseconds, Redis's unit here:
// at least one.
func (p Policy) intervalMicros() int64 { return max(p.interval().Microseconds(), 1) }

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
// can only push later), and requests meanwhile are refused from memory. A
// client far from its limit is served from a lease (see leaseFloor).
type Redis struct {
	conn   Conn
	prefix string

	mu      sync.Mutex
	pending map[slotKey]*slot
	closed  map[slotKey]closedWindow
	leases  map[slotKey]*lease
	swept   time.Time // when closed was last swept of expired windows

	givingBack sync.WaitGroup // expired leases on their way back to Redis
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

// lease is requests taken from a client's budget ahead of them.
type lease struct {
	n         int       // not handed out yet
	remaining int       // what the budget held after the lease was taken
	full      time.Time // when the budget is full again, by this process's clock, if all n are used
	expires   time.Time
	timer     *time.Timer
}

// take hands out one request of l, with the decision it would have had
// from Redis.
func (l *lease) take(p Policy, now time.Time) Decision {
	l.n--
	step := p.intervalMicros()
	return Decision{Allowed: true, Limit: p.Limit, Remaining: l.remaining + l.n,
		Reset: l.full.Sub(now) - time.Duration(int64(l.n)*step)*time.Microsecond}
}

// NewRedis returns a Limiter on conn, its keys starting with prefix.
func NewRedis(conn Conn, prefix string) *Redis {
	return &Redis{conn: conn, prefix: prefix, pending: map[slotKey]*slot{},
		closed: map[slotKey]closedWindow{}, leases: map[slotKey]*lease{}}
}

// Allow decides for key under p: from the client's lease, in one round
// trip shared with the client's concurrent requests, or from memory while
// its budget is known spent.
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
	if l := r.leases[k]; l != nil && l.n > 0 {
		d := l.take(p, time.Now())
		// Renewed at half, so that the client's requests seldom wait.
		_, busy := r.pending[k]
		renew := l.n < leaseMost/2 && !busy
		if renew {
			r.pending[k] = &slot{}
		}
		r.mu.Unlock()
		if renew {
			go r.run(context.WithoutCancel(ctx), k, nil)
		}
		return d, nil
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

// next answers the requests that waited during a call: from the lease the
// call may have brought, and the rest in one call of their own. With none
// waiting it marks the slot idle.
func (r *Redis) next(ctx context.Context, k slotKey) {
	r.mu.Lock()
	s := r.pending[k]
	if l := r.leases[k]; l != nil {
		now := time.Now()
		for len(s.waiting) > 0 && l.n > 0 {
			s.waiting[0] <- answer{d: l.take(k.policy, now)}
			s.waiting = s.waiting[1:]
		}
	}
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
	go r.run(context.WithoutCancel(ctx), k, batch)
}

// run makes one call for batch, which may be empty to renew the lease
// alone, answers it, and goes on with the requests that waited meanwhile.
func (r *Redis) run(ctx context.Context, k slotKey, batch []chan<- answer) {
	ds, err := r.spend(ctx, k, len(batch))
	for i, ch := range batch {
		if err != nil {
			ch <- answer{err: err}
		} else {
			ch <- answer{d: ds[i]}
		}
	}
	r.next(ctx, k)
}

// spend takes cost requests from k's budget in one script call, and returns
// each one's decision as if they had been sent one after the other. What
// the call leases is kept for the next requests.
func (r *Redis) spend(ctx context.Context, k slotKey, cost int) ([]Decision, error) {
	interval := k.policy.intervalMicros()
	sent := time.Now()
	var vals []int64
	err := r.conn.Do(ctx, func(ctx context.Context, c rueidis.Client) (err error) {
		vals, err = gcraScript.Exec(ctx, c,
			[]string{r.prefix + k.key},
			[]string{strconv.FormatInt(interval, 10), strconv.Itoa(k.policy.Limit), strconv.Itoa(cost),
				strconv.Itoa(leaseMost), strconv.Itoa(leaseFloor)},
		).AsIntSlice()
		return err
	})
	if err != nil {
		return nil, err
	}
	granted, leased, remaining := int(vals[0]), int(vals[1]), int(vals[2])
	reset, retry := time.Duration(vals[3])*time.Microsecond, time.Duration(vals[4])*time.Microsecond
	step := time.Duration(interval) * time.Microsecond
	ds := make([]Decision, cost)
	for i := range ds {
		if i < granted {
			// The i-th of the granted left the budget as the later ones
			// found it, plus what they took.
			later := granted - 1 - i + leased
			ds[i] = Decision{Allowed: true, Limit: k.policy.Limit, Remaining: remaining + later, Reset: reset - time.Duration(later)*step}
		} else {
			ds[i] = Decision{Limit: k.policy.Limit, Reset: reset, RetryAfter: retry}
		}
	}
	if leased > 0 {
		r.lease(k, leased, remaining, sent.Add(reset))
	}
	if granted < cost {
		// Counted from before the call, which Redis's TIME follows: the
		// window is remembered closed no longer than it is.
		r.remember(k, closedWindow{until: sent.Add(retry), full: sent.Add(reset)})
	}
	return ds, nil
}

// lease adds n requests to k's lease and renews its term.
func (r *Redis) lease(k slotKey, n, remaining int, full time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.leases[k]
	if l == nil {
		l = &lease{}
		l.timer = time.AfterFunc(leaseTTL, func() { r.expire(k, l) })
		r.leases[k] = l
	} else {
		l.timer.Reset(leaseTTL)
	}
	l.n += n
	l.remaining, l.full = remaining, full
	l.expires = time.Now().Add(leaseTTL)
}

// expire ends l, k's lease, once its term has passed, and gives its
// unused requests back to the budget.
func (r *Redis) expire(k slotKey, l *lease) {
	r.mu.Lock()
	if r.leases[k] != l {
		r.mu.Unlock()
		return
	}
	if left := time.Until(l.expires); left > 0 {
		l.timer.Reset(left)
		r.mu.Unlock()
		return
	}
	delete(r.leases, k)
	n := l.n
	if n == 0 {
		r.mu.Unlock()
		return
	}
	r.givingBack.Add(1)
	r.mu.Unlock()
	defer r.givingBack.Done()
	interval := k.policy.intervalMicros()
	// Failing, the n requests are lost to the client until its budget
	// refills: fewer passed than could have, never more.
	_ = r.conn.Do(context.Background(), func(ctx context.Context, c rueidis.Client) error {
		return giveBackScript.Exec(ctx, c, []string{r.prefix + k.key},
			[]string{strconv.FormatInt(interval, 10), strconv.Itoa(n)}).Error()
	})
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
