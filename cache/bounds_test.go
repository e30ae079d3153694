package cache_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"userapi/auth"
	"userapi/cache"
	"userapi/cache/cachetest"
	"userapi/store"
	"userapi/store/storetest"
)

// info returns one numeric field of Redis's INFO.
func info(t *testing.T, url, field string) int64 {
	t.Helper()
	c := cachetest.Client(t, url)
	text, err := c.Do(context.Background(), c.B().Info().Section("everything").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(text, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("INFO %s = %q", field, v)
			}
			return n
		}
	}
	t.Fatalf("INFO has no %s", field)
	return 0
}

// Batch reads of ids that do not exist leave Redis's tracking table (and its
// memory) as they were: Redis tracks what a client reads with client-side
// caching whether the key exists or not, and such a key is never written, so
// its entry would never go away.
func TestGetMany_UnknownIDsAreNotTracked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	redis := cachetest.NewServer(t) // its own counters
	// A generous deadline: this is about what Redis keeps, and 1,000 reads
	// on a busy machine under the race detector can take longer than 50ms.
	c := newCache(t, b.db, cache.Options{URL: redis.URL(), Prefix: b.prefix, Timeout: 5 * time.Second})
	u := create(t, c, "ada@example.com")
	c.Get(ctx, u.ID)

	keysBefore, memBefore := info(t, redis.URL(), "tracking_total_keys"), info(t, redis.URL(), "used_memory")
	for batch := range 200 {
		ids := make([]int64, 1000)
		for i := range ids {
			ids[i] = int64(1_000_000 + batch*1000 + i)
		}
		ids[0] = u.ID
		got, err := c.GetMany(ctx, ids)
		if err != nil || len(got) != 1 || got[0] != u {
			t.Fatalf("batch %d = %+v, %v; want only %+v", batch, got, err, u)
		}
	}
	for i, ids := range b.db.getMany {
		if len(ids) != 999 {
			t.Fatalf("batch %d asked the database for %d ids, want the 999 unknown ones (Redis answered for the known one)", i, len(ids))
		}
	}
	keysAfter, memAfter := info(t, redis.URL(), "tracking_total_keys"), info(t, redis.URL(), "used_memory")
	t.Logf("200 batches of 1,000 ids: tracked keys %d → %d, used_memory %d → %d", keysBefore, keysAfter, memBefore, memAfter)
	if keysAfter-keysBefore > 10 {
		t.Errorf("tracked keys grew by %d after 200 batches of unknown ids, want at most 10", keysAfter-keysBefore)
	}
	if memAfter-memBefore > 2<<20 {
		t.Errorf("Redis used_memory grew by %d bytes after 200 batches of unknown ids, want under 2 MiB", memAfter-memBefore)
	}
	// The known user is still served from memory, tracked.
	before := c.Stats()
	c.Get(ctx, u.ID)
	if s := c.Stats(); s.Memory != before.Memory+1 {
		t.Errorf("Get of a cached user after the batches: %+v (before %+v), want a memory hit", s, before)
	}
}

// countingKeys is the real key store, counting the lookups that reach it.
type countingKeys struct {
	auth.KeyStore
	gets atomic.Int64
}

func (c *countingKeys) Get(ctx context.Context, prefix string) (store.APIKey, error) {
	c.gets.Add(1)
	return c.KeyStore.Get(ctx, prefix)
}

// A well-formed key nobody issued is looked up once, then remembered as
// unknown for the negative TTL: repeating it costs no database lookup.
func TestKeys_UnknownPrefixLookedUpOnce(t *testing.T) {
	t.Parallel()
	cachetest.OnEachDeployment(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := &countingKeys{KeyStore: store.NewAPIKeys(storetest.NewPool(t))}
		keys := cache.NewKeys(cachetest.NewClient(t, cache.Options{URL: url, Prefix: cachetest.Prefix(t), Timeout: testTimeout}), db)
		prefix, _ := auth.PrefixOf(auth.Generate().Key)
		for i := range 50 {
			if _, err := keys.Get(ctx, prefix); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Get(%s) #%d = %v, want ErrNotFound", prefix, i, err)
			}
		}
		if n := db.gets.Load(); n != 1 {
			t.Errorf("50 lookups of one unknown key made %d database lookups, want 1", n)
		}
	})
}
