package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// A context may name where reads that tolerate a replica's state (lists,
// search, export) run: a read replica that has replayed the caller's last
// write, chosen only when such a read happens. Everything else, and every
// read inside a transaction, stays on the repository's own database.
type readerKey struct{}

// Reader is a database for reads that may lag, with a way to report that
// it failed.
type Reader struct {
	DB DB
	// Failed is told that DB could not be reached, so that later reads
	// avoid it; the read itself then runs on the primary.
	Failed func(error)
}

// WithReader returns a context whose lag-tolerant reads run on what pick
// returns (pick is called for each such read; a zero Reader means the
// repository's own database).
func WithReader(ctx context.Context, pick func(context.Context) Reader) context.Context {
	return context.WithValue(ctx, readerKey{}, pick)
}

// onReader runs read on the context's reader for repositories on db, or on
// db (see conn) when there is none, when ctx carries a transaction, or
// when the read fails there: a replica going away costs no request an
// error. read must have no effect before it fails, so that running it
// again is safe.
func onReader(ctx context.Context, db DB, read func(DB) error) error {
	primary := conn(ctx, db)
	pick, _ := ctx.Value(readerKey{}).(func(context.Context) Reader)
	if pick == nil || primary != db {
		return read(primary)
	}
	r := pick(ctx)
	if r.DB == nil {
		return read(primary)
	}
	err := read(r.DB)
	if err == nil || ctx.Err() != nil {
		return err
	}
	// Whatever went wrong there (gone, cut off, a query cancelled by
	// replay), the primary answers; only an unreachable replica is
	// avoided from now on.
	var pgErr *pgconn.PgError
	if r.Failed != nil && (Unavailable(err) || !errors.As(err, &pgErr)) {
		r.Failed(err)
	}
	return read(primary)
}
