package server_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"userapi/metrics"
	"userapi/ratelimit"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
)

// BenchmarkGetUser measures the HTTP layer alone (routing, validation,
// logging, metrics, encoding) on a user the store returns from memory:
// "Open" without API keys or a rate limit, "AsShipped" with both (a key
// checker and a limiter that answer from memory, so that what is measured
// is the chain, not the network).
func BenchmarkGetUser(b *testing.B) {
	const key = "uak_bench_secret"
	u := store.User{ID: 1, Name: "User 1", Email: "user1@example.com", Version: 1, CreatedAt: time.Now(), UpdatedAt: time.Now(), State: store.StateActive}
	for _, tt := range []struct {
		name string
		opts server.Options
	}{
		{"Open", server.Options{}},
		{"AsShipped", server.Options{
			Auth: fakeKeys{key: {Prefix: "uak_bench", Scopes: []string{"admin"}}},
			RateLimit: &server.RateLimit{Limiter: ratelimit.NewMemory(100),
				Reads: ratelimit.Policy{Limit: 1 << 20, Period: time.Second}, Writes: ratelimit.Policy{Limit: 1 << 20, Period: time.Second}},
		}},
	} {
		tt.opts.Observer = metrics.NewRequests(prometheus.NewRegistry())
		e, err := server.New(slog.New(slog.NewJSONHandler(io.Discard, nil)), fakeUsers{GetFn: func(int64) (store.User, error) { return u, nil }}, tt.opts)
		if err != nil {
			b.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodGet, "/users/1", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req.Body = http.NoBody // the body limit wraps it on each pass
				req.URL.RawQuery = ""  // and validation writes the query's defaults in
				w := httptest.NewRecorder()
				e.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkListUsers measures GET /users?limit=100 over a real database:
// the statement, the scan of a hundred rows and their encoding.
func BenchmarkListUsers(b *testing.B) {
	pool := storetest.Pool(b, storetest.NewDB(b), 4)
	if _, err := pool.Exec(b.Context(), `INSERT INTO users (name, email, email_key)
		SELECT 'User ' || g, 'user' || g || '@example.com', 'user' || g || '@example.com' FROM generate_series(1, 1000) g`); err != nil {
		b.Fatal(err)
	}
	e, err := server.New(slog.New(slog.DiscardHandler), store.NewUsers(pool), server.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/users?limit=100", nil)
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkCreateUser measures POST /users over a real database, without
// and with an Idempotency-Key, and the replay of a stored answer: the
// difference is what the key costs (a transaction, an advisory lock, a
// lookup and an insert).
func BenchmarkCreateUser(b *testing.B) {
	pool := storetest.Pool(b, storetest.NewDB(b), 4)
	e, err := server.New(slog.New(slog.DiscardHandler), store.NewUsers(pool), server.Options{Idempotency: store.NewIdempotency(pool)})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	post := func(key, email string, want int) {
		body := `{"name":"Bench","email":"` + email + `"}`
		req := httptest.NewRequest(http.MethodPost, "/users", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		if w.Code != want {
			b.Fatalf("status %d, want %d: %s", w.Code, want, w.Body)
		}
	}
	b.Run("NoKey", func(b *testing.B) {
		for b.Loop() {
			n++
			post("", fmt.Sprintf("u%d@example.com", n), http.StatusCreated)
		}
	})
	b.Run("Key", func(b *testing.B) {
		for b.Loop() {
			n++
			post(fmt.Sprint("key-", n), fmt.Sprintf("u%d@example.com", n), http.StatusCreated)
		}
	})
	b.Run("Replay", func(b *testing.B) {
		n++
		key, email := fmt.Sprint("key-", n), fmt.Sprintf("u%d@example.com", n)
		post(key, email, http.StatusCreated)
		for b.Loop() {
			post(key, email, http.StatusCreated)
		}
	})
}

// unknownFields is a batch-get body with n unknown members besides ids.
func unknownFields(n int) string {
	var b strings.Builder
	b.WriteString(`{"ids":[1]`)
	for i := range n {
		fmt.Fprintf(&b, `,"f%d":%d`, i, i)
	}
	b.WriteString("}")
	return b.String()
}

// BenchmarkUnknownFields measures refusing a body with many unknown
// fields, which a key with users:read can send: 999 pass the shape check
// and reach the validator, more are refused before it; "Unbounded" lifts
// the check to show what the validator alone costs.
func BenchmarkUnknownFields(b *testing.B) {
	for _, tt := range []struct {
		name    string
		fields  int
		maxKeys int
	}{
		{"999", 999, 0},
		{"8000", 8000, 0},
		{"8000Unbounded", 8000, 1 << 30},
	} {
		e, err := server.New(slog.New(slog.DiscardHandler), fakeUsers{}, server.Options{JSONMaxKeys: tt.maxKeys})
		if err != nil {
			b.Fatal(err)
		}
		body := unknownFields(tt.fields)
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/users/batch-get", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				e.ServeHTTP(w, req)
				if w.Code != http.StatusUnprocessableEntity {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
