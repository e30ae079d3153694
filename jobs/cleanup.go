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

// auditTrimJob trims the audit log every CleanupInterval on the leader, and
// once when it is elected.
func auditTrimJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(CleanupInterval),
		func() (river.JobArgs, *river.InsertOpts) { return AuditTrimArgs{}, nil },
		&river.PeriodicJobOpts{ID: "audit_trim", RunOnStart: true})
}
