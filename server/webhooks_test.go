package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"userapi/auth"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
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

// Each key may make WebhooksPerKey subscriptions, however many requests it
// sends at once; another key has a budget of its own.
func TestWebhooks_CapPerKey(t *testing.T) {
	t.Parallel()
	const perKey = 2
	pool := storetest.Pool(t, storetest.NewDB(t), 6)
	keys := fakeKeys{}
	for _, name := range []string{"one", "two"} {
		keys["key-"+name] = auth.Key{Prefix: name, Scopes: []string{auth.ScopeWebhooksAdmin}}
	}
	s := newServerWith(t, fakeUsers{}, server.Options{Webhooks: store.NewWebhooks(pool), Auth: keys, WebhooksPerKey: perKey})
	body := map[string]any{"url": "https://example.com/hook", "events": []string{"user.created"}}

	var created, refused atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			switch r := s.do("POST", "/webhooks", body, "Authorization", "Bearer key-one"); r.status {
			case http.StatusCreated:
				created.Add(1)
			case http.StatusUnprocessableEntity:
				refused.Add(1)
				if p := r.problem(t); !strings.Contains(p.Detail, "already has 2 subscriptions") {
					t.Errorf("detail = %q, want it to name the limit", p.Detail)
				}
			default:
				t.Errorf("POST /webhooks = %d %s, want 201 or 422", r.status, r.body)
			}
		})
	}
	wg.Wait()
	if created.Load() != perKey || refused.Load() != 8-perKey {
		t.Errorf("8 concurrent subscriptions with a limit of %d: %d created, %d refused", perKey, created.Load(), refused.Load())
	}
	s.do("POST", "/webhooks", body, "Authorization", "Bearer key-two").wantStatus(t, http.StatusCreated)
}
