package server_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"userapi/auth"
	"userapi/cache"
	"userapi/cache/cachetest"
	"userapi/ratelimit"
	"userapi/server"
	"userapi/store"
)

// limitedServer serves fake users behind a limiter in the shared Redis.
func limitedServer(t *testing.T, reads, writes string, trusted ...string) *testServer {
	t.Helper()
	var nets []*net.IPNet
	for _, cidr := range trusted {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		nets = append(nets, n)
	}
	return limitedServerWith(t, reads, writes, server.Options{TrustedProxies: nets})
}

// limitedServerWith is limitedServer with other options besides.
func limitedServerWith(t *testing.T, reads, writes string, opts server.Options) *testServer {
	t.Helper()
	rl := &server.RateLimit{
		// A generous deadline: these tests send hundreds of requests at once.
		Limiter: ratelimit.NewRedis(cachetest.NewClient(t, cache.Options{URL: cachetest.URL(), Timeout: 5 * time.Second}), cachetest.Prefix(t)),
		Reads:   mustPolicy(t, reads),
		Writes:  mustPolicy(t, writes),
	}
	users := fakeUsers{GetFn: func(id int64) (store.User, error) {
		return store.User{ID: id, Name: "U", Email: "u@example.com", Version: 1, CreatedAt: time.Now(), UpdatedAt: time.Now(), State: store.StateActive}, nil
	}}
	opts.RateLimit = rl
	return newServerWith(t, users, opts)
}

func mustPolicy(t *testing.T, s string) ratelimit.Policy {
	t.Helper()
	p, err := ratelimit.ParsePolicy(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// 200 concurrent requests from one client against a limit of 50: exactly
// 50 pass and 150 get 429, each with the headers the spec promises.
func TestRateLimit_Concurrent(t *testing.T) {
	t.Parallel()
	s := limitedServer(t, "50/1h", "off")
	var mu sync.Mutex
	count := map[int]int{}
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			res := s.do("GET", "/users/1", nil)
			mu.Lock()
			count[res.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if count[200] != 50 || count[429] != 150 {
		t.Errorf("200 concurrent requests at 50/1h: %v, want 50 × 200 and 150 × 429", count)
	}
}

func TestRateLimit_RetryAfterAndHeaders(t *testing.T) {
	t.Parallel()
	s := limitedServer(t, "2/2s", "off")
	for i := range 2 {
		res := s.do("GET", "/users/1", nil).wantStatus(t, http.StatusOK)
		if got := res.header.Get("RateLimit-Remaining"); got != strconv.Itoa(1-i) || res.header.Get("RateLimit-Limit") != "2" {
			t.Errorf("request %d: RateLimit-Limit %q, Remaining %q; want 2 and %d", i+1, res.header.Get("RateLimit-Limit"), got, 1-i)
		}
	}
	res := s.do("GET", "/users/1", nil).wantStatus(t, http.StatusTooManyRequests)
	wait, err := strconv.Atoi(res.header.Get("Retry-After"))
	if err != nil || wait < 1 || wait > 2 {
		t.Fatalf("Retry-After = %q, want 1 or 2 seconds", res.header.Get("Retry-After"))
	}
	if p := res.problem(t); p.Detail == "" {
		t.Error("429 without detail")
	}
	time.Sleep(time.Duration(wait) * time.Second)
	s.do("GET", "/users/1", nil).wantStatus(t, http.StatusOK)
}

// Reads and writes spend separate budgets; batch-get is a read.
func TestRateLimit_ReadsAndWrites(t *testing.T) {
	t.Parallel()
	s := limitedServer(t, "3/1h", "1/1h")
	s.do("DELETE", "/users/1", nil).wantStatus(t, http.StatusNotFound) // the first write passes the limiter
	if res := s.do("DELETE", "/users/1", nil); res.status != http.StatusTooManyRequests {
		t.Errorf("second write at 1/1h = %d, want 429", res.status)
	}
	for range 2 {
		s.do("GET", "/users/1", nil).wantStatus(t, http.StatusOK)
	}
	if res := s.do("POST", "/users/batch-get", map[string]any{"ids": []int{1}}); res.status == http.StatusTooManyRequests || res.header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("batch-get after 2 reads = %d with %q remaining, want it to spend the last read", res.status, res.header.Get("RateLimit-Remaining"))
	}
	s.do("GET", "/users/1", nil).wantStatus(t, http.StatusTooManyRequests)
	// Operations endpoints and docs are never limited.
	for _, path := range []string{"/livez", "/health", "/openapi.json", "/docs/index.html"} {
		res := s.do("GET", path, nil)
		if res.status == http.StatusTooManyRequests || res.header.Get("RateLimit-Limit") != "" {
			t.Errorf("GET %s = %d with RateLimit-Limit %q, want it unlimited", path, res.status, res.header.Get("RateLimit-Limit"))
		}
	}
}

// X-Forwarded-For from an untrusted peer changes nothing; from a trusted
// proxy it names the client.
func TestRateLimit_ClientIdentity(t *testing.T) {
	t.Parallel()
	t.Run("UntrustedPeer", func(t *testing.T) {
		s := limitedServer(t, "2/1h", "off")
		for i := range 3 {
			// A fresh made-up address every time would dodge a naive limiter.
			res := s.do("GET", "/users/1", nil, "X-Forwarded-For", "203.0.113."+strconv.Itoa(i), "X-Real-IP", "198.51.100."+strconv.Itoa(i))
			if want := []int{200, 200, 429}[i]; res.status != want {
				t.Errorf("request %d with a spoofed X-Forwarded-For = %d, want %d", i+1, res.status, want)
			}
		}
	})
	t.Run("TrustedProxy", func(t *testing.T) {
		s := limitedServer(t, "2/1h", "off", "127.0.0.0/8")
		for range 2 {
			s.do("GET", "/users/1", nil, "X-Forwarded-For", "203.0.113.7").wantStatus(t, http.StatusOK)
		}
		s.do("GET", "/users/1", nil, "X-Forwarded-For", "203.0.113.7").wantStatus(t, http.StatusTooManyRequests)
		// Another client behind the same proxy has its own budget, and so
		// does one named by X-Real-IP.
		s.do("GET", "/users/1", nil, "X-Forwarded-For", "203.0.113.8").wantStatus(t, http.StatusOK)
		s.do("GET", "/users/1", nil, "X-Real-IP", "198.51.100.1").wantStatus(t, http.StatusOK)
		// The client cannot prepend a forged hop: the nearest untrusted
		// address is the one the proxy saw.
		s.do("GET", "/users/1", nil, "X-Forwarded-For", "192.0.2.99, 203.0.113.7").wantStatus(t, http.StatusTooManyRequests)
	})
}

// countingKeys is a key store holding one key, counting its lookups.
type countingKeys struct {
	key     store.APIKey
	lookups atomic.Int64
}

func (k *countingKeys) Get(_ context.Context, prefix string) (store.APIKey, error) {
	k.lookups.Add(1)
	if prefix == k.key.Prefix {
		return k.key, nil
	}
	return store.APIKey{}, store.ErrNotFound
}

func (k *countingKeys) Touch(context.Context, string) error { return nil }

// Made-up keys from one address share that address's budget: past it they
// are refused before a lookup, so 100 of them cost as many lookups as the
// budget allows, not 100. A key verified before keeps a budget of its own.
func TestRateLimit_UnknownKeysShareTheAddressBudget(t *testing.T) {
	t.Parallel()
	real := auth.Generate()
	keys := &countingKeys{key: store.APIKey{Prefix: real.Prefix, Hash: real.Hash, Scopes: []string{auth.ScopeAdmin}}}
	s := limitedServerWith(t, "5/1h", "off", server.Options{Auth: auth.NewChecker(keys, keys, slog.New(slog.DiscardHandler))})

	s.do("GET", "/users/1", nil, "Authorization", "Bearer "+real.Key).wantStatus(t, http.StatusOK) // 1 of the address's 5
	count := map[int]int{}
	for range 100 {
		count[s.do("GET", "/users/1", nil, "Authorization", "Bearer "+auth.Generate().Key).status]++
	}
	if count[http.StatusUnauthorized] != 4 || count[http.StatusTooManyRequests] != 96 {
		t.Errorf("100 made-up keys after one real request, at 5/1h: %v, want 4 × 401 and 96 × 429", count)
	}
	if got := keys.lookups.Load(); got != 5 {
		t.Errorf("lookups = %d, want 5: one for the real key, one per made-up key the budget let through", got)
	}
	// The real key is counted by itself, not by its address, and its first
	// request counted against both: it has 4 more.
	for i := range 5 {
		want := map[bool]int{true: http.StatusOK, false: http.StatusTooManyRequests}[i < 4]
		s.do("GET", "/users/1", nil, "Authorization", "Bearer "+real.Key).wantStatus(t, want)
	}
}
