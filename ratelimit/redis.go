package ratelimit

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// gcraScript is gcra in Lua, run atomically in Redis with Redis's clock, so
// instances with skewed clocks still share one budget. It stores the new tat
// in microseconds with an expiry of when the budget is full again, so idle
// clients cost no memory.
//
// KEYS[1] the client's key; ARGV[1] interval in µs; ARGV[2] limit.
// Returns {allowed, remaining, reset µs, retry-after µs}.
var gcraScript = rueidis.NewLuaScript(`
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call("GET", KEYS[1]) or "0")
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - limit * interval
if now < allow_at then
  return {0, 0, tat - now, allow_at - now}
end
-- %.0f: Lua would print a number this large in exponent notation.
redis.call("SET", KEYS[1], string.format("%.0f", new_tat), "PX", math.ceil((new_tat - now) / 1000))
return {1, math.floor((now - allow_at) / interval), new_tat - now, 0}
`)

// Conn is a connection to Redis shared with others, such as cache.Client.
// Do runs call with a short deadline, and fails at once while Redis is known
// to be down (not connected yet, failing, or hung), so that a Fallback
// decides from memory without waiting.
type Conn interface {
	Do(ctx context.Context, call func(ctx context.Context, c rueidis.Client) error) error
}

// Redis is a Limiter whose state all instances share.
type Redis struct {
	conn   Conn
	prefix string
}

// NewRedis returns a Limiter on conn, its keys starting with prefix.
func NewRedis(conn Conn, prefix string) *Redis {
	return &Redis{conn: conn, prefix: prefix}
}

// Allow decides for key under p, in one round trip.
func (r *Redis) Allow(ctx context.Context, key string, p Policy) (Decision, error) {
	interval := p.interval().Microseconds()
	if interval < 1 {
		interval = 1
	}
	var vals []int64
	err := r.conn.Do(ctx, func(ctx context.Context, c rueidis.Client) (err error) {
		vals, err = gcraScript.Exec(ctx, c,
			[]string{r.prefix + key},
			[]string{strconv.FormatInt(interval, 10), strconv.Itoa(p.Limit)},
		).AsIntSlice()
		return err
	})
	if err != nil {
		return Decision{}, err
	}
	return Decision{
		Allowed:    vals[0] == 1,
		Limit:      p.Limit,
		Remaining:  int(vals[1]),
		Reset:      time.Duration(vals[2]) * time.Microsecond,
		RetryAfter: time.Duration(vals[3]) * time.Microsecond,
	}, nil
}
