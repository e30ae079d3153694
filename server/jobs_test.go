package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"userapi/gen"
	"userapi/jobs"
	"userapi/jobs/jobstest"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
	"userapi/webhook"
)

// jobServer is the HTTP server over a real queue with workers, on a small
// pool of its own database.
func jobServer(t *testing.T, opts jobs.Options) (*testServer, *pgxpool.Pool) {
	t.Helper()
	pool := storetest.Pool(t, storetest.NewDB(t), 6)
	q := jobstest.Start(t, pool, opts)
	users := store.NewUsers(pool).WithHook(q.UserHook())
	s := newServerWith(t, users, server.Options{
		Jobs:     q,
		Webhooks: store.NewWebhooks(pool),
		Checks:   []server.Check{{Name: "queue", Backlog: q.Backlog}},
	})
	return s, pool
}

func (r response) job(t *testing.T) gen.Job {
	t.Helper()
	var j gen.Job
	mustJSON(t, r.body, &j)
	return j
}

// pollJob polls GET /jobs/{id} until the job is in state want.
func (s *testServer) pollJob(t *testing.T, id int64, want gen.JobState, within time.Duration) gen.Job {
	t.Helper()
	deadline := time.Now().Add(within)
	var j gen.Job
	for {
		j = s.do("GET", fmt.Sprint("/jobs/", id), nil).wantStatus(t, http.StatusOK).job(t)
		if j.State == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if j.State != want {
		t.Fatalf("job %d is %s after %s, want %s; errors: %+v", id, j.State, within, want, j.Errors)
	}
	return j
}

// POST /users/{id}/process → 202 → poll to completed, with a real worker;
// a second request while the first is pending returns the same job.
func TestJobs_ProcessLifecycle(t *testing.T) {
	t.Parallel()
	s, pool := jobServer(t, jobs.Options{Workers: 2, ProcessDelay: 300 * time.Millisecond})
	u := s.do("POST", "/users", map[string]string{"name": "Ada Lovelace", "email": "Ada@Example.com"}).wantStatus(t, http.StatusCreated).user(t)

	res := s.do("POST", fmt.Sprint("/users/", u.Id, "/process"), nil).wantStatus(t, http.StatusAccepted)
	first := res.job(t)
	if loc := res.header.Get("Location"); loc != fmt.Sprint("/jobs/", first.Id) {
		t.Errorf("Location = %q, want /jobs/%d", loc, first.Id)
	}
	if first.Kind != "process_user" || first.State != gen.Available || first.Attempt != 0 || first.FinishedAt != nil {
		t.Errorf("new job = %+v, want an available process_user job, not yet attempted", first)
	}
	again := s.do("POST", fmt.Sprint("/users/", u.Id, "/process"), nil).wantStatus(t, http.StatusAccepted).job(t)
	if again.Id != first.Id {
		t.Errorf("second POST while pending gave job %d, want the pending job %d", again.Id, first.Id)
	}

	done := s.pollJob(t, first.Id, gen.Completed, 10*time.Second)
	if done.Attempt != 1 || done.FinishedAt == nil || len(done.Errors) != 0 {
		t.Errorf("completed job = %+v, want attempt 1, finished_at set, no errors", done)
	}
	p, ok, err := store.NewUsers(pool).GetProfile(context.Background(), u.Id)
	if err != nil || !ok || p.EmailNormalized != "ada@example.com" || p.Score != 100 {
		t.Errorf("stored profile = %+v, computed %v, err %v; want ada@example.com, score 100", p, ok, err)
	}
	// Processing never changes the user's version, so ETags stay valid.
	if got := s.do("GET", fmt.Sprint("/users/", u.Id), nil).header.Get("ETag"); got != `"1"` {
		t.Errorf("ETag after processing = %s, want \"1\"", got)
	}

	// Once finished, asking again queues a new job.
	next := s.do("POST", fmt.Sprint("/users/", u.Id, "/process"), nil).wantStatus(t, http.StatusAccepted).job(t)
	if next.Id == first.Id {
		t.Errorf("POST after completion returned the finished job %d, want a new one", first.Id)
	}

	t.Run("UnknownUser", func(t *testing.T) {
		p := s.do("POST", "/users/999999/process", nil).wantStatus(t, http.StatusNotFound).problem(t)
		if p.Detail != "user 999999 does not exist" {
			t.Errorf("detail = %q", p.Detail)
		}
	})
	t.Run("UnknownJob", func(t *testing.T) {
		p := s.do("GET", "/jobs/999999", nil).wantStatus(t, http.StatusNotFound).problem(t)
		if p.Detail != "job 999999 does not exist" {
			t.Errorf("detail = %q", p.Detail)
		}
	})
	t.Run("BadID", func(t *testing.T) {
		s.do("GET", "/jobs/zero", nil).wantStatus(t, http.StatusUnprocessableEntity)
	})
	t.Run("HealthReportsQueue", func(t *testing.T) {
		var h gen.Health
		mustJSON(t, s.do("GET", "/health", nil).wantStatus(t, http.StatusOK).body, &h)
		q := h.Checks["queue"]
		if q.Status != gen.HealthCheckStatusUp || q.JobsWaiting == nil || q.OldestWaitingSeconds == nil {
			t.Errorf("/health queue check = %+v, want up with jobs_waiting and oldest_waiting_seconds", q)
		}
	})
}

// failFirst fails the first attempt of every profile job.
type failFirst struct{ river.MiddlewareDefaults }

func (*failFirst) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	if job.Kind == "process_user" && job.Attempt == 1 {
		return errors.New("profile service unavailable")
	}
	return doInner(ctx)
}

// A failing job is retryable, with its error visible, and then completes.
func TestJobs_FailedAttemptIsRetried(t *testing.T) {
	t.Parallel()
	// River makes retries due within its 5 s scheduling interval available
	// at once; a longer backoff shows the retryable state.
	s, _ := jobServer(t, jobs.Options{Workers: 1, RetryBackoff: 6 * time.Second, Middleware: []rivertype.Middleware{&failFirst{}}})
	u := s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated).user(t)
	j := s.do("POST", fmt.Sprint("/users/", u.Id, "/process"), nil).wantStatus(t, http.StatusAccepted).job(t)

	failed := s.pollJob(t, j.Id, gen.Retryable, 5*time.Second)
	if len(failed.Errors) != 1 || failed.Errors[0].Attempt != 1 || !strings.Contains(failed.Errors[0].Message, "profile service unavailable") {
		t.Errorf("retryable job errors = %+v, want attempt 1's error", failed.Errors)
	}
	if !failed.ScheduledAt.After(time.Now()) {
		t.Errorf("retryable job scheduled at %s, want a time in the future", failed.ScheduledAt)
	}
	done := s.pollJob(t, j.Id, gen.Completed, 20*time.Second)
	if done.Attempt != 2 || len(done.Errors) != 1 {
		t.Errorf("completed job = attempt %d with %d errors, want 2 and 1", done.Attempt, len(done.Errors))
	}
}

func TestWebhooks_API(t *testing.T) {
	t.Parallel()
	ownSecret := webhook.NewSecret()
	var hits atomic.Int32
	recv := newReceiverServer(t, func(http.ResponseWriter, *http.Request) { hits.Add(1) })
	// jobServer's HTTP layer refuses private URLs (the default).
	s, _ := jobServer(t, jobs.Options{Workers: 1})
	created := s.do("POST", "/webhooks", map[string]any{"url": "https://example.com/hook", "events": []string{"user.created", "user.deleted"}}).
		wantStatus(t, http.StatusCreated)
	var w gen.WebhookWithSecret
	mustJSON(t, created.body, &w)
	if !strings.HasPrefix(w.Secret, "whsec_") || len(w.Secret) < 40 || created.header.Get("Location") != fmt.Sprint("/webhooks/", w.Id) {
		t.Errorf("created = %s (Location %q), want a generated whsec_ secret and a Location", created.body, created.header.Get("Location"))
	}
	own := s.do("POST", "/webhooks", map[string]any{"url": "https://example.com/other", "events": []string{"user.updated"}, "secret": ownSecret}).
		wantStatus(t, http.StatusCreated)
	var w2 gen.WebhookWithSecret
	mustJSON(t, own.body, &w2)
	if w2.Secret != ownSecret {
		t.Errorf("secret = %q, want the one given", w2.Secret)
	}

	got := s.do("GET", fmt.Sprint("/webhooks/", w.Id), nil).wantStatus(t, http.StatusOK)
	if strings.Contains(string(got.body), "secret") {
		t.Errorf("GET /webhooks/%d shows the secret: %s", w.Id, got.body)
	}
	var list gen.WebhookList
	mustJSON(t, s.do("GET", "/webhooks", nil).wantStatus(t, http.StatusOK).body, &list)
	if len(list.Items) != 2 || list.Items[0].Id != w.Id || list.Items[1].Id != w2.Id {
		t.Errorf("GET /webhooks = %+v, want both subscriptions in id order", list)
	}
	var deliveries gen.DeliveryList
	mustJSON(t, s.do("GET", fmt.Sprint("/webhooks/", w.Id, "/deliveries?limit=10"), nil).wantStatus(t, http.StatusOK).body, &deliveries)
	if len(deliveries.Items) != 0 {
		t.Errorf("deliveries before any event = %+v, want none", deliveries.Items)
	}

	s.do("DELETE", fmt.Sprint("/webhooks/", w.Id), nil).wantStatus(t, http.StatusNoContent)
	s.do("GET", fmt.Sprint("/webhooks/", w.Id), nil).wantStatus(t, http.StatusNotFound)
	s.do("DELETE", fmt.Sprint("/webhooks/", w.Id), nil).wantStatus(t, http.StatusNotFound)
	s.do("GET", fmt.Sprint("/webhooks/", w.Id, "/deliveries"), nil).wantStatus(t, http.StatusNotFound)

	bad := []struct {
		name string
		body any
		want string
	}{
		{"NotHTTP", map[string]any{"url": "ftp://example.com/x", "events": []string{"user.created"}}, "body.url"},
		{"PrivateAddress", map[string]any{"url": recv.URL, "events": []string{"user.created"}}, "body.url"},
		{"UnknownEvent", map[string]any{"url": "https://example.com/x", "events": []string{"user.renamed"}}, "body.events"},
		{"NoEvents", map[string]any{"url": "https://example.com/x", "events": []string{}}, "body.events"},
		{"ShortSecret", map[string]any{"url": "https://example.com/x", "events": []string{"user.created"}, "secret": "short"}, "body.secret"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			p := s.do("POST", "/webhooks", tt.body).wantStatus(t, http.StatusUnprocessableEntity).problem(t)
			if p.Errors == nil || len(*p.Errors) == 0 || !strings.HasPrefix((*p.Errors)[0].Location, tt.want) {
				t.Errorf("errors = %+v, want one at %s", p.Errors, tt.want)
			}
		})
	}
	if hits.Load() != 0 {
		t.Errorf("the refused private receiver got %d requests, want 0", hits.Load())
	}
}

// End to end over HTTP: a subscription's deliveries show up in its log.
func TestWebhooks_DeliveriesLogged(t *testing.T) {
	t.Parallel()
	recv := newReceiverServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	pool := storetest.Pool(t, storetest.NewDB(t), 6)
	q := jobstest.Start(t, pool, jobs.Options{Workers: 1, WebhookAllowPrivate: true})
	s := newServerWith(t, store.NewUsers(pool).WithHook(q.UserHook()), server.Options{Jobs: q, Webhooks: store.NewWebhooks(pool), WebhookAllowPrivate: true})

	var w gen.WebhookWithSecret
	mustJSON(t, s.do("POST", "/webhooks", map[string]any{"url": recv.URL, "events": []string{"user.created", "user.updated", "user.deleted"}}).
		wantStatus(t, http.StatusCreated).body, &w)
	u := s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated).user(t)
	s.do("PATCH", fmt.Sprint("/users/", u.Id), map[string]string{"name": "Ada L"}).wantStatus(t, http.StatusOK)
	s.do("DELETE", fmt.Sprint("/users/", u.Id), nil).wantStatus(t, http.StatusNoContent)

	deadline := time.Now().Add(10 * time.Second)
	var log gen.DeliveryList
	for time.Now().Before(deadline) {
		mustJSON(t, s.do("GET", fmt.Sprint("/webhooks/", w.Id, "/deliveries"), nil).wantStatus(t, http.StatusOK).body, &log)
		if len(log.Items) == 3 {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	types := map[gen.EventType]bool{}
	for _, d := range log.Items {
		types[d.EventType] = true
		if d.StatusCode == nil || *d.StatusCode != http.StatusNoContent || d.Error != nil || d.Attempt != 1 {
			t.Errorf("delivery = %+v, want one successful first attempt", d)
		}
	}
	if len(log.Items) != 3 || len(types) != 3 {
		t.Errorf("delivery log = %+v, want one each of created, updated, deleted", log.Items)
	}
}

func newReceiverServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
