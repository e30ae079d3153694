package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"userapi/cache/cachetest"
	"userapi/store/storetest"
)

// A hung Redis (connected, silent: SIGSTOP) must not stall the API: every
// Redis call has a short deadline, and a call past it makes the instance
// bypass Redis for a while. Under load, with Redis frozen, no request fails
// and p99 stays under 100 ms plus the deadline.
func TestRedisHangUnderLoad(t *testing.T) {
	t.Parallel()
	redis := cachetest.NewServer(t)
	const deadline = 50 * time.Millisecond
	vars := map[string]string{
		"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": redis.URL(), "USERAPI_CACHE_PREFIX": "hang:",
		"USERAPI_REDIS_TIMEOUT": deadline.String(), "USERAPI_AUTH": "on",
		"USERAPI_RATE_LIMIT": "1000000/1m", "USERAPI_RATE_LIMIT_WRITES": "1000000/1m",
	}
	key := newKey(t, vars, "--name", "load", "--scopes", "users:read,users:write")
	base := instance(t, vars)
	if r := call(t, "POST", base+"/users", `{"name":"Ada","email":"ada@example.com"}`, bearer(key)...); r.status != http.StatusCreated {
		t.Fatalf("POST /users = %d %s", r.status, r.body)
	}

	type result struct {
		status int
		took   time.Duration
	}
	var mu sync.Mutex
	var results []result
	stop := make(chan struct{})
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Reads of a user (key check, limiter, user cache), with a
				// write now and then (invalidation).
				method, path, body := "GET", "/users/1", ""
				if i%10 == 9 {
					method, body = "PATCH", fmt.Sprintf(`{"name":"Ada %d-%d"}`, w, i)
				}
				req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				if body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				start := time.Now()
				res, err := client.Do(req)
				r := result{took: time.Since(start)}
				if err != nil {
					t.Errorf("%s %s: %v", method, path, err)
					return
				}
				res.Body.Close()
				r.status = res.StatusCode
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		})
	}
	collect := func() []result {
		mu.Lock()
		defer mu.Unlock()
		got := results
		results = nil
		return got
	}

	time.Sleep(time.Second)
	before := collect()
	redis.Freeze()
	time.Sleep(4 * time.Second)
	frozen := collect()
	redis.Thaw()
	close(stop)
	wg.Wait()

	p99 := func(rs []result) time.Duration {
		took := make([]time.Duration, len(rs))
		for i, r := range rs {
			took[i] = r.took
		}
		slices.Sort(took)
		return took[len(took)*99/100]
	}
	failed := 0
	for _, r := range frozen {
		if r.status >= 500 {
			failed++
		}
	}
	t.Logf("Redis answering: %d requests in 1s, p99 %v; Redis frozen: %d requests in 4s, p99 %v, %d failed",
		len(before), p99(before), len(frozen), p99(frozen), failed)
	if len(frozen) < 100 {
		t.Fatalf("only %d requests in 4 s with Redis frozen, want at least 100", len(frozen))
	}
	if failed > 0 {
		t.Errorf("%d of %d requests with Redis frozen answered 5xx, want none", failed, len(frozen))
	}
	// A request that waited on the frozen Redis would wait out the request
	// timeout (10 s). The bound sits far from both that and a busy
	// machine's noise (the p99s above are the measurement).
	if got, limit := p99(frozen), 2*time.Second; got > limit {
		t.Errorf("p99 with Redis frozen = %v, want under %v: requests wait on a frozen Redis", got, limit)
	}
}
