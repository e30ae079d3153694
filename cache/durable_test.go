package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"

	"userapi/auth"
	"userapi/cache"
	"userapi/cache/cachetest"
	"userapi/internal/freeport"
	"userapi/store"
	"userapi/store/storetest"
)

// durable is a database shared by instances that record invalidations in
// it, as every instance of the service does.
type durable struct {
	pool  *pgxpool.Pool
	users *store.Users
	log   *store.InvalidationLog
}

func newDurable(t *testing.T) durable {
	t.Helper()
	pool := storetest.NewPool(t)
	return durable{pool: pool, users: store.NewUsers(pool), log: store.NewInvalidationLog(pool)}
}

// instance is one service instance's user cache, reaching Redis at url.
func (d durable) instance(t *testing.T, url string) instance {
	t.Helper()
	return newCache(t, d.users, d.options(url))
}

func (d durable) options(url string) cache.Options {
	return cache.Options{URL: url, Prefix: "userapi:", Log: d.log, Timeout: testTimeout}
}

// untilServedFromRedis reads through read until stats shows a read served
// by the cache (memory or Redis) rather than the database, checking every
// answer with check. It proves the instance trusts Redis again.
func untilServedFromRedis(t *testing.T, what string, stats func() cache.Stats, read func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		before := stats()
		if err := read(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if s := stats(); s.Memory+s.Redis > before.Memory+before.Redis {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not served from the cache again within 15s: %+v", what, stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A write through an instance cut off from Redis reaches the other
// instances through the database: they stop serving the old user without
// waiting for the writer to reach Redis again, or for the entry's TTL.
func TestDurable_WriteThroughPartitionedInstance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDurable(t)
	redis := cachetest.NewServer(t)
	proxy := cachetest.NewProxy(t, redis.Addr())
	writer, reader := d.instance(t, proxy.URL()), d.instance(t, redis.URL())
	u := create(t, writer, "ada@example.com")
	for range 2 { // in Redis, and in both instances' memory
		writer.Get(ctx, u.ID)
		reader.Get(ctx, u.ID)
	}

	proxy.Cut()
	name := "written while cut off from Redis"
	updated, err := writer.Update(ctx, u.ID, store.UserChange{Name: &name})
	if err != nil {
		t.Fatalf("Update cut off from Redis = %v, want success", err)
	}
	acked := time.Now()
	readUntil := func(inst instance) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			got, err := inst.Get(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got == updated {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Get(%d) still returns %+v 15s after the write (entries live 5m); want %+v", u.ID, got, updated)
			}
			time.Sleep(time.Millisecond)
		}
	}
	readUntil(reader)
	t.Logf("write acknowledged to fresh on the other instance: %v", time.Since(acked))

	proxy.Heal()
	healed := time.Now()
	for i, inst := range []instance{writer, reader} {
		untilServedFromRedis(t, "after the partition healed", inst.Users.Stats, func() error {
			got, err := inst.Get(ctx, u.ID)
			if err == nil && got != updated {
				t.Fatalf("instance %d after the partition healed: Get = %+v, want %+v", i, got, updated)
			}
			return err
		})
	}
	t.Logf("partition healed to both instances serving from the cache: %v", time.Since(healed))
}

// A Redis restarted from its persisted data holds entries from before it
// stopped. Writes made meanwhile are replayed from the database before any
// instance trusts it again, even when their writer is gone.
func TestDurable_PersistentRedisRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDurable(t)
	redis := cachetest.NewPersistentServer(t)
	writer, reader := d.instance(t, redis.URL()), d.instance(t, redis.URL())
	u := create(t, writer, "ada@example.com")
	for range 2 {
		reader.Get(ctx, u.ID)
	}

	redis.Stop()
	waitFor(t, "the reader to lose Redis", func() bool { return reader.Ping(ctx) != nil })
	name := "written while Redis was down"
	updated, err := writer.Update(ctx, u.ID, store.UserChange{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	writer.Client.Close() // its memory of the failed invalidation goes with it
	check := func(when string) error {
		got, err := reader.Get(ctx, u.ID)
		if err == nil && got != updated {
			t.Fatalf("%s: Get = %+v, want %+v", when, got, updated)
		}
		return err
	}
	if err := check("Redis down"); err != nil {
		t.Fatal(err)
	}

	redis.Start()
	restarted := time.Now()
	untilServedFromRedis(t, "after Redis restarted", reader.Users.Stats, func() error { return check("after Redis restarted") })
	t.Logf("Redis restarted to the reader serving from the cache: %v", time.Since(restarted))
	// A new instance, which never heard of the write, reads the same.
	fresh := d.instance(t, redis.URL())
	untilServedFromRedis(t, "a new instance", fresh.Users.Stats, func() error {
		got, err := fresh.Get(ctx, u.ID)
		if err == nil && got != updated {
			t.Fatalf("a new instance: Get = %+v, want %+v", got, updated)
		}
		return err
	})
}

// After Redis misses a deadline on a connection that stays up, Redis has
// lost nothing: the replay deletes the keys this instance could not, and
// those of the log's rows written since it last read the log, not every
// key of the log's window.
func TestDurable_ReplayAfterTimeoutReadsOnlyNewRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDurable(t)
	redis := cachetest.NewServer(t)
	var logs syncBuffer
	opts := d.options(redis.URL())
	opts.Timeout = 50 * time.Millisecond
	opts.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	c := newCache(t, d.users, opts)
	u := create(t, c, "ada@example.com")
	unread := create(t, d.users, "grace@example.com") // unknown to the instance: reading it needs Redis
	untilServedFromRedis(t, "after start-up", c.Users.Stats, func() error { _, err := c.Get(ctx, u.ID); return err })
	const whole, since = `"whole_window":true`, `"whole_window":false`
	wholeBefore := logs.Count(whole)

	redis.Freeze()
	if _, err := c.Get(ctx, unread.ID); err != nil {
		t.Fatalf("Get with Redis hung = %v, want the row from the database", err)
	}
	redis.Thaw()
	name := "written while Redis was bypassed"
	updated, err := c.Update(ctx, u.ID, store.UserChange{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	untilServedFromRedis(t, "after the timeout", c.Users.Stats, func() error {
		got, err := c.Get(ctx, u.ID)
		if err == nil && got != updated {
			t.Fatalf("after the timeout: Get = %+v, want %+v", got, updated)
		}
		return err
	})
	if n := logs.Count(since); n != 1 {
		t.Errorf("replays of the log since its cursor: %d, want 1:\n%s", n, logs.String())
	}
	if n := logs.Count(whole); n != wholeBefore {
		t.Errorf("replays of the whole window after the timeout: %d, want none:\n%s", n-wholeBefore, logs.String())
	}
}

// Calls that keep no cached entries, such as the rate limiter's, use Redis
// while the replay of missed invalidations runs: budgets stay shared across
// instances from start-up on, however long the replay takes.
func TestDurable_DoDuringReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDurable(t)
	redis := cachetest.NewServer(t)
	// The start-up replay waits for the log, which this transaction locks.
	lock, err := d.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, "LOCK TABLE cache_invalidations IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	c, err := cache.NewClient(d.options(redis.URL()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	waitFor(t, "the client to connect", func() bool { return c.Ping(ctx) == nil })
	if c.Available() {
		t.Fatal("Available() = true while the replay waits for the log, want false")
	}
	err = c.Do(ctx, func(ctx context.Context, rc rueidis.Client) error {
		return rc.Do(ctx, rc.B().Ping().Build()).Error()
	})
	if err != nil {
		t.Errorf("Do while the replay runs = %v, want Redis's answer", err)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay to end", c.Available)
}

// noTouch checks keys without recording their use.
type noTouch struct{}

func (noTouch) Touch(context.Context, string) error { return nil }

// A key revoked while no instance could reach Redis is refused by every
// instance from then on: during the outage, and after Redis returns with
// its old entries (a partition heals, or Redis restarts from disk).
func TestDurable_KeyRevokedDuringOutage(t *testing.T) {
	t.Parallel()
	for _, outage := range []string{"partition", "persistent restart"} {
		t.Run(outage, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			d := newDurable(t)
			apiKeys := store.NewAPIKeys(d.pool)
			k := auth.Generate()
			if _, err := apiKeys.Create(ctx, store.NewAPIKey{Prefix: k.Prefix, Hash: k.Hash, Name: "n", Scopes: []string{auth.ScopeAdmin}}); err != nil {
				t.Fatal(err)
			}

			var redis *cachetest.Server
			var proxies []*cachetest.Proxy
			var caches []*cache.Keys
			var clients []*cache.Client
			if outage == "partition" {
				redis = cachetest.NewServer(t)
			} else {
				redis = cachetest.NewPersistentServer(t)
			}
			for range 2 {
				url := redis.URL()
				if outage == "partition" {
					p := cachetest.NewProxy(t, redis.Addr())
					proxies = append(proxies, p)
					url = p.URL()
				}
				c := cachetest.NewClient(t, d.options(url))
				clients = append(clients, c)
				caches = append(caches, cache.NewKeys(c, apiKeys))
			}
			check := func(i int) error {
				_, err := auth.NewChecker(caches[i], noTouch{}, nil).Check(ctx, k.Key)
				return err
			}
			for i := range caches {
				for range 2 { // in Redis, and in memory
					if err := check(i); err != nil {
						t.Fatalf("instance %d before revocation: %v", i, err)
					}
				}
			}

			if outage == "partition" {
				for _, p := range proxies {
					p.Cut()
				}
			} else {
				redis.Stop()
			}
			for _, c := range clients {
				waitFor(t, "the instances to lose Redis", func() bool { return c.Ping(ctx) != nil })
			}
			if _, err := apiKeys.Revoke(ctx, k.Prefix); err != nil {
				t.Fatal(err)
			}
			refused := func(i int, when string) func() error {
				return func() error {
					if err := check(i); !errors.Is(err, auth.ErrRevoked) {
						t.Fatalf("instance %d %s: Check = %v, want %v", i, when, err, auth.ErrRevoked)
					}
					return nil
				}
			}
			for i := range caches {
				refused(i, "during the outage")()
			}

			if outage == "partition" {
				for _, p := range proxies {
					p.Heal()
				}
			} else {
				redis.Start()
			}
			for i := range caches {
				untilServedFromRedis(t, "after Redis returned", caches[i].Stats, refused(i, "after Redis returned"))
				for range 3 {
					refused(i, "after Redis returned")()
				}
			}
		})
	}
}

// On a Redis Cluster, the invalidations an instance applies from the
// database's log name keys in many slots at once; each reaches the node
// that holds it.
func TestDurable_LogAppliedOnCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDurable(t)
	// The writer never reaches Redis: its writes reach the reader only
	// through the log.
	noRedis, err := cache.NewClient(d.options("redis://" + freeport.Addr(t) + "/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(noRedis.Close)
	writer := instance{cache.NewUsers(noRedis, d.users), noRedis}
	reader := d.instance(t, cachetest.SharedCluster(t).URL())
	var users []store.User
	for i := range 20 {
		u := create(t, writer, fmt.Sprintf("u%d@example.com", i))
		users = append(users, u)
		for range 2 { // in Redis, then in the reader's memory
			if _, err := reader.Get(ctx, u.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, u := range users {
		name := fmt.Sprint("renamed ", i)
		updated, err := writer.Update(ctx, u.ID, store.UserChange{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		users[i] = updated
	}
	for _, u := range users {
		deadline := time.Now().Add(15 * time.Second)
		for {
			got, err := reader.Get(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got == u {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Get(%d) still returns %+v 15s after the write (entries live 5m); want %+v", u.ID, got, u)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// A change to more users than one read of the log returns (a bulk
// update) reaches every instance: the log is applied a page at a time, to
// its end.
func TestDurable_BulkChangeAppliedPageByPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDurable(t)
	opts := d.options(cachetest.URL())
	opts.Prefix = cachetest.Prefix(t) // the shared Redis: ids repeat across tests' databases
	reader := newCache(t, d.users, opts)
	const n = 12000 // more than two pages of the log
	if _, err := d.pool.Exec(ctx, `INSERT INTO users (name, email, email_key)
		SELECT 'Bulk ' || g, 'bulk' || g || '@example.com', 'bulk' || g || '@example.com' FROM generate_series(1, $1) g`, n); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	rows, err := d.pool.Query(ctx, `SELECT id FROM users ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if rows.Err() != nil || len(ids) != n {
		t.Fatalf("%d users, %v; want %d", len(ids), rows.Err(), n)
	}
	sample := []int64{ids[0], ids[n/2], ids[n-1]}
	for _, id := range sample {
		for range 2 { // in Redis, then in the reader's memory
			if _, err := reader.Get(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s := reader.Users.Stats(); s.Database != uint64(len(sample)) {
		t.Fatalf("reads before the update: %+v; want one database read per user sampled, then memory", s)
	}
	// Written past the cache, as a bulk change is: only the log tells.
	if _, err := d.pool.Exec(ctx, `UPDATE users SET name = 'Renamed ' || id, version = version + 1`); err != nil {
		t.Fatal(err)
	}

	for _, id := range sample {
		deadline := time.Now().Add(15 * time.Second)
		for {
			got, err := reader.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name == fmt.Sprint("Renamed ", id) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("user %d is still %q 15s after a bulk update of %d users; want it renamed", id, got.Name, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
