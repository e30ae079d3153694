package cache

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"userapi/store"
)

// invalidationWait bounds how long a writer waits to hear its own
// invalidation come back from Redis.
const invalidationWait = 100 * time.Millisecond

// delChunk bounds the keys deleted in one round trip.
const delChunk = 500

// maxPendingInvalidations bounds the keys remembered while Redis is down, to
// be deleted when it returns.
const maxPendingInvalidations = 10000

// invalidations are the keys whose deletion could not reach Redis, and the
// writers waiting to hear theirs.
type invalidations struct {
	mu       sync.Mutex
	pending  map[string]struct{}
	overflow bool // pending lost keys: entries may be stale until their TTL
	// dirty is set while keys are pending: callers bypass Redis until a
	// replay has deleted them. Read on every call, without the lock.
	dirty atomic.Bool

	waitMu  sync.Mutex
	waiters map[string][]chan struct{}
}

// invalidate deletes key in Redis, which makes Redis push an invalidation to
// every instance holding it in memory. When Redis is unavailable the key is
// kept, to be deleted when it returns.
//
// Redis pushes the invalidation to all tracking connections, this one
// included, in the same pass; the writer returns once its own has arrived
// (or after invalidationWait), so that by the time its client hears of the
// write, the other instances have been told too. That makes a read through
// another instance right after the write very likely to see it, but not
// certain: each instance drops its entry when its own process gets to the
// message, usually within a millisecond.
func (c *Client) invalidate(ctx context.Context, key string) {
	// The write has committed: finish the invalidation even if the client
	// has gone away.
	ctx = context.WithoutCancel(ctx)
	if a := c.available(); a != nil {
		heard := c.inv.await(key)
		defer c.inv.stopAwaiting(key, heard)
		rc := a.Client()
		// Track the key on this connection, so that Redis tells us too.
		err := c.do(ctx, rc, func(ctx context.Context, rc rueidis.Client) error {
			return rc.DoCache(ctx, rc.B().Get().Key(key).Cache(), c.opts.TTL).Error()
		})
		var n int64
		if err == nil || rueidis.IsRedisNil(err) {
			err = c.do(ctx, rc, func(ctx context.Context, rc rueidis.Client) (err error) {
				n, err = rc.Do(ctx, rc.B().Del().Key(key).Build()).AsInt64()
				return err
			})
		}
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
	c.keep(key)
	// The other instances may still hold the old entry, in memory or in a
	// Redis this one cannot reach: the change's trigger logged the key, and
	// this wakes them to apply it now rather than at their next poll.
	if c.opts.Log != nil {
		nctx, cancel := context.WithTimeout(ctx, logTimeout)
		defer cancel()
		if err := c.opts.Log.Notify(nctx); err != nil {
			c.logger.Warn("could not wake the other instances; they apply the change at their next poll", "err", err)
		}
	}
}

// keep remembers key for replay.
func (c *Client) keep(key string) {
	inv := &c.inv
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if len(inv.pending) >= maxPendingInvalidations {
		if c.opts.Log != nil {
			// Logged too: the next replay reads the log's whole window.
			c.outage.full.Store(true)
			return
		}
		if !inv.overflow {
			c.logger.Error("cache invalidations lost while Redis was down; some entries may be stale until their TTL", "ttl", c.opts.TTL.String())
		}
		inv.overflow = true
		return
	}
	inv.pending[key] = struct{}{}
	inv.dirty.Store(true)
}

// take returns the pending keys and forgets them.
func (inv *invalidations) take() []string {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	keys := make([]string, 0, len(inv.pending))
	for k := range inv.pending {
		keys = append(keys, k)
	}
	inv.pending = make(map[string]struct{})
	inv.overflow = false
	inv.dirty.Store(false)
	return keys
}

// putBack makes keys pending again, after a replay that failed.
func (inv *invalidations) putBack(keys []string) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	for _, k := range keys {
		inv.pending[k] = struct{}{}
	}
	if len(inv.pending) > 0 {
		inv.dirty.Store(true)
	}
}

// replay deletes the keys whose invalidation failed while Redis was
// unavailable, and, with a durable log, those of the log's rows this client
// has not applied: written through an instance cut off from Redis, or while
// this one was not running. After a new connection (see outage.full) it
// deletes every key the log names from the last TTL, which also covers
// entries that a restarted Redis brought back from disk. On failure the
// keys stay pending.
func (c *Client) replay(ctx context.Context, rc rueidis.Client) error {
	keys := c.inv.take()
	full := c.outage.full.Swap(false)
	deleted := len(keys)
	err := func() error {
		if err := c.deleteOlder(ctx, rc, keys, make([]int64, len(keys))); err != nil { // 0: whatever they hold
			return err
		}
		if c.opts.Log == nil {
			return nil
		}
		if !full {
			n, err := c.applyLog(ctx, rc)
			deleted += n
			return err
		}
		fresh := &logCursor{}
		err := c.readLog(ctx, 0, func(page store.InvalidationBatch) error {
			logKeys, versions := c.appendRows(nil, nil, page.Rows)
			if err := c.deleteOlder(ctx, rc, logKeys, versions); err != nil {
				return err
			}
			fresh.advance(page)
			deleted += len(logKeys)
			return nil
		})
		if err == nil {
			c.log.replace(fresh)
		}
		return err
	}()
	if err != nil {
		c.inv.putBack(keys)
		if full {
			c.outage.full.Store(true)
		}
		return err
	}
	if deleted > 0 {
		attrs := []any{"keys", deleted}
		if c.opts.Log != nil {
			attrs = append(attrs, "whole_window", full)
		}
		c.logger.Info("cache caught up on invalidations missed while Redis was down", attrs...)
	}
	return nil
}

// deleteOlderScript deletes each key KEYS[i] unless it holds a record whose
// version is at least ARGV[i]; 0 deletes whatever it holds. A key read by a
// script is not tracked: this costs no instance its copy of a fresh entry.
var deleteOlderScript = rueidis.NewLuaScript(`
for i, key in ipairs(KEYS) do
  local want = tonumber(ARGV[i])
  local v = redis.call('GET', key)
  if v then
    local fresh = false
    if want > 0 then
      local ok, e = pcall(cjson.decode, v)
      fresh = ok and type(e) == 'table' and tonumber(e.version) ~= nil and tonumber(e.version) >= want
    end
    if not fresh then
      redis.call('DEL', key)
    end
  end
end
return 0
`)

// deleteOlder deletes keys[i] in Redis unless it holds a record of version
// versions[i] or later (0: whatever it holds), a bounded number per round
// trip. Every instance applies every change recorded in the log; most find
// the writer deleted the old entry already, and a reader may have loaded
// the new one since, which must stay: deleting it would cost each instance
// a database read per write for nothing.
func (c *Client) deleteOlder(ctx context.Context, rc rueidis.Client, keys []string, versions []int64) error {
	for start := 0; start < len(keys); start += delChunk {
		end := min(start+delChunk, len(keys))
		args := make([]string, 0, end-start)
		for _, v := range versions[start:end] {
			args = append(args, strconv.FormatInt(v, 10))
		}
		// One script call for the chunk; in a cluster, where the keys of
		// one call must share a slot, one per key (sent together, one
		// round trip per node).
		calls := []rueidis.LuaExec{{Keys: keys[start:end], Args: args}}
		if rc.Mode() == rueidis.ClientModeCluster {
			calls = calls[:0]
			for i := start; i < end; i++ {
				calls = append(calls, rueidis.LuaExec{Keys: keys[i : i+1], Args: args[i-start : i-start+1]})
			}
		}
		err := c.do(ctx, rc, func(ctx context.Context, rc rueidis.Client) error {
			if len(calls) == 1 { // EVALSHA alone, without ExecMulti's SCRIPT LOAD first
				return deleteOlderScript.Exec(ctx, rc, calls[0].Keys, calls[0].Args).Error()
			}
			for _, res := range deleteOlderScript.ExecMulti(ctx, rc, calls...) {
				if err := res.Error(); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// await returns a channel closed when Redis next says key changed.
func (inv *invalidations) await(key string) chan struct{} {
	ch := make(chan struct{})
	inv.waitMu.Lock()
	inv.waiters[key] = append(inv.waiters[key], ch)
	inv.waitMu.Unlock()
	return ch
}

func (inv *invalidations) stopAwaiting(key string, ch chan struct{}) {
	inv.waitMu.Lock()
	defer inv.waitMu.Unlock()
	list := inv.waiters[key]
	for i, c := range list {
		if c == ch {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(inv.waiters, key)
	} else {
		inv.waiters[key] = list
	}
}

// heard wakes the writers waiting for these keys; nil means the connection
// was lost, which invalidates everything.
func (inv *invalidations) heard(msgs []rueidis.RedisMessage) {
	inv.waitMu.Lock()
	defer inv.waitMu.Unlock()
	if msgs == nil {
		for key, list := range inv.waiters {
			for _, ch := range list {
				close(ch)
			}
			delete(inv.waiters, key)
		}
		return
	}
	for _, m := range msgs {
		key, _ := m.ToString()
		for _, ch := range inv.waiters[key] {
			close(ch)
		}
		delete(inv.waiters, key)
	}
}
