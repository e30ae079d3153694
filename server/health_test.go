package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"userapi/server"
)

// Concurrent /health calls share one probe of the dependencies, and later
// calls within HealthMaxAge reuse its result.
func TestHealth_ProbesOncePerMaxAge(t *testing.T) {
	t.Parallel()
	const callers = 20
	var arrived, probes atomic.Int64
	allIn := make(chan struct{})
	check := server.Check{Name: "database", Required: true, Probe: func(ctx context.Context) error {
		probes.Add(1)
		// Hold the probe until every caller has sent its request, so
		// that they all find no fresh result.
		select {
		case <-allIn:
		case <-ctx.Done():
		}
		return nil
	}}
	e, err := server.New(slog.New(slog.NewTextHandler(io.Discard, nil)), fakeUsers{}, server.Options{Checks: []server.Check{check}, HealthMaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == callers {
			close(allIn)
		}
		e.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			res, err := http.Get(srv.URL + "/health")
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("GET /health = %d, want 200", res.StatusCode)
			}
		})
	}
	wg.Wait()
	if got := probes.Load(); got != 1 {
		t.Errorf("%d concurrent /health calls ran %d probes, want 1", callers, got)
	}
}

// A result older than HealthMaxAge is not served: the next call probes again.
func TestHealth_StaleResultIsProbedAgain(t *testing.T) {
	t.Parallel()
	var probes atomic.Int64
	check := server.Check{Name: "database", Required: true, Probe: func(context.Context) error { probes.Add(1); return nil }}
	s := newServerWith(t, fakeUsers{}, server.Options{Checks: []server.Check{check}, HealthMaxAge: time.Nanosecond})
	for range 3 {
		s.do("GET", "/health", nil).wantStatus(t, http.StatusOK)
	}
	if got := probes.Load(); got != 3 {
		t.Errorf("3 calls with HealthMaxAge=1ns ran %d probes, want 3", got)
	}
}
