package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"userapi/store"
)

// CleanupInterval is how often expired idempotency records, and events and
// audit entries older than their retention, are deleted. Expired records are ignored and
// replaced anyway; this only frees space.
const CleanupInterval = 10 * time.Minute

// cleanupBatch bounds the rows one statement deletes, so that no statement
// runs long or holds many row locks.
const cleanupBatch = 5000

// CleanupArgs asks for expired idempotency records to be deleted.
type CleanupArgs struct{}

// Kind names the job in River's table.
func (CleanupArgs) Kind() string { return "idempotency_cleanup" }

// InsertOpts keep at most one pending clean-up: a new leader runs one at
// start, and may do so while the previous leader's is still queued.
func (CleanupArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: pendingStates}}
}

type cleanupWorker struct {
	river.WorkerDefaults[CleanupArgs]
	keys *store.Idempotency
}

func (w *cleanupWorker) Timeout(*river.Job[CleanupArgs]) time.Duration { return time.Minute }

func (w *cleanupWorker) Work(ctx context.Context, _ *river.Job[CleanupArgs]) error {
	for {
		n, err := w.keys.DeleteExpired(ctx, cleanupBatch)
		if err != nil {
			return fmt.Errorf("delete expired idempotency records: %w", err)
		}
		if n < cleanupBatch {
			return nil
		}
	}
}

// cleanupJob runs the clean-up every CleanupInterval on the leader, and once
// when it is elected.
func cleanupJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(CleanupInterval),
		func() (river.JobArgs, *river.InsertOpts) { return CleanupArgs{}, nil },
		&river.PeriodicJobOpts{ID: "idempotency_cleanup", RunOnStart: true})
}

// EventTrimArgs asks for the events older than the retention to be deleted.
type EventTrimArgs struct{}

// Kind names the job in River's table.
func (EventTrimArgs) Kind() string { return "event_trim" }

// InsertOpts keep at most one pending trim, as for CleanupArgs.
func (EventTrimArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: pendingStates}}
}

type eventTrimWorker struct {
	river.WorkerDefaults[EventTrimArgs]
	events    *store.Events
	retention time.Duration
}

func (w *eventTrimWorker) Timeout(*river.Job[EventTrimArgs]) time.Duration { return time.Minute }

func (w *eventTrimWorker) Work(ctx context.Context, _ *river.Job[EventTrimArgs]) error {
	for {
		n, err := w.events.Trim(ctx, w.retention, cleanupBatch)
		if err != nil {
			return fmt.Errorf("trim the event log: %w", err)
		}
		if n < cleanupBatch {
			return nil
		}
	}
}

// eventTrimJob trims the event log every CleanupInterval on the leader, and
// once when it is elected.
func eventTrimJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(CleanupInterval),
		func() (river.JobArgs, *river.InsertOpts) { return EventTrimArgs{}, nil },
		&river.PeriodicJobOpts{ID: "event_trim", RunOnStart: true})
}

// AuditTrimArgs asks for the audit entries older than the retention to be
// deleted.
type AuditTrimArgs struct{}

// Kind names the job in River's table.
func (AuditTrimArgs) Kind() string { return "audit_trim" }

// InsertOpts keep at most one pending trim, as for CleanupArgs.
func (AuditTrimArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: pendingStates}}
}

type auditTrimWorker struct {
	river.WorkerDefaults[AuditTrimArgs]
	audit     *store.Audit
	retention time.Duration
}

func (w *auditTrimWorker) Timeout(*river.Job[AuditTrimArgs]) time.Duration { return time.Minute }

func (w *auditTrimWorker) Work(ctx context.Context, _ *river.Job[AuditTrimArgs]) error {
	for {
		n, err := w.audit.Trim(ctx, w.retention, cleanupBatch)
		if err != nil {
			return fmt.Errorf("trim the audit log: %w", err)
		}
		if n < cleanupBatch {
			return nil
		}
	}
}

// DefaultPurgeAfter is Options.PurgeAfter when zero.
const DefaultPurgeAfter = 30 * 24 * time.Hour

// purgeBatch bounds the users one run of the purge job looks up at a time;
// each is erased in a transaction of its own.
const purgeBatch = 500

// PurgeArgs asks for the users deleted longer than the purge delay ago to
// be erased.
type PurgeArgs struct{}

// Kind names the job in River's table.
func (PurgeArgs) Kind() string { return "user_purge" }

// InsertOpts keep at most one pending purge, as for CleanupArgs.
func (PurgeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: pendingStates}}
}

type purgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	// users erases with the webhook hook, so that each purge's event is
	// delivered as any change's is.
	users *store.Users
	after time.Duration
}

func (w *purgeWorker) Timeout(*river.Job[PurgeArgs]) time.Duration { return 5 * time.Minute }

func (w *purgeWorker) Work(ctx context.Context, _ *river.Job[PurgeArgs]) error {
	for {
		n, err := w.users.PurgeDeletedBefore(ctx, time.Now().Add(-w.after), purgeBatch)
		if err != nil {
			return fmt.Errorf("purge deleted users: %w", err)
		}
		if n < purgeBatch {
			return nil
		}
	}
}

// auditTrimJob trims the audit log every CleanupInterval on the leader, and
// once when it is elected.
func auditTrimJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(CleanupInterval),
		func() (river.JobArgs, *river.InsertOpts) { return AuditTrimArgs{}, nil },
		&river.PeriodicJobOpts{ID: "audit_trim", RunOnStart: true})
}

// purgeJob purges every CleanupInterval on the leader, and once when it is
// elected.
func purgeJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(CleanupInterval),
		func() (river.JobArgs, *river.InsertOpts) { return PurgeArgs{}, nil },
		&river.PeriodicJobOpts{ID: "user_purge", RunOnStart: true})
}
