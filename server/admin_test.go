package server_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"userapi/auth"
	"userapi/metrics"
	"userapi/ratelimit"
	"userapi/server"
)

// fakeKeys knows a few keys by their whole text.
type fakeKeys map[string]auth.Key

func (f fakeKeys) Check(_ context.Context, key string) (auth.Key, error) {
	if k, ok := f[key]; ok {
		return k, nil
	}
	return auth.Key{}, auth.ErrUnknown
}

// Verified says every key was checked before: these tests are not about the
// limit on unverified keys.
func (f fakeKeys) Verified(string) bool { return true }

// adminServer serves a stand-in dashboard that counts the requests reaching it.
func adminServer(t *testing.T, opts server.Options) (*testServer, *atomic.Int64) {
	t.Helper()
	var reached atomic.Int64
	opts.Admin = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	opts.Auth = fakeKeys{
		"admin-key":  {Prefix: "adm", Scopes: []string{auth.ScopeAdmin}},
		"reader-key": {Prefix: "rdr", Scopes: []string{auth.ScopeJobsRead}},
	}
	return newServerWith(t, fakeUsers{}, opts), &reached
}

func basicAuth(key string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+key))
}

// A browser on another site cannot make the dashboard change anything with
// the credentials it holds for it, nor frame it; its own pages and
// non-browser clients can.
func TestAdmin_CrossSiteChangesRefused(t *testing.T) {
	t.Parallel()
	s, reached := adminServer(t, server.Options{})
	host := s.url[len("http://"):]
	tests := []struct {
		name    string
		method  string
		headers []string
		want    int
	}{
		{"CrossSiteOrigin", "POST", []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		{"CrossSiteFetch", "DELETE", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"SameSiteFetch", "POST", []string{"Sec-Fetch-Site", "same-site", "Origin", "https://other." + host}, http.StatusForbidden},
		{"NullOrigin", "POST", []string{"Origin", "null"}, http.StatusForbidden},
		{"SameOrigin", "POST", []string{"Origin", s.url, "Sec-Fetch-Site", "same-origin"}, http.StatusOK},
		{"SameOriginOldBrowser", "POST", []string{"Origin", s.url}, http.StatusOK},
		{"TypedAddress", "POST", []string{"Sec-Fetch-Site", "none"}, http.StatusOK},
		{"NotABrowser", "POST", nil, http.StatusOK},
		{"CrossSiteRead", "GET", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, http.StatusOK},
	}
	for _, tt := range tests {
		before := reached.Load()
		headers := append([]string{"Authorization", basicAuth("admin-key"), "Content-Type", "text/plain"}, tt.headers...)
		r := s.do(tt.method, "/admin/jobs/api/jobs/cancel", "{}", headers...)
		if r.status != tt.want {
			t.Errorf("%s: %s with %q = %d %s, want %d", tt.name, tt.method, tt.headers, r.status, r.body, tt.want)
		}
		if passed := reached.Load() > before; passed != (tt.want == http.StatusOK) {
			t.Errorf("%s: reached the dashboard = %v, want %v", tt.name, passed, tt.want == http.StatusOK)
		}
		if r.header.Get("X-Frame-Options") != "DENY" || r.header.Get("Content-Security-Policy") != "frame-ancestors 'none'" {
			t.Errorf("%s: X-Frame-Options %q, Content-Security-Policy %q; want DENY and frame-ancestors 'none'",
				tt.name, r.header.Get("X-Frame-Options"), r.header.Get("Content-Security-Policy"))
		}
	}
}

// Failed sign-ins are counted as API-key refusals and limited per address:
// once the budget is spent, even the right key waits.
func TestAdmin_FailedSignInsCountedAndLimited(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	writes, err := ratelimit.ParsePolicy("3/1m")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := adminServer(t, server.Options{
		Observer:  metrics.NewRequests(reg),
		RateLimit: &server.RateLimit{Limiter: ratelimit.NewMemory(100), Writes: writes},
	})
	s.do("GET", "/admin/jobs/", nil).wantStatus(t, http.StatusUnauthorized)
	s.do("GET", "/admin/jobs/", nil, "Authorization", basicAuth("reader-key")).wantStatus(t, http.StatusForbidden)
	s.do("GET", "/admin/jobs/", nil, "Authorization", basicAuth("admin-key")).wantStatus(t, http.StatusOK)
	for range 3 {
		s.do("GET", "/admin/jobs/", nil, "Authorization", basicAuth("guess")).wantStatus(t, http.StatusUnauthorized)
	}
	if r := s.do("GET", "/admin/jobs/", nil, "Authorization", basicAuth("guess")).wantStatus(t, http.StatusTooManyRequests); r.header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	s.do("GET", "/admin/jobs/", nil, "Authorization", basicAuth("admin-key")).wantStatus(t, http.StatusTooManyRequests)

	for reason, want := range map[string]float64{"missing": 1, "invalid": 4, "scope": 1} {
		if got := value(t, reg, "userapi_auth_refusals_total", map[string]string{"reason": reason}); got != want {
			t.Errorf("userapi_auth_refusals_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := value(t, reg, "userapi_rate_limit_refusals_total", map[string]string{"budget": "writes"}); got != 2 {
		t.Errorf("userapi_rate_limit_refusals_total{budget=writes} = %v, want 2", got)
	}
}
