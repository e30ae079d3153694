package jobs_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"userapi/jobs"
	"userapi/store"
)

// A receiver that never answers gets at most its share of the workers; the
// other subscription's deliveries all arrive while it is still stuck.
func TestDeliver_SlowReceiverDoesNotHoldUpOthers(t *testing.T) {
	t.Parallel()
	const events, perSubscription = 6, 2
	release := make(chan struct{})
	var stuck, mostStuck atomic.Int64
	slow := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		n := stuck.Add(1)
		defer stuck.Add(-1)
		for m := mostStuck.Load(); n > m && !mostStuck.CompareAndSwap(m, n); m = mostStuck.Load() {
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	fast := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	q, pool := newQueue(t, jobs.Options{
		Workers: 1, WebhookConcurrency: 4, WebhookConcurrencyPerSubscription: perSubscription,
		WebhookAllowPrivate: true, WebhookTimeout: time.Minute,
	})
	t.Cleanup(func() { close(release) }) // before the queue stops: cleanups run last first

	ctx := context.Background()
	for _, url := range []string{slow.srv.URL, fast.srv.URL} {
		if _, err := store.NewWebhooks(pool).Create(ctx, store.NewWebhook{URL: url, Events: []string{store.UserCreated}, Secret: secret}); err != nil {
			t.Fatal(err)
		}
	}
	users := store.NewUsers(pool).WithHook(q.UserHook())
	for i := range events {
		if _, err := users.Create(ctx, store.NewUser{Name: "Ada", Email: fmt.Sprintf("ada%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}

	deadline := time.Now().Add(20 * time.Second)
	for len(fast.deliveries()) < events && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := len(fast.deliveries()); got != events {
		t.Errorf("the fast receiver got %d of %d deliveries while the slow one was stuck", got, events)
	}
	if got := mostStuck.Load(); got == 0 || got > perSubscription {
		t.Errorf("the slow receiver held %d deliveries at once, want 1 to %d", got, perSubscription)
	}
}
