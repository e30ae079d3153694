package cache_test

import (
	"context"
	"testing"

	"userapi/cache"
	"userapi/cache/cachetest"
	"userapi/store"
	"userapi/store/storetest"
)

// BenchmarkGetMemoryHit measures a read this process's memory answers:
// the hot path of GET /users/{id}.
func BenchmarkGetMemoryHit(b *testing.B) {
	users := store.NewUsers(storetest.NewPool(b))
	u, err := users.Create(context.Background(), store.NewUser{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		b.Fatal(err)
	}
	c := cache.NewUsers(cachetest.NewClient(b, cache.Options{URL: cachetest.URL(), Prefix: cachetest.Prefix(b)}), users)
	ctx := context.Background()
	for range 3 { // the second read is served from Redis, the next from memory
		if _, err := c.Get(ctx, u.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(ctx, u.ID); err != nil {
			b.Fatal(err)
		}
	}
}
