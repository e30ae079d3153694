package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"userapi/auth"
	"userapi/gen"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
	"userapi/webhook"
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

// pings records the requests a receiver got, answering each with status.
type pings struct {
	mu     sync.Mutex
	got    []ping
	status atomic.Int64
	srv    *httptest.Server
}

type ping struct {
	header http.Header
	body   []byte
}

func newPings(t *testing.T) *pings {
	p := &pings{}
	p.status.Store(http.StatusNoContent)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.got = append(p.got, ping{header: r.Header.Clone(), body: body})
		p.mu.Unlock()
		w.WriteHeader(int(p.status.Load()))
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *pings) last(t *testing.T) ping {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.got) == 0 {
		t.Fatal("the receiver got nothing")
	}
	return p.got[len(p.got)-1]
}

// verifies reports whether the official Standard Webhooks library accepts
// the request with secret.
func verifies(t *testing.T, secret string, p ping) bool {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("NewWebhook(%q) = %v", secret, err)
	}
	return wh.Verify(p.body, p.header) == nil
}

// A test event reaches the receiver signed with the subscription's secret;
// after a rotation it is signed with both secrets until the overlap ends,
// then with the new one only.
func TestWebhooks_TestAndRotateSecret(t *testing.T) {
	t.Parallel()
	const overlap = time.Hour
	pool := storetest.Pool(t, storetest.NewDB(t), 4)
	s := newServerWith(t, fakeUsers{}, server.Options{Webhooks: store.NewWebhooks(pool), WebhookAllowPrivate: true, WebhookRotationOverlap: overlap})
	rc := newPings(t)
	var hook gen.WebhookWithSecret
	r := s.do("POST", "/webhooks", map[string]any{"url": rc.srv.URL + "/hook", "events": []string{"user.created"}}).wantStatus(t, http.StatusCreated)
	if err := json.Unmarshal(r.body, &hook); err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprint("/webhooks/", hook.Id)

	test := func() (gen.WebhookTestResult, ping) {
		t.Helper()
		var res gen.WebhookTestResult
		if err := json.Unmarshal(s.do("POST", path+"/test", nil).wantStatus(t, http.StatusOK).body, &res); err != nil {
			t.Fatal(err)
		}
		return res, rc.last(t)
	}
	res, got := test()
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			WebhookID int64 `json:"webhook_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(got.body, &ev); err != nil {
		t.Fatal(err)
	}
	if !res.Success || res.StatusCode != http.StatusNoContent || ev.Type != "ping" || ev.Data.WebhookID != hook.Id ||
		ev.ID != res.MessageId || got.header.Get("webhook-id") != res.MessageId {
		t.Errorf("test = %+v, receiver got %s with webhook-id %q; want a 204 ping of webhook %d, ids alike", res, got.body, got.header.Get("webhook-id"), hook.Id)
	}
	if !verifies(t, hook.Secret, got) {
		t.Errorf("the test event does not verify with the subscription's secret")
	}

	before := time.Now()
	var rotated gen.WebhookSecret
	if err := json.Unmarshal(s.do("POST", path+"/rotate-secret", nil).wantStatus(t, http.StatusOK).body, &rotated); err != nil {
		t.Fatal(err)
	}
	if rotated.Secret == hook.Secret || webhook.CheckSecret(rotated.Secret) != nil {
		t.Fatalf("rotated secret = %q, want a new whsec_ secret", rotated.Secret)
	}
	if exp := rotated.PreviousSecretExpiresAt; exp.Before(before.Add(overlap).Add(-time.Second)) || exp.After(time.Now().Add(overlap)) {
		t.Errorf("previous_secret_expires_at = %s, want about an hour from now", exp)
	}
	_, got = test()
	if !verifies(t, hook.Secret, got) || !verifies(t, rotated.Secret, got) {
		t.Errorf("during the overlap, the test event (signatures %q) must verify with the old and the new secret", got.header.Get("webhook-signature"))
	}

	// The overlap ends (as an hour passing would end it).
	if _, err := pool.Exec(context.Background(), "UPDATE webhooks SET previous_secret_until = now() - interval '1 second'"); err != nil {
		t.Fatal(err)
	}
	_, got = test()
	if verifies(t, hook.Secret, got) || !verifies(t, rotated.Secret, got) {
		t.Errorf("after the overlap, the test event (signatures %q) must verify with the new secret only", got.header.Get("webhook-signature"))
	}

	// Any answer of the receiver is a 200 that reports it.
	rc.status.Store(http.StatusInternalServerError)
	if res, _ := test(); res.Success || res.StatusCode != http.StatusInternalServerError {
		t.Errorf("test of a failing receiver = %+v, want status 500, no success", res)
	}

	s.do("POST", "/webhooks/99999/rotate-secret", nil).wantStatus(t, http.StatusNotFound)
	s.do("POST", "/webhooks/99999/test", nil).wantStatus(t, http.StatusNotFound)
}

// A test event that gets no answer is a problem that says why, in a
// category: no connection, or an address deliveries may not reach.
func TestWebhooks_TestUnreachable(t *testing.T) {
	t.Parallel()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing := "http://" + closed.Addr().String() + "/hook"
	closed.Close()
	pool := storetest.Pool(t, storetest.NewDB(t), 2)
	hooks := store.NewWebhooks(pool)
	// Stored directly: the API would refuse a loopback URL without
	// WebhookAllowPrivate.
	w, err := hooks.Create(context.Background(), store.NewWebhook{URL: refusing, Events: []string{store.UserCreated}, Secret: webhook.NewSecret()})
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprint("/webhooks/", w.ID, "/test")
	tests := []struct {
		name         string
		allowPrivate bool
		status       int
		reason       string
	}{
		{"Refused", true, http.StatusBadGateway, webhook.FailureConnect},
		{"Blocked", false, http.StatusUnprocessableEntity, webhook.FailureBlocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServerWith(t, fakeUsers{}, server.Options{Webhooks: hooks, WebhookAllowPrivate: tt.allowPrivate})
			r := s.do("POST", path, nil)
			if p := r.problem(t); r.status != tt.status || !strings.HasSuffix(p.Detail, "got no answer: "+tt.reason) {
				t.Errorf("POST %s = %d %q, want %d ending in %q", path, r.status, p.Detail, tt.status, tt.reason)
			}
		})
	}
}

// A chosen secret must be a Standard Webhooks secret with a key of 24 to
// 64 bytes.
func TestWebhooks_SecretFormat(t *testing.T) {
	t.Parallel()
	s := newServerWith(t, fakeUsers{}, server.Options{Webhooks: fakeWebhooks{created: new(atomic.Int64)}})
	key := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	tests := []struct {
		name   string
		secret string
		ok     bool
	}{
		{"OK", "whsec_" + key(32), true},
		{"ErrKeyTooShort", "whsec_" + key(23), false}, // the pattern and length pass; the key does not
		{"ErrURLBase64", "whsec_" + base64.URLEncoding.EncodeToString(make([]byte, 29)) + "-_", false},
		{"ErrOldStyle", "a-long-enough-old-style-secret-0123456789", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do("POST", "/webhooks", map[string]any{"url": "https://example.com/hook", "events": []string{"user.created"}, "secret": tt.secret})
			if tt.ok {
				r.wantStatus(t, http.StatusCreated)
				return
			}
			if p := r.problem(t); r.status != http.StatusUnprocessableEntity || p.Errors == nil || (*p.Errors)[0].Location != "body.secret" {
				t.Errorf("POST /webhooks with secret %q = %d %s, want 422 naming body.secret", tt.secret, r.status, r.body)
			}
		})
	}
}
