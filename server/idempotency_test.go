package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"userapi/gen"
	"userapi/jobs"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
)

// idemServer is the HTTP server with idempotency keys, over a real database
// and job queue (which inserts jobs and runs none), with the caller's key
// prefix taken from server.TestCallerHeader.
type idemServer struct {
	*testServer
	pool *pgxpool.Pool
}

type idemOptions struct {
	ttl time.Duration
	// hook, when set, runs in each user change's transaction after the
	// queue's webhook hook.
	hook store.UserHook
}

func newIdemServer(t *testing.T, o idemOptions) *idemServer {
	t.Helper()
	pool := storetest.Pool(t, storetest.NewDB(t), 5)
	q, err := jobs.New(pool, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hook := q.UserHook()
	if o.hook != nil {
		queue := hook
		hook = func(ctx context.Context, tx pgx.Tx, ev store.UserEvent) error {
			if err := queue(ctx, tx, ev); err != nil {
				return err
			}
			return o.hook(ctx, tx, ev)
		}
	}
	e, err := server.New(slog.New(slog.DiscardHandler), store.NewUsers(pool).WithHook(hook), server.Options{
		Jobs: q, Webhooks: store.NewWebhooks(pool),
		Idempotency: store.NewIdempotency(pool), IdempotencyTTL: o.ttl,
	})
	if err != nil {
		t.Fatal(err)
	}
	server.UseTestCaller(e)
	return &idemServer{testServer: serveEcho(t, e), pool: pool}
}

// count runs a SELECT count(*) query.
func (s *idemServer) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// subscribe adds a webhook subscription to user.created, so that creates
// queue a delivery job in their transaction.
func (s *idemServer) subscribe(t *testing.T) {
	t.Helper()
	if _, err := store.NewWebhooks(s.pool).Create(context.Background(), store.NewWebhook{
		URL: "https://example.com/hook", Events: []string{store.UserCreated}, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	}); err != nil {
		t.Fatal(err)
	}
}

// wantReplay fails unless again is first sent again: same status, body
// byte for byte, the same answer headers, marked as replayed.
func wantReplay(t *testing.T, first, again response) {
	t.Helper()
	if again.status != first.status || !bytes.Equal(again.body, first.body) {
		t.Fatalf("replay = %d %s, want %d %s", again.status, again.body, first.status, first.body)
	}
	for _, h := range []string{"Content-Type", "Location", "ETag"} {
		if again.header.Get(h) != first.header.Get(h) {
			t.Errorf("replay %s = %q, want %q", h, again.header.Get(h), first.header.Get(h))
		}
	}
	if got := again.header.Get("Idempotent-Replayed"); got != "true" {
		t.Errorf("replay Idempotent-Replayed = %q, want true", got)
	}
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("first answer has Idempotent-Replayed = %q, want none", first.header.Get("Idempotent-Replayed"))
	}
	if again.header.Get("X-Request-ID") == first.header.Get("X-Request-ID") {
		t.Errorf("replay repeats X-Request-ID %q; it names each request", again.header.Get("X-Request-ID"))
	}
}

func TestIdempotency_CreateUserReplays(t *testing.T) {
	t.Parallel()
	s := newIdemServer(t, idemOptions{})
	s.subscribe(t)
	body := map[string]string{"name": "Ada", "email": "ada@example.com"}
	first := s.do("POST", "/users", body, "Idempotency-Key", "create-ada").wantStatus(t, http.StatusCreated)
	if first.header.Get("Location") == "" || first.header.Get("ETag") == "" {
		t.Fatalf("first answer headers = %v, want Location and ETag", first.header)
	}
	// The quoted form (a Structured Field String) names the same key.
	for _, key := range []string{"create-ada", `"create-ada"`} {
		wantReplay(t, first, s.do("POST", "/users", body, "Idempotency-Key", key))
	}
	if n := s.count(t, "SELECT count(*) FROM users"); n != 1 {
		t.Errorf("%d users after a create and two replays, want 1", n)
	}
	if n := s.count(t, "SELECT count(*) FROM river_job WHERE kind = 'webhook_deliver'"); n != 1 {
		t.Errorf("%d webhook deliveries queued, want 1", n)
	}
	// The created user is readable at once: the cache-free store, and the
	// commit came before the answer.
	s.do("GET", first.header.Get("Location"), nil).wantStatus(t, http.StatusOK)
}

func TestIdempotency_ProcessUserReplays(t *testing.T) {
	t.Parallel()
	s := newIdemServer(t, idemOptions{})
	u := s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated).user(t)
	path := fmt.Sprint("/users/", u.Id, "/process")
	first := s.do("POST", path, nil, "Idempotency-Key", "p1").wantStatus(t, http.StatusAccepted)
	wantReplay(t, first, s.do("POST", path, nil, "Idempotency-Key", "p1"))
	// Another key is another request: the queue still returns the job
	// pending for this user instead of queuing a second one.
	other := s.do("POST", path, nil, "Idempotency-Key", "p2").wantStatus(t, http.StatusAccepted)
	if other.header.Get("Idempotent-Replayed") != "" || other.job(t).Id != first.job(t).Id {
		t.Errorf("with another key: job %d (replayed %q), want the pending job %d, not replayed",
			other.job(t).Id, other.header.Get("Idempotent-Replayed"), first.job(t).Id)
	}
	if n := s.count(t, "SELECT count(*) FROM river_job WHERE kind = 'process_user'"); n != 1 {
		t.Errorf("%d process_user jobs, want 1", n)
	}
	// A job for an unknown user is a 404, not stored: the key is still free.
	s.do("POST", "/users/999999/process", nil, "Idempotency-Key", "p3").wantStatus(t, http.StatusNotFound)
	if n := s.count(t, "SELECT count(*) FROM idempotency_keys WHERE key = 'p3'"); n != 0 {
		t.Errorf("a 404 left %d records, want none", n)
	}
}

func TestIdempotency_CreateWebhookReplays(t *testing.T) {
	t.Parallel()
	s := newIdemServer(t, idemOptions{})
	body := map[string]any{"url": "https://example.com/hooks", "events": []string{"user.created"}}
	first := s.do("POST", "/webhooks", body, "Idempotency-Key", "w1").wantStatus(t, http.StatusCreated)
	// The generated secret comes back the same: the answer is stored.
	wantReplay(t, first, s.do("POST", "/webhooks", body, "Idempotency-Key", "w1"))
	if n := s.count(t, "SELECT count(*) FROM webhooks"); n != 1 {
		t.Errorf("%d subscriptions, want 1", n)
	}
}

func TestIdempotency_KeyReusedForAnotherRequest(t *testing.T) {
	t.Parallel()
	s := newIdemServer(t, idemOptions{})
	s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}, "Idempotency-Key", "k").wantStatus(t, http.StatusCreated)
	u := s.do("POST", "/users", map[string]string{"name": "Bob", "email": "bob@example.com"}).wantStatus(t, http.StatusCreated).user(t)

	tests := []struct {
		name, method, path string
		body               any
	}{
		{"OtherBody", "POST", "/users", map[string]string{"name": "Ada", "email": "ada2@example.com"}},
		{"SameJSONOtherBytes", "POST", "/users", `{"email": "ada@example.com", "name": "Ada"}`},
		{"OtherOperation", "POST", fmt.Sprint("/users/", u.Id, "/process"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := s.do(tt.method, tt.path, tt.body, "Idempotency-Key", "k").wantStatus(t, http.StatusUnprocessableEntity).problem(t)
			if !strings.Contains(p.Detail, "different request") || p.Errors == nil || len(*p.Errors) != 1 || (*p.Errors)[0].Location != "header.Idempotency-Key" {
				t.Errorf("problem = %+v, want a detail saying the key was used with a different request, naming header.Idempotency-Key", p)
			}
		})
	}
	if n := s.count(t, "SELECT count(*) FROM users"); n != 2 {
		t.Errorf("%d users, want 2", n)
	}
}

func TestIdempotency_BadKey(t *testing.T) {
	t.Parallel()
	s := newIdemServer(t, idemOptions{})
	for _, key := range []string{
		"",
		strings.Repeat("k", 256),
		`"` + strings.Repeat("k", 256) + `"`,
		`"unterminated`,
		`"bad \x escape"`,
		`""`,
		"ключ",
	} {
		res := s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}, "Idempotency-Key", key)
		p := res.wantStatus(t, http.StatusUnprocessableEntity).problem(t)
		if p.Errors == nil || len(*p.Errors) == 0 {
			t.Fatalf("key %q: problem %+v, want errors at header.Idempotency-Key", key, p)
		}
		for _, e := range *p.Errors {
			if e.Location != "header.Idempotency-Key" {
				t.Errorf("key %q: error %+v, want it at header.Idempotency-Key", key, e)
			}
		}
	}
	// The longest keys, bare and quoted, with an escaped quote.
	long := strings.Repeat("k", 254)
	s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}, "Idempotency-Key", long+"!").wantStatus(t, http.StatusCreated)
	s.do("POST", "/users", map[string]string{"name": "Bob", "email": "bob@example.com"}, "Idempotency-Key", `"`+long+`\""`).wantStatus(t, http.StatusCreated)
	if n := s.count(t, "SELECT count(*) FROM users"); n != 2 {
		t.Errorf("%d users, want 2 (none for a bad key)", n)
	}
}

// An error answer is not stored: the same key runs the request again once
// the cause is gone.
func TestIdempotency_ErrorIsNotStored(t *testing.T) {
	t.Parallel()
	s := newIdemServer(t, idemOptions{})
	taken := s.do("POST", "/users", map[string]string{"name": "Old", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated).user(t)
	body := map[string]string{"name": "Ada", "email": "ada@example.com"}
	s.do("POST", "/users", body, "Idempotency-Key", "retry-me").wantStatus(t, http.StatusConflict)
	s.do("POST", "/users", body, "Idempotency-Key", "retry-me").wantStatus(t, http.StatusConflict)
	s.do("DELETE", fmt.Sprint("/users/", taken.Id, "?purge=true"), nil).wantStatus(t, http.StatusNoContent)
	first := s.do("POST", "/users", body, "Idempotency-Key", "retry-me").wantStatus(t, http.StatusCreated)
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("the first success is marked as a replay")
	}
	wantReplay(t, first, s.do("POST", "/users", body, "Idempotency-Key", "retry-me"))
}

// Requests racing with one key: one takes effect, the others are told it is
// in progress or get its answer.
func TestIdempotency_Concurrent(t *testing.T) {
	t.Parallel()
	// A slow transaction keeps the first request in progress while the
	// others arrive.
	s := newIdemServer(t, idemOptions{hook: func(context.Context, pgx.Tx, store.UserEvent) error {
		time.Sleep(300 * time.Millisecond)
		return nil
	}})
	const n = 8
	body := map[string]string{"name": "Ada", "email": "ada@example.com"}
	results := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = s.do("POST", "/users", body, "Idempotency-Key", "race") })
	}
	wg.Wait()
	var created, replayed, busy int
	var original response
	for _, r := range results {
		switch {
		case r.status == http.StatusCreated && r.header.Get("Idempotent-Replayed") == "":
			created++
			original = r
		case r.status == http.StatusCreated:
			replayed++
		case r.status == http.StatusConflict:
			busy++
			if p := r.problem(t); r.header.Get("Retry-After") != "1" || !strings.Contains(p.Detail, "still being handled") || p.Type != gen.ProblemsidempotencyKeyBusy {
				t.Errorf("409 = %v %s, want Retry-After: 1, a detail saying the key is in progress and type %s", r.header, r.body, gen.ProblemsidempotencyKeyBusy)
			}
		default:
			t.Errorf("answer %d %s, want 201 or 409", r.status, r.body)
		}
	}
	if created != 1 || busy == 0 {
		t.Errorf("%d concurrent requests with one key: %d created, %d replayed, %d in progress; want 1 created and some in progress", n, created, replayed, busy)
	}
	for _, r := range results {
		if r.status == http.StatusCreated && !bytes.Equal(r.body, original.body) {
			t.Errorf("replay body %s differs from the original %s", r.body, original.body)
		}
	}
	if got := s.count(t, "SELECT count(*) FROM users"); got != 1 {
		t.Errorf("%d users, want 1", got)
	}
}

// Keys belong to the API key that sent them.
func TestIdempotency_ScopedToCaller(t *testing.T) {
	t.Parallel()
	s := newIdemServer(t, idemOptions{})
	for i, prefix := range []string{"", "key_a", "key_b"} {
		body := map[string]string{"name": "User", "email": fmt.Sprintf("u%d@example.com", i)}
		first := s.do("POST", "/users", body, "Idempotency-Key", "same", server.TestCallerHeader, prefix).wantStatus(t, http.StatusCreated)
		if first.header.Get("Idempotent-Replayed") != "" {
			t.Errorf("caller %q got another caller's answer: %s", prefix, first.body)
		}
		wantReplay(t, first, s.do("POST", "/users", body, "Idempotency-Key", "same", server.TestCallerHeader, prefix))
	}
	if n := s.count(t, "SELECT count(*) FROM users"); n != 3 {
		t.Errorf("%d users, want one per caller (3)", n)
	}
}

// An expired record is as good as absent: the key runs a new request and
// stores its answer in place of the old one.
func TestIdempotency_Expiry(t *testing.T) {
	t.Parallel()
	const ttl = 300 * time.Millisecond
	s := newIdemServer(t, idemOptions{ttl: ttl})
	s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}, "Idempotency-Key", "short").wantStatus(t, http.StatusCreated)
	var lifetime float64
	if err := s.pool.QueryRow(context.Background(), "SELECT extract(epoch FROM expires_at - created_at)::float8 FROM idempotency_keys").Scan(&lifetime); err != nil {
		t.Fatal(err)
	}
	if lifetime != ttl.Seconds() {
		t.Errorf("record lives %gs, want the configured %gs", lifetime, ttl.Seconds())
	}
	time.Sleep(ttl + 100*time.Millisecond)
	// Another body would be a 422 within the TTL.
	second := s.do("POST", "/users", map[string]string{"name": "Bob", "email": "bob@example.com"}, "Idempotency-Key", "short").wantStatus(t, http.StatusCreated)
	if second.header.Get("Idempotent-Replayed") != "" || second.user(t).Name != "Bob" {
		t.Fatalf("after expiry: %s (replayed %q), want a new user", second.body, second.header.Get("Idempotent-Replayed"))
	}
	if n := s.count(t, "SELECT count(*) FROM idempotency_keys WHERE body = $1", second.body); n != 1 {
		t.Errorf("%d records hold the new answer, want the replaced record", n)
	}
	if n := s.count(t, "SELECT count(*) FROM idempotency_keys"); n != 1 {
		t.Errorf("%d records, want the replaced one only", n)
	}
}

// The record and the effect commit together, or neither does.
func TestIdempotency_RecordAndEffectCommitTogether(t *testing.T) {
	t.Parallel()
	t.Run("EffectFails", func(t *testing.T) {
		t.Parallel()
		// The user row is inserted, then its transaction fails.
		s := newIdemServer(t, idemOptions{hook: func(_ context.Context, _ pgx.Tx, ev store.UserEvent) error {
			if ev.User.Name == "fail" {
				return errors.New("hook failed")
			}
			return nil
		}})
		s.subscribe(t)
		s.do("POST", "/users", map[string]string{"name": "fail", "email": "ada@example.com"}, "Idempotency-Key", "k1").wantStatus(t, http.StatusInternalServerError)
		if u, k, j := s.count(t, "SELECT count(*) FROM users"), s.count(t, "SELECT count(*) FROM idempotency_keys"),
			s.count(t, "SELECT count(*) FROM river_job"); u != 0 || k != 0 || j != 0 {
			t.Errorf("after a failed effect: %d users, %d records, %d jobs; want none", u, k, j)
		}
	})
	t.Run("RecordFails", func(t *testing.T) {
		t.Parallel()
		s := newIdemServer(t, idemOptions{})
		s.subscribe(t)
		ada := s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated).user(t)
		ctx := context.Background()
		if _, err := s.pool.Exec(ctx, `
			CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
			CREATE TRIGGER refuse BEFORE INSERT ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION refuse();`); err != nil {
			t.Fatal(err)
		}
		requests := []struct {
			path string
			body any
		}{
			{"/users", map[string]string{"name": "Bob", "email": "bob@example.com"}},
			{fmt.Sprint("/users/", ada.Id, "/process"), nil},
			{"/webhooks", map[string]any{"url": "https://example.com/other", "events": []string{"user.deleted"}}},
		}
		const state = "SELECT (SELECT count(*) FROM users) || ' users, ' || (SELECT count(*) FROM webhooks) || ' webhooks, ' || " +
			"(SELECT count(*) FROM river_job) || ' jobs'"
		var before string
		if err := s.pool.QueryRow(ctx, state).Scan(&before); err != nil {
			t.Fatal(err)
		}
		for _, r := range requests {
			s.do("POST", r.path, r.body, "Idempotency-Key", "k-"+r.path).wantStatus(t, http.StatusInternalServerError)
		}
		var after string
		if err := s.pool.QueryRow(ctx, state).Scan(&after); err != nil {
			t.Fatal(err)
		}
		if after != before {
			t.Errorf("the records failed to store, yet the effects stayed: %s before, %s after", before, after)
		}
		if _, err := s.pool.Exec(ctx, "DROP TRIGGER refuse ON idempotency_keys"); err != nil {
			t.Fatal(err)
		}
		for _, r := range requests {
			first := s.do("POST", r.path, r.body, "Idempotency-Key", "k-"+r.path)
			if first.status/100 != 2 {
				t.Fatalf("retry of %s = %d %s, want a success", r.path, first.status, first.body)
			}
			wantReplay(t, first, s.do("POST", r.path, r.body, "Idempotency-Key", "k-"+r.path))
		}
		if err := s.pool.QueryRow(ctx, state).Scan(&after); err != nil {
			t.Fatal(err)
		}
		// Ada and her delivery, then Bob and his, the profile job and the
		// second subscription.
		if want := "2 users, 2 webhooks, 3 jobs"; before != "1 users, 1 webhooks, 1 jobs" || after != want {
			t.Errorf("before: %s; after the retries: %s, want %s", before, after, want)
		}
	})
}

// Without the header nothing changes: no record, no transaction of ours.
func TestIdempotency_NoKey(t *testing.T) {
	t.Parallel()
	s := newIdemServer(t, idemOptions{})
	body := map[string]string{"name": "Ada", "email": "ada@example.com"}
	s.do("POST", "/users", body).wantStatus(t, http.StatusCreated)
	s.do("POST", "/users", body).wantStatus(t, http.StatusConflict)
	if n := s.count(t, "SELECT count(*) FROM idempotency_keys"); n != 0 {
		t.Errorf("%d records without a key, want none", n)
	}
}

// A server without an idempotency store refuses keys rather than ignore the
// promise they ask for.
func TestIdempotency_NoStore(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}, "Idempotency-Key", "k").wantStatus(t, http.StatusInternalServerError)
	s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated)
}
