package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"userapi/cache/cachetest"
	"userapi/store/storetest"
)

// Two instances with DATABASE_URL through PgBouncer in transaction pooling
// mode (fewer server connections than the instances' pools hold) and
// DATABASE_DIRECT_URL to PostgreSQL: they migrate, and concurrent callers
// go through every kind of request (idempotent creates, reads through the
// other instance, conditional updates, lists, search, export, batch reads,
// jobs, deletes) without an error.
func TestPgBouncer_TransactionPooling(t *testing.T) {
	t.Parallel()
	bouncer := storetest.NewPgBouncer(t, 3)
	direct := storetest.NewDB(t)
	vars := map[string]string{
		"DATABASE_URL": bouncer.Via(direct), "DATABASE_DIRECT_URL": direct,
		"REDIS_URL": cachetest.URL(), "USERAPI_CACHE_PREFIX": cachetest.Prefix(t),
		"USERAPI_DB_MAX_CONNS": "6", "USERAPI_WORKERS": "2", "USERAPI_PROCESS_DELAY": "10ms",
	}
	bases := []string{instance(t, vars), instance(t, vars)}

	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			a, b := bases[w%2], bases[(w+1)%2]
			for i := range 5 {
				if !callerRound(t, a, b, fmt.Sprintf("w%d-%d", w, i)) {
					return
				}
			}
		})
	}
	wg.Wait()
}

// callerRound runs one caller's requests, writing through a and reading
// through b; false when one failed (reported with t.Errorf).
func callerRound(t *testing.T, a, b, tag string) bool {
	expect := func(r reply, want int, what string) bool {
		if r.status != want {
			t.Errorf("%s = %d %s, want %d", what, r.status, r.body, want)
			return false
		}
		return true
	}
	body := fmt.Sprintf(`{"name":"Bouncer %s","email":"%s@example.com"}`, tag, tag)
	created := call(t, "POST", a+"/users", body, "Idempotency-Key", tag)
	if !expect(created, http.StatusCreated, "POST /users") {
		return false
	}
	if again := call(t, "POST", a+"/users", body, "Idempotency-Key", tag); !expect(again, http.StatusCreated, "POST /users replayed") || again.body != created.body {
		t.Errorf("replay of POST /users: %s, want %s", again.body, created.body)
		return false
	}
	var u struct{ ID int64 }
	if err := json.Unmarshal([]byte(created.body), &u); err != nil {
		t.Error(err)
		return false
	}
	path := fmt.Sprintf("/users/%d", u.ID)
	got := call(t, "GET", b+path, "")
	if !expect(got, http.StatusOK, "GET "+path) {
		return false
	}
	patched := call(t, "PATCH", a+path, `{"name":"Renamed `+tag+`"}`, "If-Match", got.header.Get("ETag"))
	if !expect(patched, http.StatusOK, "PATCH "+path) {
		return false
	}
	if r := call(t, "GET", b+path, ""); !expect(r, http.StatusOK, "GET "+path) || !strings.Contains(r.body, "Renamed "+tag) {
		t.Errorf("GET %s after the update: %s", path, r.body)
		return false
	}
	checks := []struct {
		method, path, body, want string
	}{
		{"GET", "/users?limit=5&count=exact", "", `"items"`},
		{"GET", "/users?q=renamed+" + tag, "", tag},
		{"GET", "/users/export?format=ndjson&q=" + tag, "", tag},
		{"POST", "/users/batch-get", fmt.Sprintf(`{"ids":[%d]}`, u.ID), tag},
	}
	for _, c := range checks {
		if r := call(t, c.method, b+c.path, c.body); !expect(r, http.StatusOK, c.method+" "+c.path) || !strings.Contains(r.body, c.want) {
			t.Errorf("%s %s: %s, want it to contain %q", c.method, c.path, r.body, c.want)
			return false
		}
	}
	waitJobState(t, b, jobID(t, call(t, "POST", a+path+"/process", "")), "completed", 15*time.Second)
	if !expect(call(t, "DELETE", a+path, ""), http.StatusNoContent, "DELETE "+path) {
		return false
	}
	// The other instance learns of the delete from Redis's invalidation
	// push, which may come just after its next read: within a second.
	var r reply
	for start := time.Now(); time.Since(start) < time.Second; time.Sleep(20 * time.Millisecond) {
		if r = call(t, "GET", b+path, ""); r.status == http.StatusNotFound {
			break
		}
	}
	return expect(r, http.StatusNotFound, "GET "+path+" a second after DELETE")
}
