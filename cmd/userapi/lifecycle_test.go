package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"userapi/cache/cachetest"
	"userapi/store/storetest"
)

// lifecycleOp is one request a user's lifecycle table tries in each state.
type lifecycleOp struct {
	name, method, path, body string
	// ifMatch: the request honours If-Match.
	ifMatch bool
}

var lifecycleOps = []lifecycleOp{
	{"get", "GET", "", "", false},
	{"get show_deleted", "GET", "?show_deleted=true", "", false},
	{"put", "PUT", "", `{"name":"Renamed","email":"%s"}`, true},
	{"patch", "PATCH", "", `{"name":"Renamed"}`, true},
	{"suspend", "POST", "/suspend", "", true},
	{"reactivate", "POST", "/reactivate", "", true},
	{"undelete", "POST", "/undelete", "", true},
	{"delete", "DELETE", "", "", true},
	{"purge", "DELETE", "?purge=true", "", true},
}

// lifecycleWant is what an operation answers in a state: its status, its
// problem type (for an error), the state the user is in after it ("purged"
// when it is gone), and the event it records ("" for none).
type lifecycleWant struct {
	status  int
	problem string
	after   string
	event   string
}

// Every lifecycle operation in every state, through one instance with
// If-Match: its status and problem type, the state it leaves, its event,
// and the other instance reading the new state (its cache dropped) within a
// second. Each operation that takes If-Match refuses a stale ETag with 412
// first, changing nothing.
func TestLifecycle_Transitions(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": cachetest.URL(), "USERAPI_CACHE_PREFIX": cachetest.Prefix(t)}
	a, b := instance(t, vars), instance(t, vars)

	const (
		ok, gone, conflict              = http.StatusOK, http.StatusNotFound, http.StatusConflict
		notFound, suspended, wrongState = "/problems/not-found", "/problems/user-suspended", "/problems/state-conflict"
	)
	table := map[string]map[string]lifecycleWant{
		"active": {
			"get": {ok, "", "active", ""}, "get show_deleted": {ok, "", "active", ""},
			"put": {ok, "", "active", "user.updated"}, "patch": {ok, "", "active", "user.updated"},
			"suspend": {ok, "", "suspended", "user.suspended"}, "reactivate": {ok, "", "active", ""},
			"undelete": {ok, "", "active", ""}, "delete": {http.StatusNoContent, "", "deleted", "user.deleted"},
			"purge": {http.StatusNoContent, "", "purged", "user.purged"},
		},
		"suspended": {
			"get": {ok, "", "suspended", ""}, "get show_deleted": {ok, "", "suspended", ""},
			"put": {conflict, suspended, "suspended", ""}, "patch": {conflict, suspended, "suspended", ""},
			"suspend": {ok, "", "suspended", ""}, "reactivate": {ok, "", "active", "user.reactivated"},
			"undelete": {conflict, wrongState, "suspended", ""}, "delete": {http.StatusNoContent, "", "deleted", "user.deleted"},
			"purge": {http.StatusNoContent, "", "purged", "user.purged"},
		},
		"deleted": {
			"get": {gone, notFound, "deleted", ""}, "get show_deleted": {ok, "", "deleted", ""},
			"put": {gone, notFound, "deleted", ""}, "patch": {gone, notFound, "deleted", ""},
			"suspend": {conflict, wrongState, "deleted", ""}, "reactivate": {conflict, wrongState, "deleted", ""},
			"undelete": {ok, "", "active", "user.undeleted"}, "delete": {gone, notFound, "deleted", ""},
			"purge": {http.StatusNoContent, "", "purged", "user.purged"},
		},
		"purged": {},
	}
	for _, op := range lifecycleOps {
		table["purged"][op.name] = lifecycleWant{gone, notFound, "purged", ""}
	}
	// How a user created active reaches each state, and the events it has
	// then.
	reach := map[string][]string{"active": nil, "suspended": {"/suspend"}, "deleted": {""}, "purged": {"?purge=true"}}
	reached := map[string][]string{
		"active": {"user.created"}, "suspended": {"user.created", "user.suspended"},
		"deleted": {"user.created", "user.deleted"}, "purged": {"user.created", "user.purged"},
	}

	n := 0
	for _, from := range []string{"active", "suspended", "deleted", "purged"} {
		for _, op := range lifecycleOps {
			want := table[from][op.name]
			n++
			email := fmt.Sprintf("u%d@example.com", n)
			id := createUser(t, a, email)
			user := fmt.Sprint("/users/", id)
			for _, step := range reach[from] {
				method := "POST"
				if step == "" || step[0] == '?' {
					method = "DELETE"
				}
				if r := call(t, method, a+user+step, ""); r.status >= 300 {
					t.Fatalf("%s %s%s = %d %s", method, user, step, r.status, r.body)
				}
			}
			etag := ""
			for _, base := range []string{a, b} { // warm both caches
				r := call(t, "GET", base+user+"?show_deleted=true", "")
				etag = r.header.Get("ETag")
			}
			events := reached[from]
			body := strings.ReplaceAll(op.body, "%s", email)
			name := from + " " + op.name
			if op.ifMatch && want.status < 300 {
				r := call(t, op.method, a+user+op.path, body, "If-Match", `"999"`)
				if r.status != http.StatusPreconditionFailed {
					t.Errorf("%s with a stale If-Match = %d %s, want 412", name, r.status, r.body)
				}
			}
			headers := []string{}
			if op.ifMatch && etag != "" {
				headers = []string{"If-Match", etag}
			}
			r := call(t, op.method, a+user+op.path, body, headers...)
			if r.status != want.status || problemType(r.body) != want.problem {
				t.Errorf("%s = %d %s, want %d %s", name, r.status, r.body, want.status, want.problem)
				continue
			}
			if want.status >= 300 && r.status == http.StatusConflict && !namesState(r.body, from) {
				t.Errorf("%s: detail %s does not name the state %s", name, r.body, from)
			}
			// The other instance reads the state left, within a second.
			seen := awaitState(t, b, id, want.after, r.header.Get("ETag"))
			if seen != want.after {
				t.Errorf("%s: the other instance reads %s a second later, want %s", name, seen, want.after)
			}
			wantEvents := append(slices.Clone(events), want.event)
			if want.event == "" {
				wantEvents = events
			}
			if got := eventTypes(t, a, id, len(wantEvents)); !slices.Equal(got, wantEvents) {
				t.Errorf("%s: events %v, want %v", name, got, wantEvents)
			}
		}
	}
}

// createUser creates a user through base and returns its id.
func createUser(t *testing.T, base, email string) int64 {
	t.Helper()
	r := call(t, "POST", base+"/users", `{"name":"Ada","email":"`+email+`"}`)
	var u struct{ ID int64 }
	if err := json.Unmarshal([]byte(r.body), &u); r.status != http.StatusCreated || err != nil {
		t.Fatalf("POST /users = %d %s", r.status, r.body)
	}
	return u.ID
}

func problemType(body string) string {
	var p struct{ Type string }
	_ = json.Unmarshal([]byte(body), &p)
	return p.Type
}

// namesState reports whether a problem's detail names the user's state.
func namesState(body, state string) bool {
	var p struct{ Detail string }
	_ = json.Unmarshal([]byte(body), &p)
	return strings.Contains(p.Detail, " is "+state)
}

// awaitState reads the user through base (show_deleted=true) until it is
// in state want ("purged": not found) with etag (when not empty), for at
// most a second, and returns the state last read.
func awaitState(t *testing.T, base string, id int64, want, etag string) string {
	t.Helper()
	seen := ""
	for start := time.Now(); time.Since(start) < time.Second; time.Sleep(time.Millisecond) {
		r := call(t, "GET", fmt.Sprint(base, "/users/", id, "?show_deleted=true"), "")
		var u struct{ State string }
		switch {
		case r.status == http.StatusNotFound:
			seen = "purged"
		case json.Unmarshal([]byte(r.body), &u) == nil:
			seen = u.State
		}
		if seen == want && (etag == "" || r.header.Get("ETag") == etag) {
			return seen
		}
	}
	return seen
}

// eventTypes lists the types of the user's events through base, reading
// again for up to 30 seconds until there are at least want: an event
// becomes visible once every transaction older than it has ended, on the
// whole PostgreSQL server.
func eventTypes(t *testing.T, base string, id int64, want int) []string {
	t.Helper()
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		r := call(t, "GET", fmt.Sprint(base, "/events?user_id=", id, "&limit=100"), "")
		var page struct {
			Items []struct{ Type string }
		}
		if err := json.Unmarshal([]byte(r.body), &page); r.status != http.StatusOK || err != nil {
			t.Fatalf("GET /events = %d %s", r.status, r.body)
		}
		var types []string
		for _, ev := range page.Items {
			types = append(types, ev.Type)
		}
		if len(types) >= want || time.Since(start) > 30*time.Second {
			return types
		}
	}
}
