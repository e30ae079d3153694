package ratelimit_test

import (
	"testing"
	"time"

	"userapi/cache"
	"userapi/cache/cachetest"
	"userapi/ratelimit"
)

// conn is a connected cache.Client of the Redis at url. Its deadline is
// generous: these tests send hundreds of calls at once on a busy machine,
// and are about the limiter, not about a slow Redis.
func conn(t *testing.T, url string) *cache.Client {
	t.Helper()
	return cachetest.NewClient(t, cache.Options{URL: url, Timeout: 5 * time.Second})
}

// twoInstances are two limiters on the Redis at url with one key prefix:
// two instances of the service.
func twoInstances(t *testing.T, url string) []ratelimit.Limiter {
	t.Helper()
	prefix := cachetest.Prefix(t)
	return []ratelimit.Limiter{ratelimit.NewRedis(conn(t, url), prefix), ratelimit.NewRedis(conn(t, url), prefix)}
}
