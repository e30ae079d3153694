package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"userapi/cache/cachetest"
	"userapi/internal/freeport"
	"userapi/store/storetest"
)

// /metrics answers on its own listener, with the pool, cache, jobs and HTTP
// metrics, and never on the API's. Two instances in one process keep apart
// counts: each has its own registry.
func TestRun_MetricsListener(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": cachetest.URL(), "USERAPI_CACHE_PREFIX": cachetest.Prefix(t)}
	metricsA, metricsB := freeport.Addr(t), freeport.Addr(t)
	a := instance(t, with(vars, "USERAPI_METRICS_ADDR", metricsA))
	b := instance(t, with(vars, "USERAPI_METRICS_ADDR", metricsB))

	if r := call(t, "POST", a+"/users", `{"name":"Ada","email":"ada@example.com"}`); r.status != http.StatusCreated {
		t.Fatalf("POST /users = %d %s", r.status, r.body)
	}
	for range 3 {
		if r := call(t, "GET", a+"/users/1", ""); r.status != http.StatusOK {
			t.Fatalf("GET /users/1 = %d %s", r.status, r.body)
		}
	}
	call(t, "GET", a+"/users/123", "")
	call(t, "GET", b+"/users/1", "")

	gotA := call(t, "GET", "http://"+metricsA+"/metrics", "")
	if gotA.status != http.StatusOK {
		t.Fatalf("GET /metrics on the metrics listener = %d, want 200", gotA.status)
	}
	for _, want := range []string{
		`userapi_http_requests_total{method="GET",route="/users/:id",status="200"} 3`,
		`userapi_http_requests_total{method="GET",route="/users/:id",status="404"} 1`,
		`userapi_http_requests_total{method="POST",route="/users",status="201"} 1`,
		`userapi_http_request_duration_seconds_bucket{method="GET",route="/users/:id",le="+Inf"} 4`,
		`userapi_db_pool_max_conns 4`,
		`userapi_db_pool_acquired_conns `,
		`userapi_db_pool_idle_conns `,
		`userapi_db_pool_total_conns `,
		`userapi_db_pool_acquires_total `,
		`userapi_db_pool_acquire_wait_seconds_total `,
		`userapi_cache_reads_total{tier="database"} `,
		`userapi_cache_reads_total{tier="memory"} `,
		`userapi_cache_reads_total{tier="redis"} `,
		`userapi_cache_reads_total{tier="bypassed"} 0`,
		`userapi_rate_limit_refusals_total{budget="reads"} 0`,
		`userapi_jobs{state="available"} `,
		`userapi_jobs{state="completed"} `,
		`userapi_webhook_deliveries_total{outcome="success"} 0`,
		`go_goroutines `,
		`process_start_time_seconds `,
	} {
		if !strings.Contains(gotA.body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Users 1 and 123 are read from the database once each; once more for
	// user 1 when the instance's start-up catch-up on the invalidation log
	// runs after the create and drops the entry it had cached. Without the
	// cache, all four reads would reach the database.
	if m := regexp.MustCompile(`userapi_cache_reads_total\{tier="database"\} (\d+)`).FindStringSubmatch(gotA.body); m == nil || (m[1] != "2" && m[1] != "3") {
		t.Errorf("database reads: %v, want 2 (or 3 after a start-up catch-up)", m)
	}
	if strings.Contains(gotA.body, `route="/users/1"`) || strings.Contains(gotA.body, `route="/users/123"`) {
		t.Errorf("/metrics has a raw path as a route label:\n%s", gotA.body)
	}
	gotB := call(t, "GET", "http://"+metricsB+"/metrics", "")
	if want := `userapi_http_requests_total{method="GET",route="/users/:id",status="200"} 1`; !strings.Contains(gotB.body, want) {
		t.Errorf("the other instance's /metrics lacks %q: registries are shared", want)
	}

	if r := call(t, "GET", a+"/metrics", ""); r.status != http.StatusNotFound {
		t.Errorf("GET /metrics on the API listener = %d, want 404", r.status)
	}
}

// with returns a copy of vars with one more variable.
func with(vars map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for k, v := range vars {
		out[k] = v
	}
	return out
}

func TestLoadConfig_MetricsAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, addr, api string
		want            string // the MetricsAddr, or the start of the error
		wantErr         bool
	}{
		{"default", "", "", "127.0.0.1:9090", false},
		{"off", "off", "", "", false},
		{"port only", ":9191", "", ":9191", false},
		{"no port", "9090", "", "USERAPI_METRICS_ADDR=", true},
		{"word", "metrics", "", "USERAPI_METRICS_ADDR=", true},
		{"the API's", "127.0.0.1:8080", "127.0.0.1:8080", "USERAPI_METRICS_ADDR=", true},
	}
	for _, tt := range tests {
		c, err := loadConfig(env(map[string]string{"USERAPI_METRICS_ADDR": tt.addr, "USERAPI_ADDR": tt.api}))
		switch {
		case tt.wantErr && (err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n")):
			t.Errorf("%s: loadConfig() error = %v, want one line starting with %s", tt.name, err, tt.want)
		case !tt.wantErr && err != nil:
			t.Errorf("%s: loadConfig() = %v, want no error", tt.name, err)
		case !tt.wantErr && c.MetricsAddr != tt.want:
			t.Errorf("%s: MetricsAddr = %q, want %q", tt.name, c.MetricsAddr, tt.want)
		}
	}
}

// A metrics address that cannot be listened on stops start-up with one line
// naming the variable.
func TestStartMetrics_BusyAddr(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = startMetrics(ln.Addr().String(), prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.HasPrefix(err.Error(), "USERAPI_METRICS_ADDR=") || strings.Contains(err.Error(), "\n") {
		t.Errorf("startMetrics(busy) = %v, want one line starting with USERAPI_METRICS_ADDR=", err)
	}
}
