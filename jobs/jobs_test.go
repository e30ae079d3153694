package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"userapi/jobs"
	"userapi/jobs/jobstest"
	"userapi/store"
	"userapi/store/storetest"
	"userapi/webhook"
)

// secret signs the tests' deliveries; verify checks them as a receiver
// would, with the official Standard Webhooks library.
var secret = webhook.NewSecret()

func verify(t *testing.T, secret string, d delivery) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh.Verify(d.body, d.header)
}

// newQueue returns a started queue on a small pool, stopped when the test
// ends, and the pool.
func newQueue(t *testing.T, opts jobs.Options) (*jobs.Queue, *pgxpool.Pool) {
	t.Helper()
	pool := storetest.Pool(t, storetest.NewDB(t), 5)
	return jobstest.Start(t, pool, opts), pool
}

func countJobs(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A job exists if and only if the write that caused it committed.
func TestUserHook_TransactionalEnqueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q, pool := newQueue(t, jobs.Options{}) // no workers: jobs stay where they are put
	if _, err := store.NewWebhooks(pool).Create(ctx, store.NewWebhook{URL: "https://example.com/h", Events: []string{store.UserCreated}, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	users := store.NewUsers(pool).WithHook(q.UserHook())

	t.Run("HookFailsAfterInsert", func(t *testing.T) {
		boom := errors.New("boom")
		failing := store.NewUsers(pool).WithHook(func(ctx context.Context, tx pgx.Tx, ev store.UserEvent) error {
			if err := q.UserHook()(ctx, tx, ev); err != nil {
				return err
			}
			return boom
		})
		if _, err := failing.Create(ctx, store.NewUser{Name: "Ada", Email: "ada@example.com"}); !errors.Is(err, boom) {
			t.Fatalf("Create() error = %v, want boom", err)
		}
		if n := countJobs(t, pool); n != 0 {
			t.Errorf("after a rolled-back create, %d jobs exist, want 0", n)
		}
	})
	t.Run("CallerRollsBack", func(t *testing.T) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := users.WithTx(tx).Create(ctx, store.NewUser{Name: "Bob", Email: "bob@example.com"}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if n := countJobs(t, pool); n != 0 {
			t.Errorf("after the caller rolled back, %d jobs exist, want 0", n)
		}
	})
	t.Run("Commits", func(t *testing.T) {
		cy, err := users.Create(ctx, store.NewUser{Name: "Cy", Email: "cy@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if n := countJobs(t, pool); n != 1 {
			t.Errorf("after a committed create, %d jobs exist, want 1", n)
		}
		// Not subscribed to updates: no job.
		if _, err := users.Update(ctx, cy.ID, store.UserChange{Name: ptr("Cy Young")}); err != nil {
			t.Fatal(err)
		}
		if n := countJobs(t, pool); n != 1 {
			t.Errorf("after an update nobody subscribed to, %d jobs exist, want 1", n)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// delivery is one request a receiver got.
type delivery struct {
	header http.Header
	event  store.Event
	body   []byte
	at     time.Time
}

// receiver records deliveries; answer picks the status for the nth (from 1).
type receiver struct {
	mu   sync.Mutex
	got  []delivery
	srv  *httptest.Server
	seen chan struct{}
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{seen: make(chan struct{}, 100)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev store.Event
		_ = json.Unmarshal(body, &ev)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{header: r.Header.Clone(), event: ev, body: body, at: time.Now()})
		n := len(rc.got)
		rc.mu.Unlock()
		answer(n, w, r)
		rc.seen <- struct{}{}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// waitJob polls until the job reaches want or the deadline passes.
func waitJob(t *testing.T, q *jobs.Queue, pool *pgxpool.Pool, kind string, want jobs.State, within time.Duration) jobs.Job {
	t.Helper()
	var id int64
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if id == 0 {
			_ = pool.QueryRow(context.Background(), "SELECT id FROM river_job WHERE kind = $1 ORDER BY id LIMIT 1", kind).Scan(&id)
		}
		if id != 0 {
			j, err := q.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if j.State == want {
				return j
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	j, _ := q.Get(context.Background(), id)
	t.Fatalf("job %d (%s) is %s after %s, want %s; errors: %+v", id, kind, j.State, within, want, j.Errors)
	return jobs.Job{}
}

// subscribe makes a subscription to user.created at url and creates one user
// through the hook, which queues one delivery.
func subscribeAndCreate(t *testing.T, q *jobs.Queue, pool *pgxpool.Pool, url string) store.User {
	t.Helper()
	ctx := context.Background()
	if _, err := store.NewWebhooks(pool).Create(ctx, store.NewWebhook{URL: url, Events: []string{store.UserCreated}, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	u, err := store.NewUsers(pool).WithHook(q.UserHook()).Create(ctx, store.NewUser{Name: "Ada Lovelace", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func deliveryLog(t *testing.T, pool *pgxpool.Pool) []store.Delivery {
	t.Helper()
	log, err := store.NewWebhooks(pool).Deliveries(context.Background(), 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// A receiver that fails twice gets the event on the third attempt; every
// attempt carries the same event id and a valid signature.
func TestDeliver_RetriesUntilAccepted(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	var outcomes outcomeLog
	q, pool := newQueue(t, jobs.Options{Workers: 1, WebhookAllowPrivate: true, RetryBackoff: 50 * time.Millisecond, OnDelivery: outcomes.add})
	subscribeAndCreate(t, q, pool, rc.srv.URL+"/hook")

	j := waitJob(t, q, pool, "webhook_deliver", "completed", 15*time.Second)
	if got, want := outcomes.get(), []jobs.DeliveryOutcome{jobs.DeliveryRetry, jobs.DeliveryRetry, jobs.DeliverySuccess}; !slices.Equal(got, want) {
		t.Errorf("outcomes = %v, want %v", got, want)
	}
	got := rc.deliveries()
	if len(got) != 3 || j.Attempt != 3 || len(j.Errors) != 2 {
		t.Fatalf("receiver got %d deliveries, job attempt %d with %d errors; want 3, 3, 2", len(got), j.Attempt, len(j.Errors))
	}
	for i, d := range got {
		if err := verify(t, secret, d); err != nil {
			t.Errorf("delivery %d: Verify() = %v", i+1, err)
		}
		if id := d.header.Get(webhook.HeaderID); id == "" || id != fmt.Sprint(got[0].event.ID) || d.event.ID != got[0].event.ID {
			t.Errorf("delivery %d: event id header %q, body %d; want both %d", i+1, id, d.event.ID, got[0].event.ID)
		}
		if d.event.Type != store.UserCreated || !strings.Contains(string(d.event.Data), `"email":"ada@example.com"`) {
			t.Errorf("delivery %d: event %s %s, want user.created with the user", i+1, d.event.Type, d.event.Data)
		}
	}
	if !strings.Contains(j.Errors[0].Message, "503") {
		t.Errorf("first error = %q, want it to name the 503", j.Errors[0].Message)
	}
	log := deliveryLog(t, pool)
	var codes []int
	for _, d := range log {
		codes = append(codes, d.StatusCode)
	}
	if len(codes) != 3 || codes[0] != 200 || codes[1] != 503 || codes[2] != 503 {
		t.Errorf("delivery log status codes (newest first) = %v, want [200 503 503]", codes)
	}
}

// A receiver slower than the timeout is cut off, and the attempt is logged
// as a timeout with no status code.
func TestDeliver_SlowReceiverTimesOut(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	var outcomes outcomeLog
	q, pool := newQueue(t, jobs.Options{Workers: 1, WebhookAllowPrivate: true, WebhookTimeout: 300 * time.Millisecond, MaxAttempts: 1, OnDelivery: outcomes.add})
	subscribeAndCreate(t, q, pool, rc.srv.URL)

	j := waitJob(t, q, pool, "webhook_deliver", "discarded", 10*time.Second)
	// A timeout is worth a retry, but this was the last attempt.
	if got, want := outcomes.get(), []jobs.DeliveryOutcome{jobs.DeliveryFailed}; !slices.Equal(got, want) {
		t.Errorf("outcomes = %v, want %v", got, want)
	}
	log := deliveryLog(t, pool)
	if len(log) != 1 {
		t.Fatalf("delivery log has %d attempts, want 1", len(log))
	}
	d := log[0]
	if d.StatusCode != 0 || d.Error != webhook.FailureTimeout || d.Latency < 300*time.Millisecond || d.Latency > 2*time.Second {
		t.Errorf("attempt = status %d, error %q, latency %s; want no status, a timeout, about 300ms", d.StatusCode, d.Error, d.Latency)
	}
	if len(j.Errors) != 1 {
		t.Errorf("job errors = %+v, want one", j.Errors)
	}
}

// outcomeLog records the delivery outcomes a queue reports.
type outcomeLog struct {
	mu   sync.Mutex
	list []jobs.DeliveryOutcome
}

func (l *outcomeLog) add(o jobs.DeliveryOutcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, o)
}

func (l *outcomeLog) get() []jobs.DeliveryOutcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.list)
}

// CountByState counts what is in River's table, by state.
func TestCountByState(t *testing.T) {
	t.Parallel()
	q, pool := newQueue(t, jobs.Options{}) // no workers: the delivery stays available
	subscribeAndCreate(t, q, pool, "https://example.com/hook")
	got, err := q.CountByState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := map[jobs.State]int64{"available": 1}; !maps.Equal(got, want) {
		t.Errorf("CountByState() = %v, want %v", got, want)
	}
}

// 4xx answers other than 408 and 429 are final: no retry.
func TestDeliver_ClientErrorIsNotRetried(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	q, pool := newQueue(t, jobs.Options{Workers: 1, WebhookAllowPrivate: true, RetryBackoff: 50 * time.Millisecond})
	subscribeAndCreate(t, q, pool, rc.srv.URL)

	j := waitJob(t, q, pool, "webhook_deliver", "cancelled", 10*time.Second)
	time.Sleep(200 * time.Millisecond) // a retry, if any, would come by now
	if n := len(rc.deliveries()); n != 1 || j.Attempt != 1 {
		t.Errorf("receiver got %d deliveries over %d attempts, want 1 and 1", n, j.Attempt)
	}
}

// Unless private addresses are allowed, nothing is sent to one, whatever
// the subscription says.
func TestDeliver_PrivateAddressRefused(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	q, pool := newQueue(t, jobs.Options{Workers: 1})
	// Stored directly: the API would refuse this URL already.
	subscribeAndCreate(t, q, pool, rc.srv.URL)

	waitJob(t, q, pool, "webhook_deliver", "cancelled", 10*time.Second)
	if n := len(rc.deliveries()); n != 0 {
		t.Errorf("receiver on a loopback address got %d deliveries, want 0", n)
	}
	if log := deliveryLog(t, pool); len(log) != 1 || log[0].Error != webhook.FailureBlocked {
		t.Errorf("delivery log = %+v, want one attempt refused for a private address", log)
	}
}

func TestComputeProfile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, email string
		wantEmail   string
		wantScore   int
	}{
		{"Ada Lovelace", " Ada@Example.COM ", "ada@example.com", 100},
		{"Ada", "ada@example.com", "ada@example.com", 75},
		{"Ada", "ada@localhost", "ada@localhost", 50},
		{" ", "x@y", "x@y", 25},
	}
	for _, tt := range tests {
		got := jobs.ComputeProfile(store.User{Name: tt.name, Email: tt.email})
		if got.EmailNormalized != tt.wantEmail || got.Score != tt.wantScore {
			t.Errorf("ComputeProfile(%q, %q) = %q, %d; want %q, %d", tt.name, tt.email, got.EmailNormalized, got.Score, tt.wantEmail, tt.wantScore)
		}
	}
}

// After a rotation, queued deliveries carry a signature for each secret
// until the overlap ends, then one for the new secret only; every attempt
// of one delivery has the same webhook-id.
func TestDeliver_SignedWithBothSecretsDuringOverlap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	q, pool := newQueue(t, jobs.Options{Workers: 1, WebhookAllowPrivate: true})
	hooks := store.NewWebhooks(pool)
	oldSecret := webhook.NewSecret()
	w, err := hooks.Create(ctx, store.NewWebhook{URL: rc.srv.URL, Events: []string{store.UserCreated}, Secret: oldSecret})
	if err != nil {
		t.Fatal(err)
	}
	users := store.NewUsers(pool).WithHook(q.UserHook())
	deliverOne := func(email string) delivery {
		t.Helper()
		if _, err := users.Create(ctx, store.NewUser{Name: "Ada", Email: email}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-rc.seen:
		case <-time.After(10 * time.Second):
			t.Fatalf("no delivery for %s", email)
		}
		got := rc.deliveries()
		return got[len(got)-1]
	}

	newSecret := webhook.NewSecret()
	if _, err := hooks.RotateSecret(ctx, w.ID, newSecret, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	d := deliverOne("during@example.com")
	if verify(t, oldSecret, d) != nil || verify(t, newSecret, d) != nil {
		t.Errorf("during the overlap, delivery with signatures %q must verify with both secrets", d.header.Get(webhook.HeaderSignature))
	}
	if _, err := pool.Exec(ctx, "UPDATE webhooks SET previous_secret_until = now() - interval '1 second'"); err != nil {
		t.Fatal(err)
	}
	d = deliverOne("after@example.com")
	if verify(t, oldSecret, d) == nil || verify(t, newSecret, d) != nil {
		t.Errorf("after the overlap, delivery with signatures %q must verify with the new secret only", d.header.Get(webhook.HeaderSignature))
	}
}
