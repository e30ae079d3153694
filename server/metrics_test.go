package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"userapi/auth"
	"userapi/metrics"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
)

// Requests are counted by route template, method and status; unknown paths
// share one label value, so they cannot grow the series without bound.
func TestMetrics_RequestsByRoute(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	s := newServerWith(t, nil, server.Options{Observer: metrics.NewRequests(reg)})

	s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated)
	s.do("GET", "/users/1", nil).wantStatus(t, http.StatusOK)
	s.do("GET", "/users/1", nil).wantStatus(t, http.StatusOK)
	s.do("GET", "/users/123", nil).wantStatus(t, http.StatusNotFound)
	s.do("GET", "/users?limit=5", nil).wantStatus(t, http.StatusOK)
	s.do("GET", "/no/such/path", nil).wantStatus(t, http.StatusNotFound)
	s.do("GET", "/another-unknown-path", nil).wantStatus(t, http.StatusNotFound)
	s.do("DELETE", "/livez", nil).wantStatus(t, http.StatusMethodNotAllowed)

	tests := []struct {
		route, method, status string
		want                  float64
	}{
		{"/users", "POST", "201", 1},
		{"/users/:id", "GET", "200", 2},
		{"/users/:id", "GET", "404", 1},
		{"/users", "GET", "200", 1},
		{server.UnmatchedRoute, "GET", "404", 2},
		{"/livez", "DELETE", "405", 1},
	}
	for _, tt := range tests {
		labels := map[string]string{"route": tt.route, "method": tt.method, "status": tt.status}
		if got := value(t, reg, "userapi_http_requests_total", labels); got != tt.want {
			t.Errorf("userapi_http_requests_total%v = %v, want %v", labels, got, tt.want)
		}
	}
	routes := labelValues(t, reg, "userapi_http_requests_total", "route")
	for _, r := range routes {
		if r == "/users/1" || r == "/users/123" || r == "/no/such/path" || r == "/another-unknown-path" {
			t.Errorf("route label %q is a raw path, want only templates; all: %q", r, routes)
		}
	}
	if want := []string{"/livez", "/users", "/users/:id", server.UnmatchedRoute}; !slices.Equal(routes, want) {
		t.Errorf("route labels = %q, want %q", routes, want)
	}
	hist := find(t, reg, "userapi_http_request_duration_seconds", map[string]string{"route": "/users/:id", "method": "GET"})
	if got := hist.GetHistogram().GetSampleCount(); got != 3 {
		t.Errorf("latency samples for GET /users/:id = %d, want 3", got)
	}
}

// Refusals are counted by budget.
func TestMetrics_RateLimitRefusals(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	s := limitedServerWith(t, "2/1m", "1/1m", server.Options{Observer: metrics.NewRequests(reg)})
	for range 3 {
		s.do("GET", "/users/1", nil)
	}
	// An invalid body spends the write budget all the same.
	s.do("POST", "/users", map[string]string{}).wantStatus(t, http.StatusUnprocessableEntity)
	s.do("POST", "/users", map[string]string{}).wantStatus(t, http.StatusTooManyRequests)

	for _, tt := range []struct {
		budget string
		want   float64
	}{{"reads", 1}, {"writes", 1}} {
		if got := value(t, reg, "userapi_rate_limit_refusals_total", map[string]string{"budget": tt.budget}); got != tt.want {
			t.Errorf("refusals{budget=%q} = %v, want %v", tt.budget, got, tt.want)
		}
	}
	if got := value(t, reg, "userapi_http_requests_total", map[string]string{"route": "/users/:id", "method": "GET", "status": "429"}); got != 1 {
		t.Errorf("GET /users/:id 429 = %v, want 1", got)
	}
}

// find returns the one series of the named metric with these labels.
func find(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue series
				}
			}
			return m
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return nil
}

// value is a counter's or gauge's value.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	m := find(t, reg, name, labels)
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

// labelValues lists the distinct values of one label of a metric, sorted.
func labelValues(t *testing.T, reg *prometheus.Registry, name, label string) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && !slices.Contains(out, l.GetValue()) {
					out = append(out, l.GetValue())
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// Refusals for the API key are counted by reason, so an on-call engineer
// can tell a client with a revoked key from a scan with made-up ones.
func TestMetrics_AuthRefusals(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	pool := storetest.Pool(t, storetest.NewDB(t), 3)
	keys := store.NewAPIKeys(pool)
	s := newServerWith(t, store.NewUsers(pool), server.Options{
		Observer: metrics.NewRequests(reg),
		Auth:     auth.NewChecker(keys, keys, slog.New(slog.DiscardHandler)),
	})
	reader := auth.Generate()
	if _, err := keys.Create(context.Background(), store.NewAPIKey{Prefix: reader.Prefix, Hash: reader.Hash, Name: "r", Scopes: []string{auth.ScopeUsersRead}}); err != nil {
		t.Fatal(err)
	}
	s.do("GET", "/users", nil).wantStatus(t, http.StatusUnauthorized)
	s.do("GET", "/users", nil, "Authorization", "Bearer "+auth.Generate().Key).wantStatus(t, http.StatusUnauthorized)
	s.do("GET", "/users", nil, "Authorization", "Bearer nonsense").wantStatus(t, http.StatusUnauthorized)
	s.do("DELETE", "/users/1", nil, "Authorization", "Bearer "+reader.Key).wantStatus(t, http.StatusForbidden)
	s.do("GET", "/users", nil, "Authorization", "Bearer "+reader.Key).wantStatus(t, http.StatusOK)
	for reason, want := range map[string]float64{"missing": 1, "invalid": 2, "scope": 1, "revoked": 0, "expired": 0} {
		if got := value(t, reg, "userapi_auth_refusals_total", map[string]string{"reason": reason}); got != want {
			t.Errorf("userapi_auth_refusals_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
}
