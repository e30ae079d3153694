package store

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5"

	"userapi/store/internal/dbsqlc"
)

// A context may carry a transaction that every repository made on a pool
// joins, so that a caller can commit the writes of code it does not control
// (a handler, the job queue, a hook) together with its own, or roll them all
// back. Repositories made on a transaction (NewUsers(tx)) keep theirs.
type ambientKey struct{}

type ambient struct {
	tx    pgx.Tx
	mu    sync.Mutex
	after []func()
}

// Ambient is a transaction carried by a context; see WithTx.
type Ambient struct{ a *ambient }

// WithTx returns a context whose repositories run their statements in tx
// (nested transactions become savepoints of it). The caller still commits or
// rolls back tx, and then calls Ended on the returned Ambient.
func WithTx(ctx context.Context, tx pgx.Tx) (context.Context, Ambient) {
	a := &ambient{tx: tx}
	return context.WithValue(ctx, ambientKey{}, a), Ambient{a}
}

// Ended runs the functions AfterTx deferred, in order, once the transaction
// has ended. Call it after a rollback too: what is deferred (such as cache
// invalidation) must be safe either way.
func (a Ambient) Ended() {
	a.a.mu.Lock()
	fns := a.a.after
	a.a.after = nil
	a.a.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// AfterTx runs fn once the context's transaction has ended, or at once when
// the context carries none. Work that must not happen before the data is
// visible to others, such as deleting cache entries, goes through here:
// done earlier, a reader could refill the cache with what is about to change.
func AfterTx(ctx context.Context, fn func()) {
	a, _ := ctx.Value(ambientKey{}).(*ambient)
	if a == nil {
		fn()
		return
	}
	a.mu.Lock()
	a.after = append(a.after, fn)
	a.mu.Unlock()
}

// Begin starts a transaction on db, or a savepoint when ctx carries a
// transaction and db is not one already (see WithTx). Code that commits
// writes of its own, such as the job queue, begins through here so that it
// joins the caller's transaction.
func Begin(ctx context.Context, db DB) (pgx.Tx, error) {
	return conn(ctx, db).Begin(ctx)
}

// queries are q, the queries of a repository on db, unless ctx carries a
// transaction that the repository joins (see conn).
func queries(ctx context.Context, db DB, q *dbsqlc.Queries) *dbsqlc.Queries {
	if c := conn(ctx, db); c != db {
		return dbsqlc.New(c)
	}
	return q
}

// conn is what a repository on db runs a statement on: the context's
// transaction, unless db is a transaction of its own.
func conn(ctx context.Context, db DB) DB {
	if _, isTx := db.(pgx.Tx); isTx {
		return db
	}
	if a, _ := ctx.Value(ambientKey{}).(*ambient); a != nil {
		return a.tx
	}
	return db
}

// inTx runs fn in a transaction on db (a savepoint when db is one, or ctx
// carries one) and commits when fn returns nil.
func inTx(ctx context.Context, db DB, fn func(q *dbsqlc.Queries) error) error {
	tx, err := Begin(ctx, db)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if err := fn(dbsqlc.New(tx)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
