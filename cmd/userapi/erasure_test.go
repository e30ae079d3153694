package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/rueidis"

	"userapi/cache/cachetest"
	"userapi/internal/freeport"
	"userapi/store/storetest"
)

// A user with webhook subscriptions in place (one answered, one whose
// receiver is down, so its deliveries stay queued) is created with an
// Idempotency-Key, renamed, given another address, suspended, reactivated,
// deleted, undeleted and read through two instances sharing a Redis. After
// DELETE ?purge=true, no table of the database (every column, as text and
// bytea as hex) and no key or value in Redis holds any of its names or
// addresses; before it, the same scan finds them, so the scan can see them.
func TestErasure_PurgeLeavesNoPersonalData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := storetest.NewDB(t)
	redis := cachetest.NewServer(t)
	var mu sync.Mutex
	delivered := map[string]int{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		for _, typ := range []string{"user.created", "user.updated", "user.suspended", "user.reactivated", "user.deleted", "user.undeleted", "user.purged"} {
			if strings.Contains(string(body), `"type":"`+typ+`"`) {
				delivered[typ]++
			}
		}
	}))
	t.Cleanup(receiver.Close)
	vars := map[string]string{
		"DATABASE_URL": dbURL, "REDIS_URL": redis.URL(),
		"USERAPI_WEBHOOK_ALLOW_PRIVATE": "on", "USERAPI_WEBHOOK_TIMEOUT": "1s", "USERAPI_WORKERS": "1",
	}
	a, b := instance(t, vars), instance(t, vars)
	all := `["user.created","user.updated","user.suspended","user.reactivated","user.deleted","user.undeleted","user.purged"]`
	for _, url := range []string{receiver.URL + "/hook", "http://" + freeport.Addr(t) + "/down"} {
		if r := call(t, "POST", a+"/webhooks", `{"url":"`+url+`","events":`+all+`}`); r.status != http.StatusCreated {
			t.Fatalf("POST /webhooks = %d %s", r.status, r.body)
		}
	}

	personal := []string{"Erasmus Quill", "erasmus.quill@example.com", "Erasmus Q. Quill", "e.quill@example.org"}
	r := call(t, "POST", a+"/users", `{"name":"Erasmus Quill","email":"erasmus.quill@example.com"}`, "Idempotency-Key", "erasure-test")
	if r.status != http.StatusCreated {
		t.Fatalf("POST /users = %d %s", r.status, r.body)
	}
	user := r.header.Get("Location")
	steps := []struct{ method, path, body string }{
		{"PATCH", "", `{"name":"Erasmus Q. Quill"}`},
		{"PUT", "", `{"name":"Erasmus Q. Quill","email":"e.quill@example.org"}`},
		{"POST", "/suspend", ""}, {"POST", "/reactivate", ""},
		{"DELETE", "", ""}, {"POST", "/undelete", ""},
	}
	for _, s := range steps {
		if r := call(t, s.method, a+user+s.path, s.body); r.status >= 300 {
			t.Fatalf("%s %s%s = %d %s", s.method, user, s.path, r.status, r.body)
		}
		for _, base := range []string{a, b} { // the cache on both instances
			call(t, "GET", base+user, "")
		}
	}
	// Every change reached the receiver: no delivery is in flight.
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := 0
		for _, c := range delivered {
			n += c
		}
		mu.Unlock()
		if n >= 1+len(steps) {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("the receiver got %d deliveries in 20 s, want %d", n, 1+len(steps))
		}
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	rdb := cachetest.Client(t, redis.URL())
	before := append(scanDatabase(t, conn, personal), scanRedis(t, rdb, personal)...)
	t.Logf("before the purge, %d finds of personal data in rows and Redis keys", len(before))
	for _, want := range []string{"users", "events", "river_job", "idempotency_keys", "redis"} {
		if !strings.Contains(strings.Join(before, "\n"), want) {
			t.Errorf("before the purge, the scan finds no personal data in %s: %q", want, before)
		}
	}

	if r := call(t, "DELETE", b+user+"?purge=true", ""); r.status != http.StatusNoContent {
		t.Fatalf("DELETE %s?purge=true = %d %s", user, r.status, r.body)
	}
	for _, base := range []string{a, b} {
		if r := call(t, "GET", base+user+"?show_deleted=true", ""); r.status != http.StatusNotFound {
			t.Errorf("GET %s%s after the purge = %d, want 404", base, user, r.status)
		}
	}
	if found := append(scanDatabase(t, conn, personal), scanRedis(t, rdb, personal)...); len(found) > 0 {
		t.Errorf("after the purge, personal data remains:\n%s", strings.Join(found, "\n"))
	}
	// Each change, the purge included, reached the subscriber as a webhook.
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		got := fmt.Sprint(delivered)
		complete := delivered["user.purged"] > 0
		mu.Unlock()
		if complete {
			// At least once each: a delivery may repeat.
			want := map[string]int{"user.created": 1, "user.updated": 2, "user.suspended": 1, "user.reactivated": 1, "user.deleted": 1, "user.undeleted": 1}
			mu.Lock()
			for typ, n := range want {
				if delivered[typ] < n {
					t.Errorf("deliveries by type %s, want at least %v", got, want)
					break
				}
			}
			mu.Unlock()
			return
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("no user.purged delivery in 20 s; deliveries by type %s", got)
		}
	}
}

// scanDatabase names every row of every table that holds one of the
// strings, in any column, as text or (bytea) hex, ignoring case.
func scanDatabase(t *testing.T, conn *pgx.Conn, strs []string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 5 {
		t.Fatalf("tables %v, %v", tables, err)
	}
	var found []string
	for _, table := range tables {
		for _, s := range strs {
			var rowsFound []string
			rows, err := conn.Query(ctx, "SELECT t::text FROM "+table+" t WHERE strpos(lower(t::text), lower($1)) > 0 OR strpos(t::text, $2) > 0",
				s, hex.EncodeToString([]byte(s)))
			if err == nil {
				rowsFound, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
			if err != nil {
				t.Fatalf("scan %s: %v", table, err)
			}
			for _, row := range rowsFound {
				found = append(found, fmt.Sprintf("%s holds %q: %.300s", table, s, row))
			}
		}
	}
	return found
}

// scanRedis names every key of the Redis whose name or value holds one of
// the strings, ignoring case.
func scanRedis(t *testing.T, rdb rueidis.Client, strs []string) []string {
	t.Helper()
	ctx := context.Background()
	var found []string
	var cursor uint64
	for {
		res, err := rdb.Do(ctx, rdb.B().Scan().Cursor(cursor).Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range res.Elements {
			text := key + " " + redisValue(t, rdb, key)
			for _, s := range strs {
				if strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
					found = append(found, fmt.Sprintf("redis key %s holds %q: %.300s", key, s, text))
				}
			}
		}
		if cursor = res.Cursor; cursor == 0 {
			return found
		}
	}
}

// redisValue is a key's value as text, whatever its type.
func redisValue(t *testing.T, rdb rueidis.Client, key string) string {
	t.Helper()
	ctx := context.Background()
	typ, err := rdb.Do(ctx, rdb.B().Type().Key(key).Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	var cmd rueidis.Completed
	switch typ {
	case "string":
		cmd = rdb.B().Get().Key(key).Build()
	case "hash":
		cmd = rdb.B().Hgetall().Key(key).Build()
	case "list":
		cmd = rdb.B().Lrange().Key(key).Start(0).Stop(-1).Build()
	case "set":
		cmd = rdb.B().Smembers().Key(key).Build()
	case "zset":
		cmd = rdb.B().Zrange().Key(key).Min("0").Max("-1").Build()
	case "stream":
		cmd = rdb.B().Xrange().Key(key).Start("-").End("+").Build()
	default:
		return typ
	}
	v, err := rdb.Do(ctx, cmd).ToAny()
	if err != nil && !rueidis.IsRedisNil(err) {
		t.Fatalf("read %s (%s): %v", key, typ, err)
	}
	return fmt.Sprint(v)
}
