// Package jobstest gives tests a running job queue.
package jobstest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"userapi/jobs"
)

// Start returns a started queue with opts on pool; it is stopped, letting
// running jobs finish, when the test ends.
func Start(t testing.TB, pool *pgxpool.Pool, opts jobs.Options) *jobs.Queue {
	t.Helper()
	q, err := jobs.New(pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Errorf("queue Stop() = %v", err)
		}
	})
	return q
}
