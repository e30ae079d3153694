package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"userapi/metrics"
	"userapi/server"
	"userapi/store"
)

// BenchmarkGetUser measures the HTTP layer alone (routing, validation,
// logging, metrics, encoding) on a user the store returns from memory.
func BenchmarkGetUser(b *testing.B) {
	u := store.User{ID: 1, Name: "User 1", Email: "user1@example.com", Version: 1, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	e, err := server.New(slog.New(slog.NewJSONHandler(io.Discard, nil)), fakeUsers{GetFn: func(int64) (store.User, error) { return u, nil }},
		server.Options{Observer: metrics.NewRequests(prometheus.NewRegistry())})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/users/1", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
