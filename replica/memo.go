package replica

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// Conn is a connection to Redis shared with others, such as cache.Client,
// which fails at once while Redis is known to be down.
type Conn interface {
	Do(ctx context.Context, call func(ctx context.Context, c rueidis.Client) error) error
}

// RedisMemo keeps each caller's last write position in Redis, one key per
// caller, so that every instance sees it.
type RedisMemo struct {
	conn   Conn
	prefix string
}

// NewRedisMemo returns a Memo on conn, its keys starting with prefix.
func NewRedisMemo(conn Conn, prefix string) *RedisMemo {
	return &RedisMemo{conn: conn, prefix: prefix}
}

// raiseScript stores ARGV[1] in KEYS[1] for ARGV[2] ms unless it holds a
// larger position: two writes of one caller may finish in either order.
// Positions stay far below 2^53 (8 PiB of WAL), exact in Lua's numbers.
var raiseScript = rueidis.NewLuaScript(`
local cur = tonumber(redis.call("GET", KEYS[1]) or "0")
if cur < tonumber(ARGV[1]) then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
end
return 0
`)

// Raise records lsn for caller unless a later one is recorded.
func (m *RedisMemo) Raise(ctx context.Context, caller string, lsn uint64, ttl time.Duration) error {
	return m.conn.Do(ctx, func(ctx context.Context, c rueidis.Client) error {
		return raiseScript.Exec(ctx, c, []string{m.prefix + caller},
			[]string{strconv.FormatUint(lsn, 10), strconv.FormatInt(ttl.Milliseconds(), 10)}).Error()
	})
}

// Get returns caller's last write position, 0 when none is recorded.
func (m *RedisMemo) Get(ctx context.Context, caller string) (uint64, error) {
	var lsn uint64
	err := m.conn.Do(ctx, func(ctx context.Context, c rueidis.Client) error {
		s, err := c.Do(ctx, c.B().Get().Key(m.prefix+caller).Build()).ToString()
		if rueidis.IsRedisNil(err) {
			return nil
		}
		if err != nil {
			return err
		}
		lsn, err = strconv.ParseUint(s, 10, 64)
		return err
	})
	return lsn, err
}
