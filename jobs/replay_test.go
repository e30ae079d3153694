package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"userapi/jobs"
	"userapi/jobs/jobstest"
	"userapi/store"
	"userapi/store/storetest"
	"userapi/webhook"
)

// A replay queues every event after an id again, through the queue, with
// the events' own ids; a retry queues one attempt's event again. The
// receiver, deduplicating by id, ends up with each event once.
func TestReplayAndRedeliver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	pool := storetest.Pool(t, storetest.QuietDB(t), 5)
	q := jobstest.Start(t, pool, jobs.Options{Workers: 1, WebhookAllowPrivate: true})
	hook, err := store.NewWebhooks(pool).Create(ctx, store.NewWebhook{URL: rc.srv.URL + "/hook", Events: []string{store.UserCreated}, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	users := store.NewUsers(pool).WithHook(q.UserHook())
	for i := range 3 {
		if _, err := users.Create(ctx, store.NewUser{Name: "U", Email: fmt.Sprintf("u%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitDeliveries := func(n int) []delivery {
		t.Helper()
		for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			if got := rc.deliveries(); len(got) >= n {
				return got
			}
			if time.Since(start) > time.Minute {
				t.Fatalf("receiver got %d deliveries after a minute, want %d", len(rc.deliveries()), n)
			}
		}
	}
	first := waitDeliveries(3)
	var ids []int64
	for _, d := range first {
		ids = append(ids, d.event.ID)
	}
	slices.Sort(ids)

	n, err := q.Replay(ctx, hook.ID, ids[0], nil)
	if err != nil || n != 2 {
		t.Fatalf("Replay(after the first) = %d, %v, want the 2 events after it", n, err)
	}
	replayed := waitDeliveries(5)[3:]
	var again []int64
	for _, d := range replayed {
		again = append(again, d.event.ID)
		if id := d.header.Get(webhook.HeaderID); id != fmt.Sprint(d.event.ID) {
			t.Errorf("replayed delivery has event id header %q, want %d", id, d.event.ID)
		}
	}
	slices.Sort(again)
	if !slices.Equal(again, ids[1:]) {
		t.Errorf("replay delivered %v, want the same ids %v", again, ids[1:])
	}

	log, err := store.NewWebhooks(pool).Deliveries(ctx, hook.ID, 1)
	if err != nil || len(log) != 1 {
		t.Fatalf("Deliveries() = %v, %v", log, err)
	}
	if err := q.Redeliver(ctx, hook.ID, log[0].ID); err != nil {
		t.Fatalf("Redeliver() = %v", err)
	}
	if got := waitDeliveries(6)[5]; fmt.Sprint(got.event.ID) != log[0].EventID {
		t.Errorf("retry delivered event %d, want %s", got.event.ID, log[0].EventID)
	}
	if err := q.Redeliver(ctx, hook.ID, 999999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Redeliver(unknown attempt) = %v, want ErrNotFound", err)
	}
	if _, err := q.Replay(ctx, 999999, 0, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Replay(unknown subscription) = %v, want ErrNotFound", err)
	}
}
