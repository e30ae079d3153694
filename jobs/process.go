package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"userapi/store"
)

// ProcessUserArgs asks for one user's profile data to be recomputed.
type ProcessUserArgs struct {
	UserID int64 `json:"user_id"`
}

// Kind names the job in River's table.
func (ProcessUserArgs) Kind() string { return "process_user" }

// InsertOpts make the job unique per user while one is pending: asking again
// before it finished returns the job already queued.
func (ProcessUserArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: pendingStates}}
}

// pendingStates are the states of a job that has not finished.
var pendingStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled,
}

// ProcessUser queues a recomputation of the user's profile and returns the
// job, or the one already pending for this user. Returns store.ErrNotFound
// if there is no such user.
func (q *Queue) ProcessUser(ctx context.Context, userID int64) (Job, error) {
	// A savepoint when ctx carries a transaction (an idempotent request):
	// then the job commits with the request's record, or not at all.
	tx, err := store.Begin(ctx, q.pool)
	if err != nil {
		return Job{}, unavailable(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// The user must exist, and not be deleted, when the job is queued. One
	// deleted right after is fine: the job finds it gone and does nothing.
	u, err := store.NewUsers(tx).Get(ctx, userID)
	if err == nil {
		err = u.Visible(false)
	}
	if err != nil {
		return Job{}, err
	}
	res, err := q.client.InsertTx(ctx, tx, ProcessUserArgs{UserID: userID}, nil)
	if err != nil {
		return Job{}, unavailable(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Job{}, unavailable(err)
	}
	return fromRow(res.Job), nil
}

type processWorker struct {
	river.WorkerDefaults[ProcessUserArgs]
	users  *store.Users
	delay  time.Duration
	logger *slog.Logger
}

// Timeout allows for the simulated delay on top of the real work, one short
// transaction. It also bounds how soon a job left running by a crashed
// process is run again (see Options.RescueAfter).
func (w *processWorker) Timeout(*river.Job[ProcessUserArgs]) time.Duration {
	return w.delay + 10*time.Second
}

func (w *processWorker) Work(ctx context.Context, job *river.Job[ProcessUserArgs]) error {
	// The slow part runs before the transaction, so no row stays locked
	// while it does.
	select {
	case <-time.After(w.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	p, err := w.users.SetProfile(ctx, job.Args.UserID, ComputeProfile)
	if errors.Is(err, store.ErrNotFound) {
		// Deleted since it was queued: there is nothing left to compute.
		w.logger.InfoContext(ctx, "process_user: user is gone", "user_id", job.Args.UserID, "job_id", job.ID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("process user %d: %w", job.Args.UserID, err)
	}
	w.logger.InfoContext(ctx, "process_user: done", "user_id", job.Args.UserID, "job_id", job.ID, "score", p.Score)
	return nil
}

// ComputeProfile derives a user's profile data. The score gives 25 points
// for each of: a name, a full name (two words or more), an email address,
// and an email domain with a dot in it.
func ComputeProfile(u store.User) store.Profile {
	email := strings.ToLower(strings.TrimSpace(u.Email))
	score := 0
	if name := strings.TrimSpace(u.Name); name != "" {
		score += 25
		if len(strings.Fields(name)) >= 2 {
			score += 25
		}
	}
	if email != "" {
		score += 25
		if _, domain, ok := strings.Cut(email, "@"); ok && strings.Contains(strings.Trim(domain, "."), ".") {
			score += 25
		}
	}
	return store.Profile{EmailNormalized: email, Score: score}
}
