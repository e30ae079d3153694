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
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"riverqueue.com/riverui"

	"userapi/accesstoken"
	"userapi/auth"
	"userapi/cache"
	"userapi/feed"
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

// run is the whole program. It returns when ctx is cancelled (serve, worker)
// or the command is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd, rest, group, help := findCommand(args)
	switch {
	case help && cmd != nil:
		fmt.Fprint(stdout, commandUsage([]command{*cmd}))
		return nil
	case help && group != "":
		fmt.Fprint(stdout, commandUsage(inGroup(group)))
		return nil
	case help:
		fmt.Fprint(stdout, usage())
		return nil
	case group != "" && len(args) == 1:
		fmt.Fprintf(stderr, "userapi %s: say which\n\n%s", group, commandUsage(inGroup(group)))
		return errUsage
	case group != "":
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", strings.Join(args, " "), commandUsage(inGroup(group)))
		return errUsage
	case cmd == nil:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage())
		return errUsage
	}

	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	logDst := stdout
	if cmd.short {
		logDst = stderr
		cfg.LogLevel = max(cfg.LogLevel, slog.LevelWarn)
		cfg.DBMinConns, cfg.DBMaxConns = 0, 2
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
	return cmd.run(ctx, &app{cfg: cfg, logger: logger, stdout: stdout, stderr: stderr}, rest)
}

func serveCmd(ctx context.Context, a *app, args []string) error {
	fs := newFlags("serve", a.stderr)
	devKeyFile := fs.String("dev-key-file", "", "print the development key kept in this file")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	pool, err := openDatabase(ctx, a.cfg, a.logger)
	if err != nil {
		return err
	}
	defer pool.Close()
	return serve(ctx, a, pool, newRegistry(pool), *devKeyFile)
}

func workerCmd(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 {
		return errUsage
	}
	pool, err := openDatabase(ctx, a.cfg, a.logger)
	if err != nil {
		return err
	}
	defer pool.Close()
	return work(ctx, a.cfg, a.logger, pool, newRegistry(pool))
}

func migrateCmd(ctx context.Context, a *app, args []string) error {
	if len(args) > 0 {
		return errUsage
	}
	pool, err := openDatabase(ctx, a.cfg, a.logger)
	if err != nil {
		return err
	}
	pool.Close()
	return nil
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
		EventRetention:      cfg.EventRetention,
		AuditRetention:      cfg.AuditRetention,
		PurgeAfter:          cfg.PurgeAfter,
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

// connect opens the pool, creating the database when it is missing (and
// reached directly).
func connect(ctx context.Context, cfg config) (*pgxpool.Pool, error) {
	return store.Open(ctx, store.PoolConfig{
		URL:              cfg.DatabaseURL,
		MinConns:         cfg.DBMinConns,
		MaxConns:         cfg.DBMaxConns,
		StatementTimeout: cfg.StatementTimeout,
		IdleInTxTimeout:  cfg.IdleInTxTimeout,
		Tracer:           queryTracer(cfg),
		Pooler:           cfg.DatabaseDirectURL != "",
	})
}

// openDatabase migrates and connects; several instances may do so at once.
func openDatabase(ctx context.Context, cfg config, logger *slog.Logger) (*pgxpool.Pool, error) {
	applied, err := migrate(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pool, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	logger.Info("database ready", "migrations_applied", applied, "max_conns", cfg.DBMaxConns)
	return pool, nil
}

// migrate applies the migrations over connections of their own to
// PostgreSQL itself: their lock belongs to a session, which a pooler in
// transaction mode would not keep.
func migrate(ctx context.Context, cfg config) ([]string, error) {
	url := cfg.DatabaseDirectURL
	if url == "" {
		url = cfg.DatabaseURL
	}
	// Two: one holds the lock, one applies the job queue's migrations.
	pool, err := store.Open(ctx, store.PoolConfig{URL: url, MaxConns: 2, StatementTimeout: cfg.StatementTimeout, Tracer: queryTracer(cfg)})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	return store.Migrate(ctx, pool)
}

// serve answers HTTP until ctx ends, then lets in-flight requests finish.
// With devKeyFile, it prints the development key once the address is open,
// so that a busy port fails before any curl line aims at another process.
func serve(ctx context.Context, a *app, pool *pgxpool.Pool, reg *prometheus.Registry, devKeyFile string) error {
	cfg, logger := a.cfg, a.logger
	queue, err := newQueue(cfg, logger, pool, true, reg)
	if err != nil {
		return err
	}
	// One reader of the event log per process serves every stream.
	events := store.NewEvents(pool)
	if cfg.DatabaseDirectURL != "" {
		if err := events.ListenVia(cfg.DatabaseDirectURL); err != nil {
			return fmt.Errorf("DATABASE_DIRECT_URL: %w", err)
		}
	}
	live := feed.New(events, feed.Options{
		Poll: cfg.EventPoll, Buffer: int(cfg.StreamBuffer), PerKey: int(cfg.StreamsPerKey), Logger: logger,
	})
	feedCtx, stopFeed := context.WithCancel(context.WithoutCancel(ctx))
	feedDone := make(chan struct{})
	go func() { defer close(feedDone); live.Run(feedCtx) }()
	defer func() { stopFeed(); <-feedDone }()
	// Every user change writes its event, and queues its webhook
	// deliveries, in its own transaction; its commit wakes the streams.
	stored := store.NewUsers(pool).WithSubscriberHook(queue.UserHook()).WithCommitted(live.Committed)
	var users store.UserService = stored
	ready := &server.Readiness{Probe: func(ctx context.Context) error { return store.Ready(ctx, pool) }}
	opts := server.Options{
		Ready:   ready,
		Tracing: cfg.OTLPEndpoint != "",
		Checks: []server.Check{
			{Name: "database", Required: true, Probe: pool.Ping},
			{Name: "queue", Backlog: queue.Backlog},
		},
		TrustedProxies:         cfg.TrustedProxies,
		CORSOrigins:            cfg.CORSOrigins,
		Jobs:                   queue,
		Webhooks:               store.NewWebhooks(pool),
		WebhookAllowPrivate:    cfg.WebhookAllowPrivate,
		WebhooksPerKey:         int(cfg.WebhooksPerKey),
		WebhookTimeout:         cfg.WebhookTimeout,
		WebhookRotationOverlap: cfg.WebhookRotationOverlap,
		Observer:               metrics.NewRequests(reg),
		Idempotency:            store.NewIdempotency(pool),
		IdempotencyTTL:         cfg.IdempotencyTTL,
		RequestTimeout:         cfg.RequestTimeout,
		Exporter:               stored, // exports read the database, not the cache
		ExactCountWithin:       cfg.ExactCountTimeout,
		JSONMaxKeys:            int(cfg.JSONMaxKeys),
		JSONMaxDepth:           int(cfg.JSONMaxDepth),
		Events:                 events,
		Feed:                   live,
		StreamKeepAlive:        cfg.StreamKeepAlive,
		Replayer:               queue,
		Audit:                  store.NewAudit(pool),
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
	var redis *cache.Client
	if cfg.RedisURL != "" {
		log := store.NewInvalidationLog(pool)
		if cfg.DatabaseDirectURL != "" {
			if err := log.ListenVia(cfg.DatabaseDirectURL); err != nil {
				return fmt.Errorf("DATABASE_DIRECT_URL: %w", err)
			}
		}
		redis, err = cache.NewClient(cache.Options{
			URL: cfg.RedisURL, Prefix: cfg.CachePrefix, TTL: cfg.CacheTTL, NegativeTTL: cfg.CacheNegativeTTL,
			Timeout: cfg.RedisTimeout, Logger: logger,
			Log: log, Poll: cfg.InvalidationPoll,
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
	if len(cfg.ReplicaURLs) > 0 {
		set, closeReplicas, err := openReplicas(ctx, cfg, logger, pool, redis)
		if err != nil {
			return err
		}
		defer closeReplicas()
		opts.Reads = set
		opts.Checks = append(opts.Checks, replicaChecks(set, cfg.ReplicaMaxLag)...)
	}
	if cfg.Auth {
		opts.Auth = auth.NewChecker(keyStore, apiKeys, logger)
		if cfg.JWTIssuer != "" {
			tokens, err := accesstoken.New(ctx, accesstoken.Config{
				Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, JWKSURL: cfg.JWTJWKSURL, ScopeClaim: cfg.JWTScopeClaim,
			})
			if err != nil {
				return fmt.Errorf("USERAPI_JWT_ISSUER=%q: %w", cfg.JWTIssuer, err)
			}
			defer tokens.Close()
			opts.Tokens = tokens
			logger.Info("access tokens accepted beside API keys", "issuer", cfg.JWTIssuer, "audience", cfg.JWTAudience, "jwks", tokens.JWKSURL())
		}
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
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("USERAPI_ADDR=%q: another process listens there; stop it, or choose another address, such as USERAPI_ADDR=:8081", cfg.Addr)
	}
	if err != nil {
		return fmt.Errorf("USERAPI_ADDR=%q: %w", cfg.Addr, err)
	}
	logger.Info("listening", "addr", ln.Addr().String(), "docs", "/docs")
	if devKeyFile != "" && cfg.Auth {
		// stderr: stdout carries nothing but log lines.
		if err := devKey(ctx, cfg, store.NewAPIKeys(pool), devKeyFile, a.stderr); err != nil {
			ln.Close()
			return fmt.Errorf("development key: %w", err)
		}
	}
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
	// Streams end first, cleanly: their clients reconnect, with their last
	// event id, to an instance that is not going away.
	live.Close()
	drain(ready, srv, cfg.DrainDelay, logger)

	// HTTP and the workers wind down together, each within the timeout.
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	stopped := make(chan error, 1)
	go func() { stopped <- stopQueue(queue, cfg, logger) }()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	httpErr := srv.Shutdown(sctx)
	// Streams run apart from the server's connections once caught up:
	// they have their ends to write.
	var streamsErr error
	if err := live.Wait(sctx); err != nil {
		streamsErr = fmt.Errorf("event streams still open: %w", err)
	}
	if err := errors.Join(httpErr, streamsErr, <-stopped); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}
