package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"userapi/jobs"
	"userapi/metrics"
)

// jobsScrapeTimeout bounds the query behind userapi_jobs, so a slow
// database cannot hold a scrape for long.
const jobsScrapeTimeout = 2 * time.Second

// newRegistry returns the registry /metrics serves, with Go's and the
// process's metrics and the database pool's. It is the process's own, not
// Prometheus's global one, so tests can run several instances at once.
func newRegistry(pool *pgxpool.Pool) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics.NewPoolCollector(reg, pool.Stat)
	return reg
}

// observeQueue reports q's jobs by state and its webhook deliveries on reg;
// it returns the option that counts the deliveries, for jobs.New.
func observeQueue(reg prometheus.Registerer) (onDelivery func(jobs.DeliveryOutcome), watch func(*jobs.Queue)) {
	deliveries := metrics.NewDeliveries(reg)
	onDelivery = func(o jobs.DeliveryOutcome) { deliveries.Delivered(string(o)) }
	watch = func(q *jobs.Queue) {
		metrics.NewJobsCollector(reg, jobsScrapeTimeout, func(ctx context.Context) (map[string]int64, error) {
			counts, err := q.CountByState(ctx)
			if err != nil {
				return nil, err
			}
			out := make(map[string]int64, len(counts))
			for s, n := range counts {
				out[string(s)] = n
			}
			return out, nil
		})
	}
	return onDelivery, watch
}

// metricsServer serves GET /metrics on a listener of its own, apart from
// the API, so that it is never exposed where the API is.
type metricsServer struct {
	srv  *http.Server
	addr string
}

// startMetrics listens on addr and serves reg there; addr "" serves nothing.
// A bad or busy address is an error naming USERAPI_METRICS_ADDR.
func startMetrics(addr string, reg *prometheus.Registry, logger *slog.Logger) (*metricsServer, error) {
	if addr == "" {
		logger.Info("metrics off (USERAPI_METRICS_ADDR=off)")
		return &metricsServer{}, nil
	}
	errLog := slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: errLog,
		// A failing collector (the jobs query, say) must not hide the rest.
		ErrorHandling: promhttp.ContinueOnError,
		// Each scrape queries the database; a burst of them must not.
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("USERAPI_METRICS_ADDR=%q: %w", addr, err)
	}
	m := &metricsServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          errLog,
		},
		addr: ln.Addr().String(),
	}
	go func() {
		if err := m.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics listener stopped", "error", err.Error())
		}
	}()
	logger.Info("metrics", "addr", m.addr, "path", "/metrics")
	return m, nil
}

// Shutdown stops serving, letting a scrape in progress finish within ctx.
func (m *metricsServer) Shutdown(ctx context.Context) error {
	if m.srv == nil {
		return nil
	}
	return m.srv.Shutdown(ctx)
}

// shutdownMetrics stops the metrics listener within a few seconds.
func shutdownMetrics(m *metricsServer, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Shutdown(ctx); err != nil {
		logger.Warn("metrics listener shutdown", "error", err.Error())
	}
}
