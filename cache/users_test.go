package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"userapi/cache"
	"userapi/cache/cachetest"
	"userapi/internal/freeport"
	"userapi/store"
	"userapi/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m, cachetest.StopSharedCluster) }

// counting is the real store, counting the calls that reach it.
type counting struct {
	store.UserService
	gets    atomic.Int64
	mu      sync.Mutex
	getMany [][]int64
}

func (c *counting) Get(ctx context.Context, id int64) (store.User, error) {
	c.gets.Add(1)
	return c.UserService.Get(ctx, id)
}

func (c *counting) GetMany(ctx context.Context, ids []int64) ([]store.User, error) {
	c.mu.Lock()
	c.getMany = append(c.getMany, slices.Clone(ids))
	c.mu.Unlock()
	return c.UserService.GetMany(ctx, ids)
}

type bundle struct {
	db     *counting
	prefix string
}

func setup(t *testing.T) bundle {
	t.Helper()
	return bundle{db: &counting{UserService: store.NewUsers(storetest.NewPool(t))}, prefix: cachetest.Prefix(t)}
}

// instance is one service instance's cache: its own Redis connection and
// memory, over the shared database.
type instance struct {
	*cache.Users
	*cache.Client
}

func (b bundle) instance(t *testing.T, url string) instance {
	t.Helper()
	return newCache(t, b.db, cache.Options{URL: url, Prefix: b.prefix, Timeout: testTimeout})
}

// testTimeout replaces the production deadline on Redis calls in tests that
// are not about a slow Redis: on a loaded machine under the race detector a
// healthy Redis can take longer than 50 ms to answer, and a missed deadline
// turns the cache off for a second, which is not what these tests look at.
const testTimeout = 2 * time.Second

func newCache(t *testing.T, next store.UserService, opts cache.Options) instance {
	t.Helper()
	c := cachetest.NewClient(t, opts)
	return instance{cache.NewUsers(c, next), c}
}

// readUntil reads the user through c until it equals want, and returns how
// many reads were stale and how long it took. It fails the test after a
// second: entries live for minutes, so only an invalidation makes a read
// fresh that soon.
func readUntil(t *testing.T, c instance, want store.User) (stale int, took time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		got, err := c.Get(context.Background(), want.ID)
		if err != nil {
			t.Fatalf("Get(%d) = %v", want.ID, err)
		}
		if got == want {
			return stale, time.Since(start)
		}
		stale++
		if time.Since(start) > time.Second {
			t.Fatalf("Get(%d) still returns %+v a second after the write; want %+v", want.ID, got, want)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func create(t *testing.T, users store.UserService, email string) store.User {
	t.Helper()
	u, err := users.Create(context.Background(), store.NewUser{Name: "User " + email, Email: email})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestGet_TiersMemoryRedisDatabase(t *testing.T) {
	t.Parallel()
	cachetest.OnEachDeployment(t, func(t *testing.T, url string) {
		ctx := context.Background()
		b := setup(t)
		a, other := b.instance(t, url), b.instance(t, url)
		u := create(t, a, "ada@example.com")

		// The first read loads from the database and stores the row in Redis;
		// the second fetches it from Redis into memory, where the rest find it.
		for i := range 4 {
			got, err := a.Get(ctx, u.ID)
			if err != nil || got != u {
				t.Fatalf("Get #%d = %+v, %v; want %+v", i, got, err, u)
			}
		}
		if s := a.Stats(); s.Database != 1 || s.Redis != 1 || s.Memory != 2 {
			t.Errorf("4 reads on one instance: %+v, want 1 from the database, 1 from Redis, then 2 from memory", s)
		}
		// Another instance finds it in Redis, then in its own memory.
		for range 2 {
			if got, err := other.Get(ctx, u.ID); err != nil || got != u {
				t.Fatalf("other.Get = %+v, %v", got, err)
			}
		}
		if s := other.Stats(); s.Redis != 1 || s.Memory != 1 || s.Database != 0 {
			t.Errorf("2 reads on a second instance: %+v, want 1 from Redis then 1 from memory", s)
		}
		if n := b.db.gets.Load(); n != 1 {
			t.Errorf("database reads = %d, want 1", n)
		}
	})
}

// Concurrent first reads of one id, across two instances, load it once.
func TestGet_Stampede(t *testing.T) {
	t.Parallel()
	cachetest.OnEachDeployment(t, func(t *testing.T, url string) {
		ctx := context.Background()
		b := setup(t)
		instances := []instance{b.instance(t, url), b.instance(t, url)}
		u := create(t, instances[0], "ada@example.com")
		before := b.db.gets.Load()

		const n = 100
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				<-start
				got, err := instances[i%2].Get(ctx, u.ID)
				if err == nil && got != u {
					err = fmt.Errorf("got %+v", got)
				}
				if err != nil {
					errs <- err
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if loads := b.db.gets.Load() - before; loads != 1 {
			t.Errorf("%d concurrent first reads through 2 instances made %d database reads, want 1", n, loads)
		}
	})
}

// A write through one instance is seen by the other on its very next read.
func TestInvalidation_AcrossInstances(t *testing.T) {
	t.Parallel()
	cachetest.OnEachDeployment(t, func(t *testing.T, url string) {
		ctx := context.Background()
		b := setup(t)
		a, other := b.instance(t, url), b.instance(t, url)
		u := create(t, a, "ada@example.com")
		for range 2 { // warm both memories
			a.Get(ctx, u.ID)
			other.Get(ctx, u.ID)
		}
		var stale int
		var slowest time.Duration
		for i := range 20 {
			name := fmt.Sprint("name ", i)
			updated, err := a.Update(ctx, u.ID, store.UserChange{Name: &name})
			if err != nil {
				t.Fatal(err)
			}
			// The writer's own memory is dropped before Update returns.
			if got, err := a.Get(ctx, u.ID); err != nil || got != updated {
				t.Fatalf("after update %d the writer read %+v, %v; want %+v", i, got, err, updated)
			}
			n, took := readUntil(t, other, updated)
			stale += n
			slowest = max(slowest, took)
		}
		// Redis pushes invalidations; each instance applies them when its
		// process reads the message. Entries live 5 minutes, so a fresh read
		// within a second can only be the invalidation at work.
		t.Logf("other instance: %d stale reads in 20 updates; slowest invalidation %v", stale, slowest)
		if err := other.Delete(ctx, u.ID, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := a.Get(ctx, u.ID); err != nil || got.State != store.StateDeleted {
			t.Errorf("Get after delete on the other instance = %+v, %v, want the user deleted", got, err)
		}
		if err := other.Purge(ctx, u.ID, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Get(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get after purge on the other instance = %v, want ErrNotFound", err)
		}
	})
}

// Readers and writers hammer one id through two instances; afterwards every
// instance returns the database's row. A reader that loaded an old row while
// a writer committed and invalidated must not have stored it.
func TestInvalidation_RaceLeavesNoStaleEntry(t *testing.T) {
	t.Parallel()
	cachetest.OnEachDeployment(t, func(t *testing.T, url string) {
		ctx := context.Background()
		b := setup(t)
		instances := []instance{b.instance(t, url), b.instance(t, url)}
		u := create(t, instances[0], "ada@example.com")

		var wg sync.WaitGroup
		deadline := time.Now().Add(2 * time.Second)
		for w := range 4 {
			wg.Go(func() {
				for i := 0; time.Now().Before(deadline); i++ {
					name := fmt.Sprintf("writer %d, write %d", w, i)
					if _, err := instances[w%2].Update(ctx, u.ID, store.UserChange{Name: &name}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		for r := range 8 {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					if _, err := instances[r%2].Get(ctx, u.ID); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()

		want, err := b.db.UserService.Get(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i, inst := range instances {
			readUntil(t, inst, want) // lets the last invalidation arrive
			for range 3 {            // from Redis or the database, then from memory
				if got, err := inst.Get(ctx, u.ID); err != nil || got != want {
					t.Errorf("instance %d after the race = %+v, %v; want the database's %+v", i, got, err, want)
				}
			}
		}
	})
}

func TestNegativeCaching(t *testing.T) {
	t.Parallel()
	cachetest.OnEachDeployment(t, func(t *testing.T, url string) {
		ctx := context.Background()
		b := setup(t)
		c := b.instance(t, url)
		// A fresh database gives its first user id 1.
		for range 5 {
			if _, err := c.Get(ctx, 1); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Get(1) in an empty database = %v, want ErrNotFound", err)
			}
		}
		if n := b.db.gets.Load(); n != 1 {
			t.Errorf("5 reads of an unknown id made %d database reads, want 1", n)
		}
		u := create(t, c, "first@example.com")
		if u.ID != 1 {
			t.Fatalf("first user has id %d, want 1", u.ID)
		}
		if got, err := c.Get(ctx, 1); err != nil || got != u {
			t.Errorf("Get(1) right after creating it = %+v, %v; want %+v", got, err, u)
		}
	})
}

func TestGetMany_OneMultiGetOneQuery(t *testing.T) {
	t.Parallel()
	cachetest.OnEachDeployment(t, func(t *testing.T, url string) {
		ctx := context.Background()
		b := setup(t)
		c := b.instance(t, url)
		var users []store.User
		for i := range 4 {
			users = append(users, create(t, c, fmt.Sprintf("u%d@example.com", i)))
		}
		// Warm two, and remember one id as missing.
		c.Get(ctx, users[0].ID)
		c.Get(ctx, users[1].ID)
		unknown := users[3].ID + 100
		c.Get(ctx, unknown)

		ids := []int64{users[2].ID, users[0].ID, unknown, users[1].ID, users[3].ID, unknown + 1}
		got, err := c.GetMany(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		gotIDs := map[int64]store.User{}
		for _, u := range got {
			gotIDs[u.ID] = u
		}
		for _, u := range users {
			if gotIDs[u.ID] != u {
				t.Errorf("GetMany lacks %+v", u)
			}
		}
		if len(got) != 4 {
			t.Errorf("GetMany returned %d users, want 4", len(got))
		}
		want := fmt.Sprint([][]int64{{users[2].ID, users[3].ID, unknown + 1}})
		if fmt.Sprint(b.db.getMany) != want {
			t.Errorf("database batch reads = %v, want one for the misses only: %v", b.db.getMany, want)
		}
	})
}

// With Redis gone the cache answers from the database; when Redis returns it
// serves again, and nothing written meanwhile is read stale.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	redis := cachetest.NewServer(t)
	c := b.instance(t, redis.URL())
	u := create(t, c, "ada@example.com")
	c.Get(ctx, u.ID)
	c.Get(ctx, u.ID) // now in memory

	redis.Stop()
	name := "changed while Redis was down"
	updated, err := c.Update(ctx, u.ID, store.UserChange{Name: &name})
	if err != nil {
		t.Fatalf("Update with Redis down = %v, want success", err)
	}
	for range 3 {
		if got, err := c.Get(ctx, u.ID); err != nil || got != updated {
			t.Fatalf("Get with Redis down = %+v, %v; want %+v from the database", got, err, updated)
		}
	}
	if c.Ping(ctx) == nil {
		t.Error("Ping with Redis down = nil, want an error")
	}

	redis.Start()
	waitFor(t, "the cache to use Redis again", c.Available)
	before := c.Stats()
	for range 3 {
		if got, err := c.Get(ctx, u.ID); err != nil || got != updated {
			t.Fatalf("Get after Redis returned = %+v, %v; want %+v", got, err, updated)
		}
	}
	if s := c.Stats(); s.Bypassed != before.Bypassed || s.Memory == before.Memory {
		t.Errorf("after Redis returned: %+v (before %+v), want reads served by the cache again", s, before)
	}
}

// A write whose invalidation could not reach Redis is invalidated once Redis
// is reachable again, so other instances do not keep the old row.
func TestRedisOutage_PendingInvalidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	redis := cachetest.NewServer(t)
	writer := b.instance(t, redis.URL())
	reader := b.instance(t, redis.URL())
	u := create(t, writer, "ada@example.com")
	reader.Get(ctx, u.ID)

	// The writer loses Redis (its bypass window) while Redis itself stays up.
	redis.Stop()
	writer.Get(ctx, u.ID) // notices the outage
	redis.Start()
	waitFor(t, "the reader to reconnect", func() bool { return reader.Ping(ctx) == nil })
	reader.Get(ctx, u.ID) // cached again, in Redis and the reader's memory

	name := "written during the writer's outage"
	updated, err := writer.Update(ctx, u.ID, store.UserChange{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reader to see the write", func() bool {
		writer.Get(ctx, u.ID) // lets the writer notice Redis is back and flush
		got, err := reader.Get(ctx, u.ID)
		return err == nil && got == updated
	})
}

// The invalidations missed during an outage are replayed in the background:
// reads do not wait for the replay but bypass Redis until it ends, and a
// write made while it runs is invalidated by it too, without the writer
// being called again.
func TestRedisOutage_ReplayInBackground(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	redis := cachetest.NewServer(t)
	proxy := cachetest.NewProxy(t, redis.Addr())
	c := b.instance(t, proxy.URL())
	reader := b.instance(t, redis.URL())
	missed := create(t, c, "missed@example.com")
	during := create(t, c, "during@example.com")
	for range 2 { // in Redis, and in the reader's memory
		reader.Get(ctx, missed.ID)
		reader.Get(ctx, during.ID)
	}
	rename := func(id int64, name string) store.User {
		t.Helper()
		u, err := c.Update(ctx, id, store.UserChange{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}

	// Redis does not answer the writer's invalidation in time.
	proxy.Pause()
	missedNew := rename(missed.ID, "written while Redis was slow")
	proxy.Resume()
	time.Sleep(1100 * time.Millisecond) // the bypass window after the failure

	// Still slow: the replay's first round trip waits in the proxy.
	proxy.Pause()
	before := c.Stats()
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	got, err := c.Get(rctx, during.ID)
	cancel()
	if err != nil || got != during {
		t.Fatalf("Get while the replay waits on Redis = %+v, %v; want %+v from the database", got, err, during)
	}
	if s := c.Stats(); s.Bypassed != before.Bypassed+1 {
		t.Errorf("Get while the replay waits on Redis: %+v (before %+v), want it to bypass Redis", s, before)
	}
	waitFor(t, "the replay to reach Redis", func() bool { return proxy.Held() > 0 })
	duringNew := rename(during.ID, "written during the replay")
	proxy.Resume()

	for _, want := range []store.User{missedNew, duringNew} {
		waitFor(t, fmt.Sprintf("the other instance to read user %d fresh", want.ID), func() bool {
			got, err := reader.Get(ctx, want.ID)
			return err == nil && got == want
		})
	}
	untilServedFromRedis(t, "after the replay", c.Users.Stats, func() error {
		got, err := c.Get(ctx, during.ID)
		if err == nil && got != duringNew {
			t.Fatalf("after the replay: Get = %+v, want %+v", got, duringNew)
		}
		return err
	})
}

// Start-up with Redis unreachable works, and the cache connects when Redis
// appears.
func TestStartWithoutRedis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	port := freeport.Port(t)
	var logs syncBuffer
	client, err := cache.NewClient(cache.Options{
		URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), Prefix: b.prefix, Timeout: testTimeout,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	c := instance{cache.NewUsers(client, b.db), client}
	u := create(t, c, "ada@example.com")
	if got, err := c.Get(ctx, u.ID); err != nil || got != u {
		t.Fatalf("Get with no Redis = %+v, %v; want %+v", got, err, u)
	}
	waitFor(t, "the start-up log line", func() bool { return logs.Count("cache unavailable") == 1 })

	cachetest.NewServerOnPort(t, port)
	waitFor(t, "the cache to connect", c.Available)
	for range 3 {
		c.Get(ctx, u.ID)
	}
	if s := c.Stats(); s.Memory == 0 {
		t.Errorf("after Redis appeared: %+v, want memory hits", s)
	}
	if n := logs.Count("cache unavailable"); n != 1 {
		t.Errorf("logged %q %d times while Redis was missing, want once:\n%s", "cache unavailable", n, logs.String())
	}
}

// syncBuffer collects log lines written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Count is how many times substr occurs in what was written.
func (s *syncBuffer) Count(substr string) int { return strings.Count(s.String(), substr) }

// A create inside a caller's transaction forgets "no such user" when the
// transaction ends, not before: a read between the create and the commit
// must not leave the new user unreadable.
func TestNegativeCaching_CreateInTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewPool(t)
	c := newCache(t, store.NewUsers(pool), cache.Options{URL: cachetest.URL(), Prefix: cachetest.Prefix(t), Timeout: testTimeout})
	k, err := store.NewIdempotency(pool).Begin(ctx, "", "key")
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.Create(k.Context(ctx), store.NewUser{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	// Not committed: outside the transaction there is no such user yet, and
	// the cache remembers that.
	if _, err := c.Get(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%d) before the commit = %v, want ErrNotFound", u.ID, err)
	}
	if err := k.Commit(ctx, store.Response{Fingerprint: make([]byte, 32), Status: 201, Body: []byte("{}")}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, u.ID); err != nil || got != u {
		t.Errorf("Get(%d) after the commit = %+v, %v; want %+v", u.ID, got, err, u)
	}
}
