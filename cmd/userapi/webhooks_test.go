package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"userapi/internal/freeport"
	"userapi/store/storetest"
)

// With the receiver down, 8 writers make 500 changes through 2 instances,
// and the subscription's secret is rotated half-way. Once the receiver is
// back, it holds every change exactly once after deduplicating by
// webhook-id. A replay from the start of the log then sends every change
// again under the same webhook-id, so that the receiver still holds each
// exactly once. Every request it got verifies, with the official library,
// under the old secret and under the new one (the overlap lasts a day).
func TestWebhooks_ReceiverDownThenBack(t *testing.T) {
	t.Parallel()
	const changes, writers = 500, 8
	vars := map[string]string{
		"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": "off",
		"USERAPI_WEBHOOK_ALLOW_PRIVATE": "on", "USERAPI_WEBHOOK_TIMEOUT": "1s",
		"USERAPI_JOB_RETRY_BACKOFF": "50ms", "USERAPI_WORKERS": "1",
	}
	instances := []string{instance(t, vars), instance(t, vars)}

	// The receiver's address is fixed now, but nothing listens there yet.
	addr := freeport.Addr(t)
	r := call(t, "POST", instances[0]+"/webhooks", `{"url":"http://`+addr+`/hook","events":["user.created","user.updated"]}`)
	var hook struct {
		ID     int64  `json:"id"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(r.body), &hook); r.status != http.StatusCreated || err != nil {
		t.Fatalf("POST /webhooks = %d %s", r.status, r.body)
	}

	var next atomic.Int64
	write := func(until int64) {
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				base := instances[w%len(instances)]
				var user int64 // the writer's last user, which its next change renames
				for k := next.Add(1) - 1; k < until; k = next.Add(1) - 1 {
					method, path, body, want := "POST", "/users", fmt.Sprintf(`{"name":"n-%d","email":"u%d@example.com"}`, k, k), http.StatusCreated
					if user != 0 {
						method, path, body, want = "PATCH", fmt.Sprint("/users/", user), fmt.Sprintf(`{"name":"n-%d"}`, k), http.StatusOK
					}
					status, got, err := send(method, base+path, body)
					if err != nil || status != want {
						t.Errorf("%s %s = %d %s %v, want %d", method, path, status, got, err, want)
						return
					}
					if user == 0 {
						var u struct{ ID int64 }
						_ = json.Unmarshal([]byte(got), &u)
						user = u.ID
					} else {
						user = 0
					}
				}
			})
		}
		wg.Wait()
		next.Store(until) // the writers overshot by one each
	}
	write(changes / 2)
	r = call(t, "POST", fmt.Sprint(instances[1], "/webhooks/", hook.ID, "/rotate-secret"), "")
	var rotated struct{ Secret string }
	if err := json.Unmarshal([]byte(r.body), &rotated); r.status != http.StatusOK || err != nil {
		t.Fatalf("rotate-secret = %d %s", r.status, r.body)
	}
	write(changes)
	if t.Failed() {
		t.FailNow()
	}
	old, err := standardwebhooks.NewWebhook(hook.Secret)
	if err != nil {
		t.Fatal(err)
	}
	current, err := standardwebhooks.NewWebhook(rotated.Secret)
	if err != nil {
		t.Fatal(err)
	}

	// The receiver comes back.
	var mu sync.Mutex
	names := map[string]string{} // webhook-id → the change's name
	sent := map[string]int{}     // webhook-id → requests that carried it
	requests, unverified := 0, 0
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Data struct{ Name string } `json:"data"`
		}
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		defer mu.Unlock()
		requests++
		if old.Verify(body, r.Header) != nil || current.Verify(body, r.Header) != nil {
			unverified++
		}
		names[r.Header.Get("webhook-id")] = ev.Data.Name
		sent[r.Header.Get("webhook-id")]++
	})}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	defer srv.Close()

	// waitFor waits, boundedly, until the receiver has got enough.
	waitFor := func(enough func() bool) {
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			mu.Lock()
			done := enough()
			mu.Unlock()
			if done {
				return
			}
		}
	}
	// check says whether the receiver holds every change under exactly one
	// webhook-id, all requests verifying.
	check := func(when string) {
		mu.Lock()
		defer mu.Unlock()
		seen := map[string]int{}
		for _, name := range names {
			seen[name]++
		}
		for k := range changes {
			if name := fmt.Sprint("n-", k); seen[name] != 1 {
				t.Errorf("%s: change %s arrived under %d webhook-ids, want 1", when, name, seen[name])
			}
		}
		if len(names) != changes || unverified != 0 {
			t.Errorf("%s: receiver got %d requests with %d webhook-ids, %d of them not verifying with both secrets; want %d ids, all verifying",
				when, requests, len(names), unverified, changes)
		}
	}
	waitFor(func() bool { return len(names) >= changes })
	check("receiver back")
	mu.Lock()
	before := requests
	mu.Unlock()
	t.Logf("%d changes arrived in %d requests", changes, before)
	// The receiver was really down: attempts failed before it came back
	// (read before the replay, whose attempts would fill the page).
	r = call(t, "GET", fmt.Sprint(instances[0], "/webhooks/", hook.ID, "/deliveries?limit=1000"), "")
	if !strings.Contains(r.body, `"error":"connection failed"`) {
		t.Errorf("the delivery log has no failed attempt: %.300s", r.body)
	}

	r = call(t, "POST", fmt.Sprint(instances[1], "/webhooks/", hook.ID, "/replay"), `{"after":0}`)
	var replay struct{ Queued int }
	if err := json.Unmarshal([]byte(r.body), &replay); r.status != http.StatusAccepted || err != nil || replay.Queued != changes {
		t.Fatalf("replay = %d %s, want 202 with %d queued", r.status, r.body, changes)
	}
	waitFor(func() bool { return requests-before >= changes })
	check("after the replay")
	mu.Lock()
	defer mu.Unlock()
	// Each change came again under its webhook-id: the replay re-sent all.
	for id, n := range sent {
		if n < 2 {
			t.Errorf("webhook-id %s (%s) arrived %d times, want it again from the replay", id, names[id], n)
		}
	}
	if dup := requests - len(names); dup < changes {
		t.Errorf("receiver got %d duplicate webhook-ids, want at least %d from the replay", dup, changes)
	}
	t.Logf("after the replay: %d requests, %d webhook-ids", requests, len(names))
}

// send makes one request, for goroutines that may not stop the test.
func send(method, url, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, string(raw), err
}
