package jobs_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"userapi/jobs"
	"userapi/jobs/jobstest"
	"userapi/store"
	"userapi/store/storetest"
)

// The leader deletes expired idempotency records when it starts, and keeps
// the others.
func TestCleanup_DeletesExpiredRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.NewDB(t), 5)
	if _, err := pool.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, fingerprint, status, headers, body, expires_at)
		SELECT '', 'k' || i, decode(repeat('00', 32), 'hex'), 201, '{}', '', now() + CASE WHEN i <= 6000 THEN interval '-1 s' ELSE interval '1 h' END
		FROM generate_series(1, 6010) i`); err != nil {
		t.Fatal(err)
	}
	jobstest.Start(t, pool, jobs.Options{Workers: 1})
	waitForRows(t, pool, "idempotency_keys", 10, "records left after the clean-up, want the 10 unexpired")
}

// The leader deletes audit entries older than the retention when it starts,
// in batches, and keeps the others.
func TestAuditTrim_DeletesOldEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.NewDB(t), 5)
	if _, err := pool.Exec(ctx, `INSERT INTO audit_log (occurred_at, actor, action, target)
		SELECT now() - CASE WHEN i <= 6000 THEN interval '2 days' ELSE interval '1 hour' END, 'cli', 'key.created', 'key:k' || i
		FROM generate_series(1, 6010) i`); err != nil {
		t.Fatal(err)
	}
	jobstest.Start(t, pool, jobs.Options{Workers: 1, AuditRetention: 24 * time.Hour})
	waitForRows(t, pool, "audit_log", 10, "audit entries left after the trim, want the 10 within the retention")
}

// The leader purges, when it starts, the users deleted longer ago than
// PurgeAfter, recording each purge's event, and keeps the others.
func TestPurge_ErasesUsersDeletedLongAgo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.NewDB(t), 5)
	users := store.NewUsers(pool)
	var ids []int64
	for _, name := range []string{"long-deleted", "just-deleted", "active"} {
		u, err := users.Create(ctx, store.NewUser{Name: name, Email: name + "@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	for _, id := range ids[:2] {
		if err := users.Delete(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, "UPDATE users SET deleted_at = now() - interval '2 hours' WHERE id = $1", ids[0]); err != nil {
		t.Fatal(err)
	}
	jobstest.Start(t, pool, jobs.Options{Workers: 1, PurgeAfter: time.Hour})
	var left []int64
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		rows, err := pool.Query(ctx, "SELECT id FROM users ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		if left, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
			t.Fatal(err)
		}
		if len(left) == 2 {
			break
		}
	}
	if !slices.Equal(left, ids[1:]) {
		t.Fatalf("users left %v, want %v", left, ids[1:])
	}
	var purged int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM events WHERE type = 'user.purged' AND user_id = $1 AND data IS NULL", ids[0]).Scan(&purged); err != nil || purged != 1 {
		t.Errorf("%d user.purged events without data, %v; want 1", purged, err)
	}
}

// waitForRows waits up to 20 s for table to hold want rows, and fails with
// what (a format for the count left) otherwise.
func waitForRows(t *testing.T, pool *pgxpool.Pool, table string, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var left int
	for time.Now().Before(deadline) {
		if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%d "+what, left)
}
