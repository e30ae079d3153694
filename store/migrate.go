package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key that serialises migrations, so that
// instances starting together apply each migration exactly once.
const migrationLock = 0x75736572617069 // "userapi"

// Migrate applies every embedded migration not yet applied, in file-name
// order, each in its own transaction (or none, see noTransaction), and then the job queue's (River's)
// migrations. It returns the names it applied; River's start with "river/".
//
// River's tables live beside ours because jobs are inserted in the same
// transaction as the rows that cause them; its migrations run under the same
// advisory lock, since River's migrator does not serialise instances itself.
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
	if err := lockMigrations(ctx, conn.Conn()); err != nil {
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
	river, err := migrateRiver(ctx, pool)
	return append(applied, river...), err
}

// lockMigrations takes the migration lock, trying every lockRetry rather
// than waiting in pg_advisory_lock: a session blocked there holds a
// snapshot, which CREATE INDEX CONCURRENTLY in the lock holder's migration
// waits for, and PostgreSQL would end one of the two as a deadlock.
func lockMigrations(ctx context.Context, conn *pgx.Conn) error {
	for {
		var locked bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", migrationLock).Scan(&locked); err != nil || locked {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(lockRetry):
		}
	}
}

const lockRetry = 100 * time.Millisecond

// migrateRiver applies River's migrations, each in its own transaction
// (one enum value must commit before the next migration uses it). The
// caller holds the migration lock.
func migrateRiver(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return nil, err
	}
	res, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("river: %w", translate(err))
	}
	var applied []string
	for _, v := range res.Versions {
		applied = append(applied, fmt.Sprintf("river/%03d_%s", v.Version, v.Name))
	}
	return applied, nil
}

// noTransaction is the first line of a migration that cannot run in a
// transaction (CREATE INDEX CONCURRENTLY). Its statements run one at a time,
// each ending with a ";" at the end of a line (outside $$ quotes); the
// migration is recorded after the last one succeeds, so a failed one runs
// again, from the top, at the next start: such a migration must be safe to
// repeat.
const noTransaction = "-- userapi:no-transaction"

// applyOnce runs one migration and records it, unless it is recorded already.
func applyOnce(ctx context.Context, conn *pgx.Conn, name, sql string) (bool, error) {
	if strings.HasPrefix(sql, noTransaction+"\n") {
		return applyWithoutTx(ctx, conn, name, sql)
	}
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

// applyWithoutTx is applyOnce for a migration marked noTransaction.
func applyWithoutTx(ctx context.Context, conn *pgx.Conn, name, sql string) (bool, error) {
	var seen bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)", name).Scan(&seen); err != nil {
		return false, translate(err)
	}
	if seen {
		return false, nil
	}
	for _, stmt := range statements(sql) {
		// A string of several statements would run as one implicit
		// transaction, so each goes on its own.
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return false, err
		}
	}
	_, err := conn.Exec(ctx, "INSERT INTO schema_migrations (name) VALUES ($1)", name)
	return err == nil, err
}

// statements splits a migration at each line that ends with ";" outside a
// $$-quoted body. Comment lines go with the statement they precede.
func statements(sql string) []string {
	var stmts []string
	var cur strings.Builder
	quoted := false
	for line := range strings.Lines(sql) {
		cur.WriteString(line)
		if strings.Count(line, "$$")%2 == 1 {
			quoted = !quoted
		}
		if !quoted && strings.HasSuffix(strings.TrimSpace(line), ";") {
			stmts = append(stmts, cur.String())
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		stmts = append(stmts, cur.String())
	}
	return stmts
}

// Pending returns the names of the embedded migrations not yet applied to
// pool's database: all of them when it has no schema at all. It changes
// nothing, so commands that must not migrate can refuse to run instead.
func Pending(ctx context.Context, pool *pgxpool.Pool) (pending []string, err error) {
	defer wrap(&err, "pending migrations")
	var applied []string
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return nil, translate(err)
	}
	// The table is named in a query of its own: PostgreSQL resolves names
	// before it runs anything, so a missing table fails any query naming it.
	if exists {
		if err := pool.QueryRow(ctx, "SELECT coalesce(array_agg(name), '{}') FROM schema_migrations").Scan(&applied); err != nil {
			return nil, translate(err)
		}
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	for _, path := range names {
		if name := strings.TrimPrefix(path, "migrations/"); !slices.Contains(applied, name) {
			pending = append(pending, name)
		}
	}
	return pending, nil
}
