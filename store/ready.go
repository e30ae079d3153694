package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrSchemaBehind means the database lacks a migration this version needs,
// such as after a restore from an older backup.
var ErrSchemaBehind = errors.New("database schema lacks migrations")

// Ready says whether the database at pool can serve this version: it answers,
// and every embedded migration is applied. It fails with ErrUnavailable or
// ErrSchemaBehind.
func Ready(ctx context.Context, pool *pgxpool.Pool) error {
	paths, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimPrefix(p, "migrations/")
	}
	var missing int
	err = pool.QueryRow(ctx, `SELECT count(*) FROM unnest($1::text[]) AS m(name)
		WHERE NOT EXISTS (SELECT 1 FROM schema_migrations s WHERE s.name = m.name)`, names).Scan(&missing)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42P01": // undefined_table: never migrated
		return fmt.Errorf("%w: %w", ErrSchemaBehind, err)
	case err != nil:
		if t := translate(err); errors.Is(t, ErrUnavailable) {
			return t
		}
		// Whatever else kept the query from answering, the database cannot serve.
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case missing > 0:
		return fmt.Errorf("%w: %d of %d not applied", ErrSchemaBehind, missing, len(names))
	}
	return nil
}
