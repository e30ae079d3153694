package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"userapi/cache/cachetest"
	"userapi/store/storetest"
)

// A Redis Cluster loses a primary (SIGKILL) under a load of reads and
// writes through two instances. Its replica takes over; meanwhile the
// instances serve from the database and limit from memory. No answer is a
// 5xx other than 503; afterwards the budget is shared again and neither
// instance serves a user older than the database's.
func TestRedisClusterFailover(t *testing.T) {
	t.Parallel()
	cluster := cachetest.NewCluster(t)
	dbURL := storetest.NewDB(t)
	const prefix = "userapi:"
	vars := map[string]string{
		"DATABASE_URL": dbURL, "REDIS_URL": cluster.URL(), "USERAPI_CACHE_PREFIX": prefix,
		"USERAPI_WORKERS": "0", "USERAPI_TRUSTED_PROXIES": "127.0.0.1/32",
		// Slow to refill, so that the probe below sees each request
		// counted; the load comes from many addresses, each well within.
		"USERAPI_RATE_LIMIT": "100/1h", "USERAPI_RATE_LIMIT_WRITES": "100/1h",
		// The production deadline: a dead node is given up on quickly.
		"USERAPI_REDIS_TIMEOUT": "200ms",
	}
	bases := []string{instance(t, vars), instance(t, vars)}

	var ids []int64
	for i := range 30 {
		r := call(t, "POST", bases[0]+"/users", fmt.Sprintf(`{"name":"Fail","email":"u%d@example.com"}`, i))
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		var u struct{ ID int64 }
		if err := json.Unmarshal([]byte(r.body), &u); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	// The probe client's read budget lives on the primary that dies.
	const probe = "198.51.100.7"
	victim := cluster.PrimaryOf(t, prefix+"ratelimit:r:ip:"+probe)

	type outcome struct {
		at     time.Time
		status int
		err    error
		what   string
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		seq      atomic.Int64
	)
	client := &http.Client{Timeout: 15 * time.Second}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[rand.IntN(len(ids))]
				base := bases[rand.IntN(2)]
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/users/%d", base, id), nil)
				if rand.IntN(3) == 0 {
					body := fmt.Sprintf(`{"email":"u%d-%d@example.com"}`, id, seq.Add(1))
					req, _ = http.NewRequest("PATCH", fmt.Sprintf("%s/users/%d", base, id), strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
				}
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", rand.IntN(256), rand.IntN(256), rand.IntN(256)))
				o := outcome{what: req.Method + " " + req.URL.String()}
				res, err := client.Do(req)
				o.at, o.err = time.Now(), err
				if err == nil {
					o.status = res.StatusCode
					res.Body.Close()
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}

	time.Sleep(time.Second)
	killed := time.Now()
	victim.Stop()
	cluster.WaitServed(t, prefix+"ratelimit:r:ip:"+probe)
	promoted := time.Since(killed)
	time.Sleep(3 * time.Second) // the load goes on after the takeover
	close(stop)
	wg.Wait()

	byStatus := map[int]int{}
	var first503, last503 time.Time
	for _, o := range outcomes {
		switch {
		case o.err != nil:
			t.Errorf("%s: %v", o.what, o.err)
		case o.status == http.StatusServiceUnavailable:
			if first503.IsZero() {
				first503 = o.at
			}
			last503 = o.at
		case o.status >= 500 || o.status >= 300 && o.status != http.StatusNotModified:
			t.Errorf("%s = %d, want 2xx or 503", o.what, o.status)
		}
		byStatus[o.status]++
	}
	window := "none"
	if !first503.IsZero() {
		window = fmt.Sprintf("from %v to %v after the kill", first503.Sub(killed).Round(time.Millisecond), last503.Sub(killed).Round(time.Millisecond))
	}
	t.Logf("%d requests, answers %v; replica promoted %v after the kill; 503s: %s",
		len(outcomes), byStatus, promoted.Round(time.Millisecond), window)
	if len(outcomes) < 50 {
		t.Errorf("only %d requests: the load did not run", len(outcomes))
	}

	// The budget is shared again, in the new primary: one count across
	// both instances, not one per instance's memory.
	last := -1
	for i := range 10 {
		r := call(t, "GET", fmt.Sprintf("%s/users/%d", bases[i%2], ids[0]), "", "X-Forwarded-For", probe)
		n, err := strconv.Atoi(r.header.Get("RateLimit-Remaining"))
		if r.status != http.StatusOK || err != nil {
			t.Fatalf("probe #%d: %d, RateLimit-Remaining %q", i, r.status, r.header.Get("RateLimit-Remaining"))
		}
		if last >= 0 && n != last-1 {
			t.Errorf("probe #%d through instance %d: RateLimit-Remaining %d after %d, want one budget for both instances", i, i%2, n, last)
		}
		last = n
	}

	// Nothing stale: each instance serves every user as the database has it.
	want := usersByID(t, dbURL, ids)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, base := range bases {
		for _, id := range ids {
			var got struct{ Email string }
			for range 3 { // from Redis or the database, then from memory
				r := call(t, "GET", fmt.Sprintf("%s/users/%d", base, id), "", "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", id%256))
				if err := json.Unmarshal([]byte(r.body), &got); err != nil || r.status != http.StatusOK {
					t.Fatalf("GET %s/users/%d = %d %s", base, id, r.status, r.body)
				}
				if got.Email != want[id] {
					t.Errorf("%s serves user %d with email %q after the failover; the database has %q", base, id, got.Email, want[id])
				}
			}
		}
	}
}
