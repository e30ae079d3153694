package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"userapi/cache"
	"userapi/replica"
	"userapi/server"
	"userapi/store"
)

// openReplicas connects to the read replicas and watches them. Without
// Redis no caller's last write can be known to all instances, so every
// read stays on the primary.
func openReplicas(ctx context.Context, cfg config, logger *slog.Logger, primary *pgxpool.Pool, redis *cache.Client) (*replica.Set, func(), error) {
	var pools []*pgxpool.Pool
	closeAll := func() {
		for _, p := range pools {
			p.Close()
		}
	}
	for i, u := range cfg.ReplicaURLs {
		p, err := store.Open(ctx, store.PoolConfig{
			URL: u, MaxConns: cfg.DBMaxConns, StatementTimeout: cfg.StatementTimeout, Tracer: queryTracer(cfg),
			Lazy: true, // a replica that is down at start-up serves nobody until it is up
		})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("DATABASE_REPLICA_URLS, replica %d: %w", i+1, err)
		}
		pools = append(pools, p)
	}
	opts := replica.Options{MaxLag: cfg.ReplicaMaxLag, Logger: logger.With("component", "replicas")}
	if redis != nil {
		opts.Memo = replica.NewRedisMemo(redis, cfg.CachePrefix+"lsn:")
	} else {
		logger.Warn("read replicas unused: without Redis (REDIS_URL=off) no instance knows another's writes, so every read goes to the primary")
	}
	set := replica.New(primary, pools, opts)
	return set, func() { set.Close(); closeAll() }, nil
}

// replicaChecks reports each replica and its lag in /health: down, or
// lagging beyond maxLag, makes the service degraded (the primary serves
// its reads).
func replicaChecks(set *replica.Set, maxLag time.Duration) []server.Check {
	var checks []server.Check
	for i, st := range set.Statuses() {
		checks = append(checks, server.Check{Name: "replica " + st.Name, Lag: func() (time.Duration, error) {
			st := set.Statuses()[i]
			switch {
			case !st.Up:
				return 0, st.Err
			case st.Lag > maxLag:
				return st.Lag, server.ErrTooFarBehind
			}
			return st.Lag, nil
		}})
	}
	return checks
}
