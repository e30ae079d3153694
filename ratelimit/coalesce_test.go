package ratelimit_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"userapi/cache/cachetest"
	"userapi/ratelimit"
)

// countingConn counts the calls that reach Redis, and holds the first one
// until release is closed.
type countingConn struct {
	ratelimit.Conn
	calls   atomic.Int64
	release chan struct{}
}

func (c *countingConn) Do(ctx context.Context, call func(ctx context.Context, rc rueidis.Client) error) error {
	if c.calls.Add(1) == 1 && c.release != nil {
		<-c.release
	}
	return c.Conn.Do(ctx, call)
}

// spendConcurrently sends n requests at once, the i-th through ls[i%len(ls)],
// and returns the decisions of those allowed.
func spendConcurrently(t *testing.T, ls []ratelimit.Limiter, n int, p ratelimit.Policy) []ratelimit.Decision {
	t.Helper()
	var mu sync.Mutex
	var allowed []ratelimit.Decision
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d, err := ls[i%len(ls)].Allow(context.Background(), "client", p)
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				mu.Lock()
				allowed = append(allowed, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return allowed
}

// remainingOf are the RateLimit-Remaining values the allowed requests got,
// in order.
func remainingOf(ds []ratelimit.Decision) []int {
	var out []int
	for _, d := range ds {
		out = append(out, d.Remaining)
	}
	slices.Sort(out)
	return out
}

// upTo is 0, 1, …, n-1.
func upTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// 200 concurrent requests through two instances against a limit of 50:
// exactly 50 pass, and each is told a different remaining count, as if
// they had been sent one by one.
func TestAllow_AtomicAcrossInstances(t *testing.T) {
	t.Parallel()
	cachetest.OnEachDeployment(t, func(t *testing.T, url string) {
		allowed := spendConcurrently(t, twoInstances(t, url), 200, ratelimit.Policy{Limit: 50, Period: time.Hour})
		if got := remainingOf(allowed); !slices.Equal(got, upTo(50)) {
			t.Errorf("200 concurrent requests through two instances, limit 50: %d allowed with remaining %v; want 50 with 0…49", len(got), got)
		}
	})
}

// The requests that arrive while a call is in flight share the next call.
func TestRedis_CoalescesConcurrentRequests(t *testing.T) {
	t.Parallel()
	counting := &countingConn{Conn: conn(t, cachetest.URL()), release: make(chan struct{})}
	l := ratelimit.NewRedis(counting, cachetest.Prefix(t))
	p := ratelimit.Policy{Limit: 50, Period: time.Hour}
	go func() {
		defer close(counting.release)
		deadline := time.Now().Add(10 * time.Second)
		for l.Waiting("client", p) < 199 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}()
	allowed := spendConcurrently(t, []ratelimit.Limiter{l}, 200, p)
	if got := remainingOf(allowed); !slices.Equal(got, upTo(50)) {
		t.Errorf("200 concurrent requests, limit 50: %d allowed with remaining %v; want 50 with 0…49", len(got), got)
	}
	if n := counting.calls.Load(); n != 2 {
		t.Errorf("200 concurrent requests of one client made %d calls to Redis, want 2 (the first, then the 199 that waited for it)", n)
	}
}

// Once a client's budget is spent, its requests are refused without a call
// to Redis until the budget holds one again.
func TestRedis_RemembersClosedWindow(t *testing.T) {
	t.Parallel()
	counting := &countingConn{Conn: conn(t, cachetest.URL())}
	l := ratelimit.NewRedis(counting, cachetest.Prefix(t))
	p := ratelimit.Policy{Limit: 2, Period: 400 * time.Millisecond} // one per 200ms
	ctx := context.Background()
	var first ratelimit.Decision
	for i := range 3 {
		d, err := l.Allow(ctx, "c", p)
		if err != nil || d.Allowed != (i < 2) {
			t.Fatalf("request %d = %+v, %v; want the first two allowed", i+1, d, err)
		}
		first = d
	}
	for range 10 {
		d, err := l.Allow(ctx, "c", p)
		if err != nil || d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > first.RetryAfter || d.Remaining != 0 || d.Limit != 2 {
			t.Fatalf("request while the budget is spent = %+v, %v; want refused, retry within %s", d, err, first.RetryAfter)
		}
	}
	if n := counting.calls.Load(); n != 3 {
		t.Errorf("13 requests, the last 10 refused while the budget was known spent: %d calls to Redis, want 3", n)
	}
	time.Sleep(first.RetryAfter + 5*time.Millisecond)
	if d, err := l.Allow(ctx, "c", p); err != nil || !d.Allowed {
		t.Errorf("request after RetryAfter = %+v, %v; want allowed", d, err)
	}
}

// A client far from its limit is served from a lease: its requests are
// decided in memory, each still told the budget left as if it had asked
// Redis, and what the lease did not hand out goes back to the budget.
func TestRedis_LeasesFarFromLimit(t *testing.T) {
	t.Parallel()
	counting := &countingConn{Conn: conn(t, cachetest.URL())}
	prefix := cachetest.Prefix(t)
	a := ratelimit.NewRedis(counting, prefix)
	p := ratelimit.Policy{Limit: 1500, Period: 1000 * time.Hour} // refills one in 40 minutes
	ctx := context.Background()
	const sent = 300
	for i := range sent {
		d, err := a.Allow(ctx, "client", p)
		if err != nil || !d.Allowed || d.Remaining != p.Limit-1-i {
			t.Fatalf("request %d = %+v, %v; want allowed with %d remaining", i+1, d, err, p.Limit-1-i)
		}
	}
	if n := counting.calls.Load(); n > sent/20 {
		t.Errorf("%d requests far from the limit made %d calls to Redis, want at most %d", sent, n, sent/20)
	}
	if a.Leased("client", p) == 0 {
		t.Fatal("no lease held after 300 requests far from the limit")
	}
	a.AwaitLeasesReturned()
	// The rest of the budget, and not one request more, through another
	// instance: the lease's unused requests are back.
	b := ratelimit.NewRedis(conn(t, cachetest.URL()), prefix)
	if allowed := spendConcurrently(t, []ratelimit.Limiter{b}, 2*p.Limit, p); len(allowed) != p.Limit-sent {
		t.Errorf("after %d of %d spent and the lease expired, %d more allowed; want %d", sent, p.Limit, len(allowed), p.Limit-sent)
	}
}

// With leases in play, concurrent requests through two instances still
// pass exactly the budget.
func TestRedis_LeasesKeepBudgetExact(t *testing.T) {
	t.Parallel()
	cachetest.OnEachDeployment(t, func(t *testing.T, url string) {
		p := ratelimit.Policy{Limit: 3000, Period: 1000 * time.Hour}
		if allowed := spendConcurrently(t, twoInstances(t, url), 2*p.Limit, p); len(allowed) != p.Limit {
			t.Errorf("%d concurrent requests through two instances, limit %d: %d allowed", 2*p.Limit, p.Limit, len(allowed))
		}
	})
}
