package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"userapi/cache/cachetest"
	"userapi/internal/freeport"
	"userapi/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m, cachetest.StopSharedCluster) }

// syncBuffer collects a server's log while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// The whole program: serve on a port, answer, stop cleanly on cancel.
func TestRun_ServeAndShutdown(t *testing.T) {
	t.Parallel()
	addr := freeport.Addr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	vars := map[string]string{
		"USERAPI_ADDR":         addr,
		"DATABASE_URL":         storetest.NewDB(t),
		"USERAPI_DB_MIN_CONNS": "1",
		"USERAPI_DB_MAX_CONNS": "4",
		"REDIS_URL":            "off",
		"USERAPI_METRICS_ADDR": "off",
	}
	key := newKey(t, vars, "--name", "test", "--scopes", "users:write")
	go func() { done <- run(ctx, []string{"serve"}, env(vars), &logs, &logs) }()
	base := "http://" + addr
	waitReady(t, base+"/livez", done)

	r := call(t, "POST", base+"/users", `{"name":"Ada","email":"ada@example.com"}`, bearer(key)...)
	if r.status != http.StatusCreated {
		t.Errorf("POST /users = %d, want 201", r.status)
	}
	res, err := http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /health = %d, want 200", res.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run() after cancel = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run() did not return after cancel")
	}
	for _, want := range []string{`"msg":"listening"`, `"msg":"request"`, `"route":"/users"`, `"status":201`, `"caller":"` + key[:12] + `"`, `"msg":"stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	// The log names the key by its prefix only, and never shows the email.
	for _, secret := range []string{key, "ada@example.com"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log shows %q:\n%s", secret, logs.String())
		}
	}
}

// In-flight requests finish when shutdown starts.
func TestRun_GracefulShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	addr := freeport.Addr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, env(map[string]string{
			"USERAPI_ADDR": addr, "DATABASE_URL": storetest.NewDB(t), "USERAPI_DB_MIN_CONNS": "1", "USERAPI_DB_MAX_CONNS": "4",
			"REDIS_URL": "off", "USERAPI_METRICS_ADDR": "off", "USERAPI_AUTH": "off",
		}), &logs, &logs)
	}()
	base := "http://" + addr
	waitReady(t, base+"/livez", done)

	// A slow upload keeps a request in flight while shutdown begins.
	body := &slowBody{chunks: []string{`{"name":"Ada",`, `"email":"slow@example.com"}`}, delay: 300 * time.Millisecond}
	req, _ := http.NewRequest("POST", base+"/users", body)
	req.Header.Set("Content-Type", "application/json")
	result := make(chan int, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- -1
			return
		}
		res.Body.Close()
		result <- res.StatusCode
	}()
	time.Sleep(100 * time.Millisecond) // the request is now being read
	cancel()
	if got := <-result; got != http.StatusCreated {
		t.Errorf("request in flight at shutdown = %d, want 201", got)
	}
	if err := <-done; err != nil {
		t.Errorf("run() = %v", err)
	}
	// This instance runs with USERAPI_AUTH=off, which must not go unnoticed.
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"AUTHENTICATION IS OFF`) {
		t.Errorf("no warning that authentication is off:\n%s", logs.String())
	}
}

type slowBody struct {
	chunks []string
	delay  time.Duration
}

func (b *slowBody) Read(p []byte) (int, error) {
	if len(b.chunks) == 0 {
		return 0, io.EOF
	}
	time.Sleep(b.delay)
	n := copy(p, b.chunks[0])
	b.chunks = b.chunks[1:]
	return n, nil
}

func waitReady(t *testing.T, url string, done chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err // the cleanup waits for it too
			t.Fatalf("run() returned before serving: %v", err)
		default:
		}
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

func TestRun_Migrate(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	// A database that does not exist yet is created, then migrated.
	fresh := storetest.UnusedDB(t)
	err := run(context.Background(), []string{"migrate"}, env(map[string]string{"DATABASE_URL": fresh, "USERAPI_DB_MIN_CONNS": "0", "USERAPI_DB_MAX_CONNS": "2"}), &out, &out)
	if err != nil {
		t.Fatalf("run(migrate) = %v\n%s", err, out.String())
	}
	for _, want := range []string{`"migrations_applied":["0001_users.sql",`, `"0003_webhooks.sql"`, `"0005_idempotency.sql"`, `"river/001_`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("migrate log = %s, want %s applied", out.String(), want)
		}
	}
}

func TestRun_BadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"USERAPI_ADDR": "8080"}, "USERAPI_ADDR"},
		{map[string]string{"USERAPI_METRICS_ADDR": "9090"}, "USERAPI_METRICS_ADDR"},
		{map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		{map[string]string{"USERAPI_DB_MAX_CONNS": "lots"}, "USERAPI_DB_MAX_CONNS"},
		{map[string]string{"USERAPI_DB_MIN_CONNS": "20", "USERAPI_DB_MAX_CONNS": "5"}, "USERAPI_DB_MIN_CONNS"},
		{map[string]string{"USERAPI_DB_STATEMENT_TIMEOUT": "soon"}, "USERAPI_DB_STATEMENT_TIMEOUT"},
		{map[string]string{"REDIS_URL": "http://x"}, "REDIS_URL"},
		{map[string]string{"USERAPI_LOG_LEVEL": "loud"}, "USERAPI_LOG_LEVEL"},
		{map[string]string{"USERAPI_WORKERS": "-1"}, "USERAPI_WORKERS"},
		{map[string]string{"USERAPI_WEBHOOK_CONCURRENCY": "0"}, "USERAPI_WEBHOOK_CONCURRENCY"},
		{map[string]string{"USERAPI_WEBHOOK_ALLOW_PRIVATE": "maybe"}, "USERAPI_WEBHOOK_ALLOW_PRIVATE"},
		{map[string]string{"USERAPI_ADMIN_UI": "yes"}, "USERAPI_ADMIN_UI"},
		{map[string]string{"USERAPI_JOB_RESCUE_AFTER": "0s"}, "USERAPI_JOB_RESCUE_AFTER"},
		{map[string]string{"USERAPI_READ_HEADER_TIMEOUT": "0s"}, "USERAPI_READ_HEADER_TIMEOUT"},
		{map[string]string{"USERAPI_IDEMPOTENCY_TTL": "10s"}, "USERAPI_IDEMPOTENCY_TTL"},
		{map[string]string{"USERAPI_IDEMPOTENCY_TTL": "48h"}, "USERAPI_IDEMPOTENCY_TTL"},
		{map[string]string{"USERAPI_INVALIDATION_POLL": "0s"}, "USERAPI_INVALIDATION_POLL"},
	}
	for _, tt := range tests {
		err := run(context.Background(), []string{"serve"}, env(tt.env), &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.HasPrefix(err.Error(), tt.want+"=") || strings.Contains(err.Error(), "\n") {
			t.Errorf("run with %v = %v, want one line starting with %s=", tt.env, err, tt.want)
		}
	}
}

// A bad value's one line says what would do, in words, not Go's.
func TestLoadConfig_SaysWhatIsAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, value, want string }{
		{"USERAPI_LOG_LEVEL", "verbose", `USERAPI_LOG_LEVEL="verbose": must be debug, info, warn or error`},
		{"USERAPI_AUTH", "yes", `USERAPI_AUTH="yes": must be on or off (or true/false, 1/0)`},
	}
	for _, tt := range tests {
		_, err := loadConfig(env(map[string]string{tt.name: tt.value}))
		if err == nil || err.Error() != tt.want {
			t.Errorf("loadConfig(%s=%s) = %v, want %s", tt.name, tt.value, err, tt.want)
		}
	}
}

func TestRun_Help(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, env(nil), &out, &out); err != nil {
		t.Fatal(err)
	}
	want := []string{"serve", "worker", "migrate", "keys create", "keys list", "keys revoke"}
	for _, s := range settings(&config{}) {
		want = append(want, s.name, "["+s.def+"]")
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("--help lacks %s", w)
		}
	}
	if err := run(context.Background(), []string{"frobnicate"}, env(nil), &out, &out); err == nil {
		t.Error("run(frobnicate) = nil, want a usage error")
	}
}

// Every command answers --help without touching the database, and a
// group's help lists its commands.
func TestRun_CommandHelp(t *testing.T) {
	t.Parallel()
	// An unreachable database: help must not need one.
	vars := env(map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"})
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"keys", "--help"}, []string{"userapi keys create --name NAME", "userapi keys list", "userapi keys revoke PREFIX"}},
		{[]string{"keys", "-h"}, []string{"userapi keys create", "userapi keys revoke"}},
		{[]string{"keys", "create", "--help"}, []string{"userapi keys create --name NAME --scopes"}},
		{[]string{"serve", "--help"}, []string{"userapi serve [--dev-key-file PATH]"}},
		{[]string{"migrate", "-h"}, []string{"userapi migrate"}},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tt.args, vars, &stdout, &stderr)
		if err != nil {
			t.Errorf("run(%q) = %v, want help and no error", tt.args, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("run(%q) printed:\n%s\nwant it to contain %q", tt.args, stdout.String(), w)
			}
		}
	}
	for _, args := range [][]string{{"keys"}, {"keys", "rotate"}} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, vars, &stdout, &stderr)
		if err == nil || !strings.Contains(stderr.String(), "userapi keys list") {
			t.Errorf("run(%q) = %v, stderr %q; want an error and the keys commands", args, err, stderr.String())
		}
	}
}

// Origins are compared as browsers send them: without a trailing slash; `*`
// stands alone; anything with a path is refused.
func TestLoadConfig_CORSOrigins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value   string
		want    []string
		wantErr string
	}{
		{"none", nil, ""},
		{"https://app.example.com/, http://localhost:5173", []string{"https://app.example.com", "http://localhost:5173"}, ""},
		{"*", []string{"*"}, ""},
		{"*,https://app.example.com", nil, "give it alone"},
		{"https://app.example.com/app", nil, "scheme, host and port only"},
		{"app.example.com", nil, "is not an origin"},
	}
	for _, tt := range tests {
		c, err := loadConfig(env(map[string]string{"USERAPI_CORS_ORIGINS": tt.value}))
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("USERAPI_CORS_ORIGINS=%s: error %v, want one saying %q", tt.value, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || !slices.Equal(c.CORSOrigins, tt.want)):
			t.Errorf("USERAPI_CORS_ORIGINS=%s: %q, %v; want %q", tt.value, c.CORSOrigins, err, tt.want)
		}
	}
}

// Every switch takes the same spellings.
func TestLoadConfig_Switches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		want  bool
	}{
		{"on", true}, {"ON", true}, {"true", true}, {"1", true},
		{"off", false}, {"Off", false}, {"false", false}, {"0", false},
	}
	for _, tt := range tests {
		for _, name := range []string{"USERAPI_AUTH", "USERAPI_ADMIN_UI", "USERAPI_WEBHOOK_ALLOW_PRIVATE"} {
			c, err := loadConfig(env(map[string]string{name: tt.value}))
			if err != nil {
				t.Errorf("%s=%s: loadConfig() = %v, want no error", name, tt.value, err)
				continue
			}
			got := map[string]bool{"USERAPI_AUTH": c.Auth, "USERAPI_ADMIN_UI": c.AdminUI, "USERAPI_WEBHOOK_ALLOW_PRIVATE": c.WebhookAllowPrivate}[name]
			if got != tt.want {
				t.Errorf("%s=%s: got %v, want %v", name, tt.value, got, tt.want)
			}
		}
	}
}

// instance runs the whole program in-process on a free port until the test
// ends, and returns its base URL.
func instance(t *testing.T, vars map[string]string) string {
	t.Helper()
	addr := freeport.Addr(t)
	all := map[string]string{
		"USERAPI_ADDR": addr, "USERAPI_DB_MIN_CONNS": "1", "USERAPI_DB_MAX_CONNS": "4",
		"USERAPI_RATE_LIMIT": "off", "USERAPI_RATE_LIMIT_WRITES": "off",
		// Instances run in parallel: none may take the default metrics port.
		"USERAPI_METRICS_ADDR": "off",
		// API keys have tests of their own (keys_test.go).
		"USERAPI_AUTH": "off",
		// Draining has a test of its own (drain_test.go).
		"USERAPI_DRAIN_DELAY": "0s",
		// A slow Redis has a test of its own (redis_hang_test.go); on a
		// loaded machine a healthy one can miss the 50 ms default, which
		// would switch the cache off for a second under tests that read it.
		"USERAPI_REDIS_TIMEOUT": "2s",
	}
	for k, v := range vars {
		all[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, env(all), &logs, &logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("instance %s: run() = %v", addr, err)
		}
		if t.Failed() {
			t.Logf("instance %s log:\n%s", addr, logs.String())
		}
	})
	waitReady(t, "http://"+addr+"/livez", done)
	return "http://" + addr
}

type reply struct {
	status int
	header http.Header
	body   string
}

func call(t *testing.T, method, url, body string, headers ...string) reply {
	t.Helper()
	return callWith(t, http.DefaultClient, method, url, body, headers...)
}

// callWith is call on client, such as one that keeps more connections
// open for many callers at once.
func callWith(t *testing.T, client *http.Client, method, url, body string, headers ...string) reply {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return reply{res.StatusCode, res.Header, string(raw)}
}

// Two instances over one database and one Redis: a write through either is
// read through the other at once, 304s keep working from the cache, and a
// user created after a 404 is visible at once.
func TestTwoInstancesShareTheCache(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": cachetest.URL(), "USERAPI_CACHE_PREFIX": cachetest.Prefix(t)}
	a, b := instance(t, vars), instance(t, vars)

	// id 1 does not exist yet: both remember that.
	for _, base := range []string{a, b, a, b} {
		if r := call(t, "GET", base+"/users/1", ""); r.status != http.StatusNotFound {
			t.Fatalf("GET %s/users/1 before create = %d, want 404", base, r.status)
		}
	}
	if r := call(t, "POST", a+"/users", `{"name":"Ada","email":"ada@example.com"}`); r.status != http.StatusCreated || r.header.Get("Location") != "/users/1" {
		t.Fatalf("POST = %d %s, want 201 at /users/1", r.status, r.header.Get("Location"))
	}
	for _, base := range []string{b, a} {
		if r := call(t, "GET", base+"/users/1", ""); r.status != http.StatusOK {
			t.Fatalf("GET %s/users/1 right after create = %d, want 200", base, r.status)
		}
	}

	stale := 0
	defer func() {
		t.Logf("stale reads through the other instance right after a write (10 PATCHes, 1 DELETE): %d", stale)
	}()
	for i := range 10 {
		writer, reader := a, b
		if i%2 == 1 {
			writer, reader = b, a
		}
		for range 2 { // warm the reader's memory
			call(t, "GET", reader+"/users/1", "")
		}
		name := fmt.Sprintf("Ada %d", i)
		w := call(t, "PATCH", writer+"/users/1", `{"name":"`+name+`"}`)
		if w.status != http.StatusOK {
			t.Fatalf("PATCH via %s = %d %s", writer, w.status, w.body)
		}
		// The writer answers after its own memory dropped the old row.
		if r := call(t, "GET", writer+"/users/1", ""); r.header.Get("ETag") != w.header.Get("ETag") {
			t.Fatalf("GET via the writer after PATCH %d has ETag %s, want %s", i, r.header.Get("ETag"), w.header.Get("ETag"))
		}
		// The other instance drops it when Redis's push reaches it, usually
		// before the next request does. Entries live 5 minutes: a fresh read
		// within a second is the invalidation at work.
		start := time.Now()
		for {
			r := call(t, "GET", reader+"/users/1", "")
			if strings.Contains(r.body, `"name":"`+name+`"`) && r.header.Get("ETag") == w.header.Get("ETag") {
				break
			}
			stale++
			if time.Since(start) > time.Second {
				t.Fatalf("GET via the other instance a second after PATCH %d = %s (ETag %s), want name %q and ETag %s", i, r.body, r.header.Get("ETag"), name, w.header.Get("ETag"))
			}
			time.Sleep(time.Millisecond)
		}
		if nm := call(t, "GET", reader+"/users/1", "", "If-None-Match", w.header.Get("ETag")); nm.status != http.StatusNotModified {
			t.Errorf("GET with the new ETag = %d, want 304", nm.status)
		}
	}

	if r := call(t, "DELETE", b+"/users/1", ""); r.status != http.StatusNoContent {
		t.Fatalf("DELETE = %d", r.status)
	}
	// As for the PATCHes: the other instance drops its copy when Redis's
	// push reaches it; within a second, or it is not invalidation at work.
	for start := time.Now(); ; time.Sleep(time.Millisecond) {
		r := call(t, "GET", a+"/users/1", "")
		if r.status == http.StatusNotFound {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("GET via the other instance a second after DELETE = %d, want 404", r.status)
		}
		stale++
	}
}

// Redis going away makes the service degraded, never failing; it recovers
// when Redis returns.
func TestRedisOutageDegrades(t *testing.T) {
	t.Parallel()
	redis := cachetest.NewServer(t)
	base := instance(t, map[string]string{"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": redis.URL()})
	if r := call(t, "POST", base+"/users", `{"name":"Ada","email":"ada@example.com"}`); r.status != http.StatusCreated {
		t.Fatalf("POST = %d", r.status)
	}
	call(t, "GET", base+"/users/1", "")

	redis.Stop()
	for range 5 {
		if r := call(t, "GET", base+"/users/1", ""); r.status != http.StatusOK {
			t.Fatalf("GET with Redis down = %d %s, want 200", r.status, r.body)
		}
	}
	if r := call(t, "PATCH", base+"/users/1", `{"name":"Ada K"}`); r.status != http.StatusOK {
		t.Fatalf("PATCH with Redis down = %d %s, want 200", r.status, r.body)
	}
	if r := call(t, "POST", base+"/users/batch-get", `{"ids":[1,2]}`); r.status != http.StatusOK || !strings.Contains(r.body, `"missing":[2]`) {
		t.Fatalf("batch-get with Redis down = %d %s, want 200", r.status, r.body)
	}
	h := call(t, "GET", base+"/health", "")
	if h.status != http.StatusOK || !strings.Contains(h.body, `"status":"degraded"`) || !strings.Contains(h.body, `"cache":{`) {
		t.Errorf("/health with Redis down = %d %s, want 200 degraded with the cache down", h.status, h.body)
	}

	redis.Start()
	deadline := time.Now().Add(15 * time.Second)
	for {
		h = call(t, "GET", base+"/health", "")
		if strings.Contains(h.body, `"status":"ok"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health after Redis returned = %s, want ok", h.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := call(t, "GET", base+"/users/1", ""); r.status != http.StatusOK || !strings.Contains(r.body, `"name":"Ada K"`) {
		t.Errorf("GET after Redis returned = %d %s, want the name written during the outage", r.status, r.body)
	}
}

// Two instances spend from one budget per client, kept in Redis.
func TestRateLimitSharedByInstances(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": cachetest.URL(), "USERAPI_CACHE_PREFIX": cachetest.Prefix(t),
		"USERAPI_RATE_LIMIT": "10/1h",
	}
	a, b := instance(t, vars), instance(t, vars)
	count := map[int]int{}
	for i := range 30 {
		base := a
		if i%2 == 1 {
			base = b
		}
		count[call(t, "GET", base+"/users/1", "").status]++
	}
	if count[http.StatusTooManyRequests] != 20 || count[http.StatusNotFound] != 10 {
		t.Errorf("30 reads through two instances at 10/1h: %v, want 10 answered (404) and 20 × 429", count)
	}
}

// Without Redis the limiter still limits, per instance, and never fails a
// request because of it.
func TestRateLimitFallsBackToMemory(t *testing.T) {
	t.Parallel()
	redis := cachetest.NewServer(t)
	base := instance(t, map[string]string{
		"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": redis.URL(), "USERAPI_RATE_LIMIT": "5/1h",
	})
	redis.Stop()
	count := map[int]int{}
	for range 8 {
		count[call(t, "GET", base+"/users/1", "").status]++
	}
	if count[http.StatusNotFound] != 5 || count[http.StatusTooManyRequests] != 3 {
		t.Errorf("8 reads at 5/1h with Redis down: %v, want 5 answered (404) and 3 × 429, no 5xx", count)
	}
}
