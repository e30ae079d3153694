package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"userapi/store"
)

// logTimeout bounds one read of the invalidation log.
const logTimeout = 5 * time.Second

// logMargin is added to the longest TTL to get the part of the log that
// matters: an entry older than its row was stored before the row's
// transaction committed, so it expires within a TTL of the commit. Rows are
// dated when their transaction began, which the margin allows for.
const logMargin = time.Minute

// logPage bounds the rows one read of the log returns: a change to many
// records at once (a bulk import, say) is applied a page at a time, in
// bounded memory.
const logPage = 5000

// trimEvery is how often an instance deletes the log's expired rows;
// trimBatch bounds the rows one statement deletes.
const (
	trimEvery = time.Minute
	trimBatch = 5000
)

// logCursor is how far this client has applied the invalidation log: every
// row of a transaction below horizon, and the rows in seen above it.
type logCursor struct {
	mu      sync.Mutex
	horizon int64
	seen    map[int64]int64 // id -> tx, for rows with tx >= horizon
}

// replace takes the place of l by fresh, read from the beginning of the
// window, all of whose keys were just deleted.
func (l *logCursor) replace(fresh *logCursor) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.horizon, l.seen = fresh.horizon, fresh.seen
}

// unseen returns the rows of b not applied yet, and marks them applied.
// Rows come again while their transaction is at or above the horizon (some
// older transaction is still running); deleting their keys again would
// only evict fresh entries.
func (l *logCursor) unseen(b store.InvalidationBatch) []store.Invalidation {
	l.mu.Lock()
	defer l.mu.Unlock()
	var rows []store.Invalidation
	for _, r := range b.Rows {
		if _, ok := l.seen[r.ID]; !ok {
			rows = append(rows, r)
		}
	}
	l.advance(b)
	return rows
}

func (l *logCursor) advance(b store.InvalidationBatch) {
	if l.seen == nil {
		l.seen = make(map[int64]int64)
	}
	for _, r := range b.Rows {
		l.seen[r.ID] = r.Tx
	}
	l.horizon = max(l.horizon, b.Horizon)
	for id, tx := range l.seen {
		if tx < l.horizon {
			delete(l.seen, id)
		}
	}
}

func (l *logCursor) since() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.horizon
}

// logWindow is how far back the log matters: the longest TTL of any entry
// plus a margin.
func (c *Client) logWindow() time.Duration { return max(c.opts.TTL, keyTTL) + logMargin }

// appendRows appends the Redis keys the rows name, and their versions.
func (c *Client) appendRows(keys []string, versions []int64, rows []store.Invalidation) ([]string, []int64) {
	for _, r := range rows {
		keys, versions = append(keys, c.opts.Prefix+r.Key), append(versions, r.Version)
	}
	return keys, versions
}

// follow applies the invalidation log until ctx ends: at once when
// PostgreSQL notifies a commit that recorded some, and every Poll in case a
// notification was lost (it is sent once, to connected listeners).
func (c *Client) follow(ctx context.Context) {
	wake := make(chan struct{}, 1)
	c.followers.Go(func() {
		c.opts.Log.Listen(ctx, func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	})
	poll := time.NewTicker(c.opts.Poll)
	defer poll.Stop()
	var lastTrim time.Time
	var failing bool
	for {
		switch err := c.catchUp(ctx); {
		case err != nil && !failing && ctx.Err() == nil:
			c.logger.Warn("cache: cannot read the invalidation log; retrying", "error", err.Error())
			failing = true
		case err == nil && failing:
			c.logger.Info("cache: reading the invalidation log again")
			failing = false
		}
		if time.Since(lastTrim) >= trimEvery {
			lastTrim = time.Now()
			c.trim(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-poll.C:
		}
	}
}

// catchUp deletes the keys of the log's rows this client has not applied.
// While Redis is unavailable it does nothing: the replay that comes before
// Redis is used again covers what was missed. It returns the log's error.
func (c *Client) catchUp(ctx context.Context) error {
	a := c.available()
	if a == nil {
		return nil
	}
	_, err := c.applyLog(ctx, a.Client())
	if errors.Is(err, errRedisFailed) {
		return nil // the replay after the outage covers it
	}
	return err
}

// errRedisFailed marks applyLog's errors that are Redis's, not the log's.
var errRedisFailed = errors.New("redis failed")

// applyLog deletes the keys of the log's rows this client has not applied,
// and returns how many. Rows count as applied once read: when Redis fails,
// the page's keys are kept for the replay, and the pages after it are read
// from the cursor then.
func (c *Client) applyLog(ctx context.Context, rc rueidis.Client) (deleted int, err error) {
	err = c.readLog(ctx, c.log.since(), func(page store.InvalidationBatch) error {
		keys, versions := c.appendRows(nil, nil, c.log.unseen(page))
		if err := c.deleteOlder(ctx, rc, keys, versions); err != nil {
			for _, k := range keys {
				c.keep(k)
			}
			return fmt.Errorf("%w: %w", errRedisFailed, err)
		}
		deleted += len(keys)
		return nil
	})
	return deleted, err
}

// readLog reads the log from since a page at a time, in id order, and
// hands each page to apply. Every page carries the first read's horizon:
// a transaction below it had ended before that read, so the later pages
// hold all its rows. A later page's own horizon could pass a transaction
// that committed during the reading at an id already passed.
func (c *Client) readLog(ctx context.Context, since int64, apply func(store.InvalidationBatch) error) error {
	var horizon, after int64
	for first := true; ; first = false {
		lctx, cancel := context.WithTimeout(ctx, logTimeout)
		page, err := c.opts.Log.Since(lctx, since, after, c.logWindow(), logPage)
		cancel()
		if err != nil {
			return err
		}
		if first {
			horizon = page.Horizon
		}
		page.Horizon = horizon
		if err := apply(page); err != nil {
			return err
		}
		if len(page.Rows) < logPage {
			return nil
		}
		after = page.Rows[len(page.Rows)-1].ID
	}
}

// trim deletes the rows no instance needs any more.
func (c *Client) trim(ctx context.Context) {
	for ctx.Err() == nil {
		tctx, cancel := context.WithTimeout(ctx, logTimeout)
		n, err := c.opts.Log.Trim(tctx, c.logWindow(), trimBatch)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				c.logger.Warn("cache: trim the invalidation log", "error", err.Error())
			}
			return
		}
		if n < trimBatch {
			return
		}
	}
}
