// Command userapi serves the user management API. It is the only place that
// reads the environment and wires the store and the HTTP server together.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"riverqueue.com/riverui"

	"userapi/auth"
	"userapi/cache"
	"userapi/jobs"
	"userapi/metrics"
	"userapi/ratelimit"
	"userapi/server"
	"userapi/store"
	"userapi/tracing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "userapi:", err)
		os.Exit(1)
	}
}

// rateLimitClients bounds the clients the in-memory limiter remembers.
const rateLimitClients = 100000

// maxHeaderBytes bounds a request's headers; larger ones get 431.
const maxHeaderBytes = 64 << 10

// logFlushInterval bounds how long a log line waits in memory.
const logFlushInterval = 100 * time.Millisecond

// errUsage marks a command line that makes no sense; run has printed usage.
var errUsage = errors.New("see userapi --help")

// run is the whole program. It returns when ctx is cancelled (serve) or the
// command is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "serve", "worker", "migrate", "keys":
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}

	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	logDst := stdout
	if cmd == "keys" {
		// stdout is the command's answer, such as a new key for a script.
		logDst = stderr
		cfg.LogLevel = max(cfg.LogLevel, slog.LevelWarn)
	}
	// Lines reach their writer within logFlushInterval; a crash loses at most that.
	logOut := newLogWriter(logDst, logFlushInterval)
	defer logOut.Close()
	logger := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))

	if cfg.OTLPEndpoint != "" {
		stopTracing, err := tracing.Start(ctx, cfg.OTLPEndpoint)
		if err != nil {
			return fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := stopTracing(sctx); err != nil {
				logger.Warn("flush traces", "error", err.Error())
			}
		}()
		logger.Info("tracing on", "otlp_endpoint", cfg.OTLPEndpoint)
	}

	if cmd == "keys" {
		// A short-lived command needs few connections.
		cfg.DBMinConns, cfg.DBMaxConns = 0, 2
	}
	pool, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cmd == "keys" {
		return keys(ctx, cfg, pool, args[1:], stdout, stderr)
	}
	if cmd == "migrate" {
		return nil
	}
	reg := newRegistry(pool)
	if cmd == "worker" {
		return work(ctx, cfg, logger, pool, reg)
	}
	return serve(ctx, cfg, logger, pool, reg)
}

// queryTracer traces SQL statements when tracing is on.
func queryTracer(cfg config) pgx.QueryTracer {
	if cfg.OTLPEndpoint == "" {
		return nil
	}
	return tracing.QueryTracer{}
}

// newQueue makes the job queue with the configured workers, and reports its
// jobs and deliveries on reg; workers=false makes one that only inserts jobs.
func newQueue(cfg config, logger *slog.Logger, pool *pgxpool.Pool, workers bool, reg prometheus.Registerer) (*jobs.Queue, error) {
	onDelivery, watch := observeQueue(reg)
	opts := jobs.Options{
		OnDelivery:          onDelivery,
		Logger:              logger,
		WebhookConcurrency:  int(cfg.WebhookConcurrency),
		WebhookTimeout:      cfg.WebhookTimeout,
		WebhookAllowPrivate: cfg.WebhookAllowPrivate,
		ProcessDelay:        cfg.ProcessDelay,
		RetryBackoff:        cfg.JobRetryBackoff,
		RescueAfter:         cfg.JobRescueAfter,
		StopTimeout:         cfg.ShutdownTimeout,
	}
	if workers {
		opts.Workers = int(cfg.Workers)
	}
	q, err := jobs.New(pool, opts)
	if err != nil {
		return nil, err
	}
	watch(q)
	return q, nil
}

// stopQueue lets running jobs finish within the shutdown timeout; River
// cancels the stragglers then, and they are retried later.
func stopQueue(q *jobs.Queue, cfg config, logger *slog.Logger) error {
	// Beyond the soft timeout, leave cancelled jobs a moment to return.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout+5*time.Second)
	defer cancel()
	if err := q.Stop(ctx); err != nil {
		return fmt.Errorf("stop workers: %w", err)
	}
	logger.Info("workers stopped")
	return nil
}

// work runs jobs, and serves their metrics, until ctx ends.
func work(ctx context.Context, cfg config, logger *slog.Logger, pool *pgxpool.Pool, reg *prometheus.Registry) error {
	if cfg.Workers == 0 {
		return errors.New("USERAPI_WORKERS=0: a worker with no workers has nothing to do")
	}
	q, err := newQueue(cfg, logger, pool, true, reg)
	if err != nil {
		return err
	}
	msrv, err := startMetrics(cfg.MetricsAddr, reg, logger)
	if err != nil {
		return err
	}
	defer shutdownMetrics(msrv, logger)
	if err := q.Start(ctx); err != nil {
		return err
	}
	logger.Info("working", "workers", cfg.Workers, "webhook_concurrency", cfg.WebhookConcurrency)
	<-ctx.Done()
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	if err := stopQueue(q, cfg, logger); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// openDatabase connects and migrates; several instances may do so at once.
func openDatabase(ctx context.Context, cfg config, logger *slog.Logger) (*pgxpool.Pool, error) {
	pool, err := store.Open(ctx, store.PoolConfig{
		URL:              cfg.DatabaseURL,
		MinConns:         cfg.DBMinConns,
		MaxConns:         cfg.DBMaxConns,
		StatementTimeout: cfg.StatementTimeout,
		IdleInTxTimeout:  cfg.IdleInTxTimeout,
		Tracer:           queryTracer(cfg),
	})
	if err != nil {
		return nil, err
	}
	applied, err := store.Migrate(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	logger.Info("database ready", "migrations_applied", applied, "max_conns", cfg.DBMaxConns)
	return pool, nil
}

// serve answers HTTP until ctx ends, then lets in-flight requests finish.
func serve(ctx context.Context, cfg config, logger *slog.Logger, pool *pgxpool.Pool, reg *prometheus.Registry) error {
	queue, err := newQueue(cfg, logger, pool, true, reg)
	if err != nil {
		return err
	}
	// Every user change queues its webhook events in its own transaction.
	var users store.UserService = store.NewUsers(pool).WithHook(queue.UserHook())
	opts := server.Options{
		Tracing: cfg.OTLPEndpoint != "",
		Checks: []server.Check{
			{Name: "database", Required: true, Probe: pool.Ping},
			{Name: "queue", Backlog: queue.Backlog},
		},
		TrustedProxies:      cfg.TrustedProxies,
		CORSOrigins:         cfg.CORSOrigins,
		Jobs:                queue,
		Webhooks:            store.NewWebhooks(pool),
		WebhookAllowPrivate: cfg.WebhookAllowPrivate,
		Observer:            metrics.NewRequests(reg),
		Idempotency:         store.NewIdempotency(pool),
		IdempotencyTTL:      cfg.IdempotencyTTL,
	}
	if cfg.AdminUI {
		admin, err := riverui.NewHandler(&riverui.HandlerOpts{
			Endpoints: riverui.NewEndpoints(queue.Client(), nil),
			Logger:    logger,
			Prefix:    server.AdminPrefix,
		})
		if err != nil {
			return fmt.Errorf("job dashboard: %w", err)
		}
		if err := admin.Start(ctx); err != nil {
			return fmt.Errorf("job dashboard: %w", err)
		}
		opts.Admin = admin
		if cfg.Auth {
			logger.Info("job dashboard on at " + server.AdminPrefix + ": it asks for a key with the admin scope as the password")
		} else {
			logger.Warn("job dashboard on at " + server.AdminPrefix + " with no authentication (USERAPI_AUTH=off): keep it off untrusted networks")
		}
	}
	apiKeys := store.NewAPIKeys(pool)
	var keyStore auth.KeyStore = apiKeys
	// Per-instance limits until (or unless) Redis holds the shared budget.
	var limiter ratelimit.Limiter = ratelimit.NewMemory(rateLimitClients)
	if cfg.RedisURL != "" {
		redis, err := cache.NewClient(cache.Options{
			URL: cfg.RedisURL, Prefix: cfg.CachePrefix, TTL: cfg.CacheTTL, NegativeTTL: cfg.CacheNegativeTTL,
			Timeout: cfg.RedisTimeout, Logger: logger,
			Log: store.NewInvalidationLog(pool), Poll: cfg.InvalidationPoll,
		})
		if err != nil {
			return fmt.Errorf("REDIS_URL: %w", err)
		}
		defer redis.Close()
		cached := cache.NewUsers(redis, users)
		users = cached
		keyStore = cache.NewKeys(redis, apiKeys)
		metrics.NewCacheCollector(reg, func() metrics.CacheHits { return metrics.CacheHits(cached.Stats()) })
		opts.Checks = append(opts.Checks, server.Check{Name: "cache", Probe: redis.Ping})
		limiter = &ratelimit.Fallback{
			Primary:   ratelimit.NewRedis(redis, cfg.CachePrefix+"ratelimit:"),
			Secondary: limiter,
		}
	} else {
		logger.Info("cache off (REDIS_URL=off): every read goes to the database, and rate limits are per instance")
	}
	if cfg.Auth {
		opts.Auth = auth.NewChecker(keyStore, apiKeys, logger)
	} else {
		logger.Warn("AUTHENTICATION IS OFF (USERAPI_AUTH=off): anyone who can reach this port can read, change and delete every user. Use this for local experiments only.")
	}
	if !cfg.RateLimit.Off() || !cfg.RateLimitWrites.Off() {
		opts.RateLimit = &server.RateLimit{Limiter: limiter, Reads: cfg.RateLimit, Writes: cfg.RateLimitWrites}
	}
	logger.Info("rate limits", "reads", cfg.RateLimit.String(), "writes", cfg.RateLimitWrites.String(), "trusted_proxies", len(cfg.TrustedProxies))
	handler, err := server.New(logger, users, opts)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              cfg.Addr,
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	logger.Info("listening", "addr", ln.Addr().String(), "docs", "/docs")
	msrv, err := startMetrics(cfg.MetricsAddr, reg, logger)
	if err != nil {
		ln.Close()
		return err
	}
	// Last to stop, so the final moments of a shutdown can be scraped.
	defer shutdownMetrics(msrv, logger)

	if err := queue.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	logger.Info("workers", "workers", cfg.Workers, "webhook_concurrency", cfg.WebhookConcurrency)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		_ = stopQueue(queue, cfg, logger)
		return err
	case <-ctx.Done():
	}

	// HTTP and the workers wind down together, each within the timeout.
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	stopped := make(chan error, 1)
	go func() { stopped <- stopQueue(queue, cfg, logger) }()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	httpErr := srv.Shutdown(sctx)
	if err := errors.Join(httpErr, <-stopped); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}
