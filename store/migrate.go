package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key that serialises migrations, so that
// instances starting together apply each migration exactly once.
const migrationLock = 0x75736572617069 // "userapi"

// Migrate applies every embedded migration not yet applied, in file-name
// order, each in its own transaction. It returns the names it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (applied []string, err error) {
	defer wrap(&err, "migrate")
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)

	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, translate(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return nil, translate(err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock) //nolint:errcheck // the lock goes with the session anyway

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name       text PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, translate(err)
	}
	for _, path := range names {
		name := strings.TrimPrefix(path, "migrations/")
		sql, err := migrations.ReadFile(path)
		if err != nil {
			return applied, err
		}
		done, err := applyOnce(ctx, conn.Conn(), name, string(sql))
		if err != nil {
			return applied, fmt.Errorf("%s: %w", name, err)
		}
		if done {
			applied = append(applied, name)
		}
	}
	return applied, nil
}

// applyOnce runs one migration and records it, unless it is recorded already.
func applyOnce(ctx context.Context, conn *pgx.Conn, name, sql string) (bool, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, translate(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	var seen bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)", name).Scan(&seen); err != nil {
		return false, translate(err)
	}
	if seen {
		return false, nil
	}
	if _, err := tx.Exec(ctx, sql); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (name) VALUES ($1)", name); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}
