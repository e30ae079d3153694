package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"userapi/server"
	"userapi/store"
)

// /readyz follows its probe, and answers 503 from the moment the instance
// drains, while the other routes keep serving.
func TestReadiness(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		probe      error
		drain      bool
		wantStatus int
		wantDetail string
	}{
		{"ready", nil, false, http.StatusOK, ""},
		{"database down", fmt.Errorf("%w: dial tcp: refused", store.ErrUnavailable), false, http.StatusServiceUnavailable, "the database is unreachable"},
		{"migrations missing", fmt.Errorf("%w: 1 of 6 not applied", store.ErrSchemaBehind), false, http.StatusServiceUnavailable, "the database lacks migrations this version needs; run userapi migrate"},
		{"draining", nil, true, http.StatusServiceUnavailable, "this instance is shutting down; send requests to another one"},
		{"draining beats a failing probe", errors.New("boom"), true, http.StatusServiceUnavailable, "this instance is shutting down; send requests to another one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready := &server.Readiness{Probe: func(context.Context) error { return tt.probe }}
			s := newServerWith(t, fakeUsers{GetFn: func(int64) (store.User, error) { return store.User{}, store.ErrNotFound }}, server.Options{Ready: ready})
			if tt.drain {
				ready.Drain()
			}
			res := s.do("GET", "/readyz", nil)
			if res.status != tt.wantStatus {
				t.Fatalf("GET /readyz = %d %s, want %d", res.status, res.body, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusOK {
				if string(res.body) != "{\"status\":\"ready\"}\n" {
					t.Errorf("GET /readyz body = %s, want {\"status\":\"ready\"}", res.body)
				}
				return
			}
			if p := res.problem(t); p.Detail != tt.wantDetail {
				t.Errorf("GET /readyz detail = %q, want %q", p.Detail, tt.wantDetail)
			}
			if got := res.header.Get("Retry-After"); got != "1" {
				t.Errorf("GET /readyz Retry-After = %q, want 1", got)
			}
			// Not ready for new traffic is not dead: everything else serves.
			s.do("GET", "/livez", nil).wantStatus(t, http.StatusOK)
			s.do("GET", "/users/1", nil).wantStatus(t, http.StatusNotFound)
		})
	}
}

// Without a Readiness, /readyz is always ready.
func TestReadiness_Default(t *testing.T) {
	t.Parallel()
	s := newServerWith(t, fakeUsers{}, server.Options{})
	s.do("GET", "/readyz", nil).wantStatus(t, http.StatusOK)
}

// Load balancers probe often: /readyz spends no rate budget.
func TestReadiness_NotRateLimited(t *testing.T) {
	t.Parallel()
	s := limitedServer(t, "1/1h", "off")
	for i := range 3 {
		res := s.do("GET", "/readyz", nil)
		if res.status != http.StatusOK || res.header.Get("RateLimit-Limit") != "" {
			t.Errorf("GET /readyz #%d at 1/1h = %d with RateLimit-Limit %q, want 200 and no budget", i+1, res.status, res.header.Get("RateLimit-Limit"))
		}
	}
}
