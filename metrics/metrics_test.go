package metrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"userapi/metrics"
	"userapi/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func TestCacheCollector(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	hits := metrics.CacheHits{Memory: 7, Redis: 3, Database: 2, Bypassed: 1}
	metrics.NewCacheCollector(reg, func() metrics.CacheHits { return hits })
	want := `
# HELP userapi_cache_reads_total Single-user reads by where the answer came from: memory (this process), redis, database (after a miss) or bypassed (Redis unavailable).
# TYPE userapi_cache_reads_total counter
userapi_cache_reads_total{tier="bypassed"} 1
userapi_cache_reads_total{tier="database"} 2
userapi_cache_reads_total{tier="memory"} 7
userapi_cache_reads_total{tier="redis"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "userapi_cache_reads_total"); err != nil {
		t.Error(err)
	}
	// Read at scrape time: a later scrape sees later counts.
	hits.Memory = 8
	want = strings.Replace(want, `tier="memory"} 7`, `tier="memory"} 8`, 1)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "userapi_cache_reads_total"); err != nil {
		t.Errorf("after one more hit: %v", err)
	}
}

func TestJobsCollector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		counts     map[string]int64
		err        error
		wantSeries int
		wantErr    bool
	}{
		{"every state reported, zeros included", map[string]int64{"available": 2, "completed": 5}, nil, len(metrics.JobStates), false},
		{"unknown states left out", map[string]int64{"made_up": 1}, nil, len(metrics.JobStates), false},
		{"a failed query is an error, not zeros", nil, errors.New("database down"), 0, true},
	}
	for _, tt := range tests {
		reg := prometheus.NewRegistry()
		metrics.NewJobsCollector(reg, time.Second, func(ctx context.Context) (map[string]int64, error) {
			if _, ok := ctx.Deadline(); !ok {
				t.Errorf("%s: count got a context without a deadline", tt.name)
			}
			return tt.counts, tt.err
		})
		families, err := reg.Gather()
		if gotErr := err != nil; gotErr != tt.wantErr {
			t.Errorf("%s: Gather() error = %v, want error %v", tt.name, err, tt.wantErr)
		}
		got := 0
		for _, f := range families {
			got += len(f.GetMetric())
			for _, m := range f.GetMetric() {
				if m.GetLabel()[0].GetValue() == "available" && m.GetGauge().GetValue() != float64(tt.counts["available"]) {
					t.Errorf("%s: available = %v, want %d", tt.name, m.GetGauge().GetValue(), tt.counts["available"])
				}
			}
		}
		if got != tt.wantSeries {
			t.Errorf("%s: %d series, want %d", tt.name, got, tt.wantSeries)
		}
	}
}

func TestDeliveries(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	d := metrics.NewDeliveries(reg)
	d.Delivered("success")
	d.Delivered("success")
	d.Delivered("retry")
	want := `
# HELP userapi_webhook_deliveries_total Webhook delivery attempts by outcome: success (2xx), retry (to be tried again) or failed (given up).
# TYPE userapi_webhook_deliveries_total counter
userapi_webhook_deliveries_total{outcome="failed"} 0
userapi_webhook_deliveries_total{outcome="retry"} 1
userapi_webhook_deliveries_total{outcome="success"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "userapi_webhook_deliveries_total"); err != nil {
		t.Error(err)
	}
}

func TestPoolCollector(t *testing.T) {
	t.Parallel()
	pool := storetest.Pool(t, storetest.NewDB(t), 2)
	reg := prometheus.NewRegistry()
	metrics.NewPoolCollector(reg, pool.Stat)
	conn, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()

	tests := []struct {
		name string
		want float64
	}{
		{"userapi_db_pool_acquired_conns", 1},
		{"userapi_db_pool_max_conns", 2},
		{"userapi_db_pool_acquires_total", float64(pool.Stat().AcquireCount())},
	}
	for _, tt := range tests {
		got := -1.0
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == tt.name {
				m := f.GetMetric()[0]
				got = m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
		if got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, got, tt.want)
		}
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 7 {
		t.Errorf("GatherAndCount() = %d, %v; want 7 pool series", n, err)
	}
}

// BenchmarkObserveRequest is what metrics add to every request.
func BenchmarkObserveRequest(b *testing.B) {
	r := metrics.NewRequests(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		r.ObserveRequest("/users/:id", "GET", 200, 150*time.Microsecond)
	}
}
