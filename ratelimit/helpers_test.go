package ratelimit_test

import (
	"testing"
	"time"

	"userapi/cache"
	"userapi/cache/cachetest"
)

// conn is a connected cache.Client of the Redis at url. Its deadline is
// generous: these tests send hundreds of calls at once on a busy machine,
// and are about the limiter, not about a slow Redis.
func conn(t *testing.T, url string) *cache.Client {
	t.Helper()
	return cachetest.NewClient(t, cache.Options{URL: url, Timeout: 5 * time.Second})
}
