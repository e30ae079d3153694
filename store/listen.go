package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// listener holds LISTEN connections: one of their own each (LISTEN needs a
// session, which a pool would hand to others), made from the pool's
// settings, or from a direct URL when the pool goes through a pooler in
// transaction mode, which cannot keep a LISTEN.
type listener struct {
	direct *pgx.ConnConfig // nil: the pool's
}

// ListenVia makes Listen connect to url rather than where the pool does:
// PostgreSQL itself, when the pool goes through a pooler.
func (l *listener) ListenVia(url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", err)
	}
	l.direct = cfg
	return nil
}

// listen is LISTEN on channel until ctx ends, connecting again after a
// failure; wake is called on every notification and after every
// (re)connection, since notifications sent while disconnected are lost.
func (l *listener) listen(ctx context.Context, pool *pgxpool.Pool, channel string, wake func()) {
	cfg := l.direct
	if cfg == nil {
		cfg = pool.Config().ConnConfig.Copy()
	}
	for ctx.Err() == nil {
		listenOnce(ctx, cfg, channel, wake)
		select {
		case <-ctx.Done():
		case <-time.After(listenRetry):
		}
	}
}

func listenOnce(ctx context.Context, cfg *pgx.ConnConfig, channel string, wake func()) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), listenRetry)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return
	}
	wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return
		}
		wake()
	}
}
