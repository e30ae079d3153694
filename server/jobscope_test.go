package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"

	"userapi/auth"
	"userapi/jobs"
	"userapi/jobs/jobstest"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
)

// A webhook delivery's job shows its subscription's errors, so only keys
// that may see subscriptions get it; other jobs need jobs:read only.
func TestJobs_DeliveryJobsNeedWebhooksScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.NewDB(t), 4)
	q := jobstest.Start(t, pool, jobs.Options{}) // no workers: jobs stay as queued
	keys := store.NewAPIKeys(pool)
	s := newServerWith(t, store.NewUsers(pool).WithHook(q.UserHook()), server.Options{
		Jobs: q,
		Auth: auth.NewChecker(keys, keys, slog.New(slog.DiscardHandler)),
	})
	makeKey := func(scopes ...string) string {
		k := auth.Generate()
		if _, err := keys.Create(ctx, store.NewAPIKey{Prefix: k.Prefix, Hash: k.Hash, Name: "test", Scopes: scopes}); err != nil {
			t.Fatal(err)
		}
		return "Bearer " + k.Key
	}
	if _, err := store.NewWebhooks(pool).Create(ctx, store.NewWebhook{URL: "https://example.com/hook", Events: []string{store.UserCreated}, Secret: "whsec_0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	writer := makeKey(auth.ScopeUsersWrite)
	u := s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}, "Authorization", writer).wantStatus(t, http.StatusCreated).user(t)
	process := s.do("POST", fmt.Sprint("/users/", u.Id, "/process"), nil, "Authorization", writer).wantStatus(t, http.StatusAccepted).job(t)
	var delivery int64
	if err := pool.QueryRow(ctx, "SELECT id FROM river_job WHERE kind = 'webhook_deliver'").Scan(&delivery); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		scopes []string
		job    int64
		want   int
	}{
		{"DeliveryWithJobsRead", []string{auth.ScopeJobsRead}, delivery, http.StatusForbidden},
		{"DeliveryWithWebhooksAdmin", []string{auth.ScopeJobsRead, auth.ScopeWebhooksAdmin}, delivery, http.StatusOK},
		{"DeliveryWithAdmin", []string{auth.ScopeAdmin}, delivery, http.StatusOK},
		{"ProfileWithJobsRead", []string{auth.ScopeJobsRead}, process.Id, http.StatusOK},
	}
	for _, tt := range tests {
		r := s.do("GET", fmt.Sprint("/jobs/", tt.job), nil, "Authorization", makeKey(tt.scopes...))
		if r.status != tt.want {
			t.Errorf("%s: GET /jobs/%d with %v = %d %s, want %d", tt.name, tt.job, tt.scopes, r.status, r.body, tt.want)
		}
	}
}
