package server_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"userapi/server"
	"userapi/store"
)

// fakeWebhooks stores nothing and counts what it is asked to create.
type fakeWebhooks struct {
	store.WebhookService
	created *atomic.Int64
}

func (f fakeWebhooks) Create(_ context.Context, w store.NewWebhook) (store.Webhook, error) {
	f.created.Add(1)
	return store.Webhook{ID: 1, URL: w.URL, Events: w.Events, Secret: w.Secret}, nil
}

// Every spelling of a private host is refused when subscribing, with a 422
// naming body.url, before anything is stored.
func TestWebhooks_PrivateHostsRefused(t *testing.T) {
	t.Parallel()
	hooks := fakeWebhooks{created: new(atomic.Int64)}
	s := newServerWith(t, fakeUsers{}, server.Options{Webhooks: hooks})
	for _, host := range []string{
		"127.1", "2130706433", "0x7f000001", "0177.0.0.1", "LOCALHOST", "localhost.",
		"[2002:7f00:1::]", "[::127.0.0.1]", "[64:ff9b::a9fe:a9fe]",
	} {
		body := map[string]any{"url": "http://" + host + ":8080/hook", "events": []string{"user.created"}}
		r := s.do("POST", "/webhooks", body)
		p := r.problem(t)
		if r.status != http.StatusUnprocessableEntity || p.Errors == nil || len(*p.Errors) != 1 || (*p.Errors)[0].Location != "body.url" {
			t.Errorf("POST /webhooks with host %s = %d %s, want 422 naming body.url", host, r.status, r.body)
		}
	}
	if n := hooks.created.Load(); n != 0 {
		t.Errorf("%d refused subscriptions were stored, want 0", n)
	}
}
