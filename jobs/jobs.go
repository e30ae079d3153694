// Package jobs runs the service's durable background work on River, in the
// same PostgreSQL database as the data: recomputing a user's profile on
// request, and delivering webhook events. Jobs are inserted in the
// transaction of the write that causes them, so a job exists if and only if
// that write committed, and they survive restarts and crashes.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"userapi/store"
	"userapi/webhook"
)

// Queue names. Webhook deliveries have a queue of their own so that slow
// receivers cannot hold up profile jobs, and the other way round.
const (
	QueueDefault  = river.QueueDefault
	QueueWebhooks = "webhooks"
)

// Options configure the queue. Zero values take the defaults noted.
type Options struct {
	Logger *slog.Logger
	// Workers is how many profile jobs this process runs at once. Zero runs
	// no jobs of any kind here: the process only inserts them.
	Workers int
	// WebhookConcurrency is how many deliveries this process makes at once
	// (16).
	WebhookConcurrency int
	// WebhookConcurrencyPerSubscription is how many of those may go to one
	// subscription (2), so that slow receivers leave workers to the others.
	WebhookConcurrencyPerSubscription int
	// WebhookTimeout bounds one delivery attempt, from connecting to reading
	// the answer (5s).
	WebhookTimeout time.Duration
	// WebhookAllowPrivate lets deliveries reach loopback and private
	// addresses. Off in production, where it would let anyone who can
	// subscribe probe the internal network.
	WebhookAllowPrivate bool
	// ProcessDelay is extra time each profile job takes, standing in for
	// slow work.
	ProcessDelay time.Duration
	// RetryBackoff is the wait before the first retry of a failed job (1s);
	// it doubles with every attempt, up to MaxBackoff.
	RetryBackoff time.Duration
	// MaxAttempts is how many times a job runs before it is discarded (25).
	MaxAttempts int
	// RescueAfter is how long a job may stay running before it is presumed
	// lost with its process and run again (1h). River also waits out the
	// job's own timeout (the delay plus 10s for profiles, the webhook
	// timeout plus 5s for deliveries), and checks every 30s on the leader.
	// A job still running when rescued runs twice.
	RescueAfter time.Duration
	// StopTimeout is how long running jobs get to finish when the queue
	// stops; then their contexts are cancelled and they are retried later.
	StopTimeout time.Duration
	// Middleware is River middleware around every insert and job, for
	// metrics, tracing or tests.
	Middleware []rivertype.Middleware
	// EventRetention is how long the event log keeps events (30 days).
	EventRetention time.Duration
	// AuditRetention is how long the audit log keeps entries (365 days).
	AuditRetention time.Duration
	// PurgeAfter is how long a deleted user is kept before it is erased
	// (30 days).
	PurgeAfter time.Duration
	// OnDelivery, when set, is called after every webhook delivery attempt
	// with its outcome (metrics).
	OnDelivery func(DeliveryOutcome)
}

// DefaultEventRetention is Options.EventRetention when zero.
const DefaultEventRetention = 30 * 24 * time.Hour

// DefaultAuditRetention is Options.AuditRetention when zero.
const DefaultAuditRetention = 365 * 24 * time.Hour

// MaxBackoff caps the wait between two attempts of a job.
const MaxBackoff = time.Hour

// Queue inserts, runs and reports jobs.
type Queue struct {
	client  *river.Client[pgx.Tx]
	pool    *pgxpool.Pool
	working bool
	logger  *slog.Logger
}

// New returns a queue on pool, whose database River's migrations (run by
// store.Migrate) have prepared. It starts nothing: see Start.
func New(pool *pgxpool.Pool, opts Options) (*Queue, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.WebhookConcurrency <= 0 {
		opts.WebhookConcurrency = 16
	}
	if opts.WebhookConcurrencyPerSubscription <= 0 {
		opts.WebhookConcurrencyPerSubscription = 2
	}
	if opts.WebhookTimeout <= 0 {
		opts.WebhookTimeout = 5 * time.Second
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = time.Second
	}
	if opts.EventRetention <= 0 {
		opts.EventRetention = DefaultEventRetention
	}
	if opts.AuditRetention <= 0 {
		opts.AuditRetention = DefaultAuditRetention
	}
	if opts.PurgeAfter <= 0 {
		opts.PurgeAfter = DefaultPurgeAfter
	}
	users := store.NewUsers(pool)
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &processWorker{users: users, delay: opts.ProcessDelay, logger: opts.Logger}); err != nil {
		return nil, err
	}
	deliver := &deliverWorker{
		webhooks: store.NewWebhooks(pool),
		client:   webhook.NewClient(opts.WebhookTimeout, opts.WebhookAllowPrivate),
		timeout:  opts.WebhookTimeout,
		logger:   opts.Logger,
		observe:  opts.OnDelivery,
		inFlight: &perKey{limit: opts.WebhookConcurrencyPerSubscription, n: map[int64]int{}},
	}
	if err := river.AddWorkerSafely(workers, deliver); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &cleanupWorker{keys: store.NewIdempotency(pool)}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &eventTrimWorker{events: store.NewEvents(pool), retention: opts.EventRetention}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &auditTrimWorker{audit: store.NewAudit(pool), retention: opts.AuditRetention}); err != nil {
		return nil, err
	}
	purge := &purgeWorker{after: opts.PurgeAfter}
	if err := river.AddWorkerSafely(workers, purge); err != nil {
		return nil, err
	}
	cfg := &river.Config{
		Logger:      opts.Logger,
		Workers:     workers,
		MaxAttempts: opts.MaxAttempts,
		RetryPolicy: backoff{first: opts.RetryBackoff, max: MaxBackoff},
		// Each worker sets its own timeout (see their Timeout methods); a
		// worker without one would never be rescued after a crash.
		JobTimeout:           -1,
		RescueStuckJobsAfter: opts.RescueAfter,
		SoftStopTimeout:      opts.StopTimeout,
		Middleware:           opts.Middleware,
		// A pooler in transaction mode (PgBouncer) cannot keep a LISTEN:
		// find new jobs by polling.
		PollOnly: store.BehindPooler(pool),
	}
	if opts.Workers > 0 {
		cfg.Queues = map[string]river.QueueConfig{
			QueueDefault:  {MaxWorkers: opts.Workers},
			QueueWebhooks: {MaxWorkers: opts.WebhookConcurrency},
		}
		cfg.PeriodicJobs = []*river.PeriodicJob{cleanupJob(), eventTrimJob(), auditTrimJob(), purgeJob()}
	}
	client, err := river.NewClient(riverpgxv5.New(pool), cfg)
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	q := &Queue{client: client, pool: pool, working: opts.Workers > 0, logger: opts.Logger}
	purge.users = users.WithSubscriberHook(q.UserHook())
	return q, nil
}

// Client is the River client, for tools such as the dashboard.
func (q *Queue) Client() *river.Client[pgx.Tx] { return q.client }

// Start starts working jobs, unless the queue was made with no workers. The
// workers run until Stop, not until ctx ends, so that a shutdown can give
// running jobs their grace period.
func (q *Queue) Start(ctx context.Context) error {
	if !q.working {
		return nil
	}
	return q.client.Start(context.WithoutCancel(ctx))
}

// Stop stops fetching jobs and waits for the running ones to finish, for at
// most Options.StopTimeout, after which their contexts are cancelled; it
// returns once every worker has returned, or when ctx ends. Jobs cut short
// are retried, here or by another process.
func (q *Queue) Stop(ctx context.Context) error {
	if !q.working {
		return nil
	}
	return q.client.Stop(ctx)
}

// State is a job's state, as River names it.
type State = rivertype.JobState

// Job is what the API shows of a job.
type Job struct {
	ID          int64
	Kind        string
	State       State
	Attempt     int
	MaxAttempts int
	CreatedAt   time.Time
	ScheduledAt time.Time
	// FinishedAt is when the job completed, was cancelled or was discarded;
	// nil while it may still run.
	FinishedAt *time.Time
	Errors     []AttemptError
}

// AttemptError is why one attempt failed.
type AttemptError struct {
	Attempt int
	At      time.Time
	Message string
}

func fromRow(r *rivertype.JobRow) Job {
	j := Job{
		ID:          r.ID,
		Kind:        r.Kind,
		State:       r.State,
		Attempt:     r.Attempt,
		MaxAttempts: r.MaxAttempts,
		CreatedAt:   r.CreatedAt.UTC(),
		ScheduledAt: r.ScheduledAt.UTC(),
		Errors:      make([]AttemptError, len(r.Errors)),
	}
	if r.FinalizedAt != nil {
		t := r.FinalizedAt.UTC()
		j.FinishedAt = &t
	}
	for i, e := range r.Errors {
		j.Errors[i] = AttemptError{Attempt: e.Attempt, At: e.At.UTC(), Message: e.Error}
	}
	return j
}

// Get returns one job. Returns store.ErrNotFound if there is none (finished
// jobs are kept for a day, failed ones for a week).
func (q *Queue) Get(ctx context.Context, id int64) (Job, error) {
	row, err := q.client.JobGet(ctx, id)
	if errors.Is(err, rivertype.ErrNotFound) {
		return Job{}, fmt.Errorf("job %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return Job{}, unavailable(err)
	}
	return fromRow(row), nil
}

// Backlog is how far behind the workers are.
type Backlog struct {
	// Waiting counts the jobs due to run that no worker has taken yet.
	Waiting int64
	// OldestWait is how long the oldest of them has been due; zero when
	// none waits.
	OldestWait time.Duration
}

// Backlog measures the jobs waiting for a worker, in every queue.
func (q *Queue) Backlog(ctx context.Context) (Backlog, error) {
	// River's own table, read directly: River's API has no count, and its
	// (state, queue, priority, scheduled_at, id) index serves this query.
	const sql = `SELECT count(*), coalesce(extract(epoch FROM now() - min(scheduled_at)), 0)::float8
		FROM river_job WHERE state = 'available' AND scheduled_at <= now()`
	var b Backlog
	var seconds float64
	if err := q.pool.QueryRow(ctx, sql).Scan(&b.Waiting, &seconds); err != nil {
		return Backlog{}, unavailable(err)
	}
	b.OldestWait = time.Duration(seconds * float64(time.Second))
	return b, nil
}

// CountByState counts the jobs in River's table by state; states with no
// jobs are absent.
func (q *Queue) CountByState(ctx context.Context) (map[State]int64, error) {
	// River's API has no count; its (state, queue, priority, scheduled_at,
	// id) index serves this one. Finished jobs are cleaned up after a day
	// (failed ones a week), which bounds the rows counted.
	rows, err := q.pool.Query(ctx, `SELECT state::text, count(*) FROM river_job GROUP BY state`)
	if err != nil {
		return nil, unavailable(err)
	}
	counts := map[State]int64{}
	var state string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&state, &n}, func() error {
		counts[State(state)] = n
		return nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	return counts, nil
}

// unavailable marks database failures so the HTTP layer answers 503, by the
// store's test of what an outage is.
func unavailable(err error) error {
	if store.Unavailable(err) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// backoff is the retry policy: first, then doubling up to max, with ±10%
// jitter so that jobs that failed together do not retry together.
type backoff struct{ first, max time.Duration }

func (b backoff) NextRetry(job *rivertype.JobRow) time.Time {
	d := b.max
	if n := job.Attempt - 1; n < 40 && b.first<<n > 0 && b.first<<n < b.max {
		d = b.first << n
	}
	jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(d))
	return time.Now().Add(d + jitter)
}
