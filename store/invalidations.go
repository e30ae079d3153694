package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"userapi/store/internal/dbsqlc"
)

// InvalidationChannel is the NOTIFY channel on which each commit that
// recorded invalidations wakes the instances.
const InvalidationChannel = "cache_invalidations"

// listenRetry is how long Listen waits before connecting again.
const listenRetry = time.Second

// Invalidation is one cache key to delete, recorded in the transaction of
// the change that made the entry old. Triggers record them (migration 0007):
// for users "user:ID", for API keys "apikey:PREFIX", without the
// deployment's key prefix.
type Invalidation struct {
	ID  int64
	Tx  int64 // the recording transaction
	Key string
	// Version is the user's version after the change: an entry holding it,
	// or a later one, is not old. 0 means any entry is.
	Version int64
}

// InvalidationBatch is what one read of the log found.
type InvalidationBatch struct {
	Rows []Invalidation
	// Horizon is the since of the next read: every transaction below it had
	// ended when this one read the log.
	Horizon int64
}

// InvalidationLog is the durable record of cache invalidations.
type InvalidationLog struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
	listener
}

// NewInvalidationLog reads the log through pool, and listens for new
// entries on a connection of its own made from pool's settings.
func NewInvalidationLog(pool *pgxpool.Pool) *InvalidationLog {
	return &InvalidationLog{pool: pool, q: dbsqlc.New(pool)}
}

// Notify wakes every instance listening for the log, in a transaction of
// its own: a writer calls it after a commit whose keys it could not delete
// from Redis itself.
func (l *InvalidationLog) Notify(ctx context.Context) (err error) {
	defer wrap(&err, "InvalidationLog.Notify")
	_, err = l.pool.Exec(ctx, "SELECT pg_notify($1, '')", InvalidationChannel)
	return translate(err)
}

// Since returns up to limit of the invalidations recorded within the last
// within by transactions whose id is at least since (0 for all of them, or
// the previous read's Horizon for those that may have committed after it),
// with an id above after, in id order. Rows already returned may come
// again. A caller reads the next page with after = the last row's id, and
// keeps the first page's Horizon (see cache.Client.readLog).
//
// Why not "ids above the last one seen": ids are handed out when rows are
// inserted and become visible when their transactions commit, in another
// order. A reader that moved past id 7 would never see id 6 of a
// transaction that committed after the read. The snapshot's xmin has no
// such gap (see the query).
func (l *InvalidationLog) Since(ctx context.Context, since, after int64, within time.Duration, limit int) (_ InvalidationBatch, err error) {
	defer wrap(&err, "InvalidationLog.Since")
	rows, err := l.q.InvalidationsSince(ctx, dbsqlc.InvalidationsSinceParams{
		Since: since, AfterID: after, WithinSeconds: within.Seconds(), RowLimit: int64(limit)})
	if err != nil {
		return InvalidationBatch{}, translate(err)
	}
	var b InvalidationBatch
	for _, r := range rows {
		b.Horizon = r.Horizon
		if r.ID.Valid {
			b.Rows = append(b.Rows, Invalidation{ID: r.ID.Int64, Tx: r.Tx.Int64, Key: r.Key.String, Version: r.Version.Int64})
		}
	}
	return b, nil
}

// Trim deletes up to limit invalidations older than within, and returns how
// many it deleted.
func (l *InvalidationLog) Trim(ctx context.Context, within time.Duration, limit int64) (_ int64, err error) {
	defer wrap(&err, "InvalidationLog.Trim")
	n, err := l.q.InvalidationsTrim(ctx, dbsqlc.InvalidationsTrimParams{WithinSeconds: within.Seconds(), RowLimit: limit})
	return n, translate(err)
}

// Listen calls wake whenever a transaction that recorded invalidations
// commits, and after each (re)connection, since notifications sent while
// disconnected are lost. It holds a connection of its own (LISTEN needs a
// session, which a pool would hand to others), connects again after a
// failure, and returns when ctx ends.
func (l *InvalidationLog) Listen(ctx context.Context, wake func()) {
	l.listen(ctx, l.pool, InvalidationChannel, wake)
}
