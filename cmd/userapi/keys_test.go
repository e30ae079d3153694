package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"userapi/cache/cachetest"
	"userapi/internal/freeport"
	"userapi/store/storetest"
)

// keysCmd runs `userapi keys args...` against vars and returns its stdout.
func keysCmd(t *testing.T, vars map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"keys"}, args...), env(vars), &stdout, &stderr)
	if err != nil {
		t.Logf("userapi keys %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), err
}

func newKey(t *testing.T, vars map[string]string, args ...string) string {
	t.Helper()
	out, err := keysCmd(t, vars, append([]string{"create"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(key, "uak_") {
		t.Fatalf("keys create printed %q, want the key alone on one line", out)
	}
	return key
}

func bearer(key string) []string { return []string{"Authorization", "Bearer " + key} }

// forge returns key with its last character changed.
func forge(key string) string {
	last := "A"
	if strings.HasSuffix(key, "A") {
		last = "B"
	}
	return key[:len(key)-1] + last
}

// The whole life of a key, through two instances sharing PostgreSQL and
// Redis (a single server, or a cluster): it works on both, a missing scope
// is 403, and a revocation through the command line reaches both within a
// second.
func TestKeys_LifecycleAcrossInstances(t *testing.T) {
	t.Parallel()
	cachetest.OnEachDeployment(t, func(t *testing.T, url string) {
		vars := map[string]string{
			"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": url, "USERAPI_CACHE_PREFIX": cachetest.Prefix(t),
			"USERAPI_DB_MIN_CONNS": "0", "USERAPI_DB_MAX_CONNS": "2", "USERAPI_AUTH": "on",
		}
		writer := newKey(t, vars, "--name", "billing", "--scopes", "users:read,users:write")
		reader := newKey(t, vars, "--name", "reports", "--scopes", "users:read", "--expires", "90d")
		a, b := instance(t, vars), instance(t, vars)

		if r := call(t, "GET", a+"/users", ""); r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != `Bearer realm="userapi"` {
			t.Fatalf("GET /users without a key = %d %q, want 401 with WWW-Authenticate", r.status, r.header.Get("WWW-Authenticate"))
		}
		if r := call(t, "POST", a+"/users", `{"name":"Ada","email":"ada@example.com"}`, bearer(writer)...); r.status != http.StatusCreated {
			t.Fatalf("POST /users with the writer key = %d %s", r.status, r.body)
		}
		r := call(t, "POST", a+"/users", `{"name":"Bob","email":"bob@example.com"}`, bearer(reader)...)
		if r.status != http.StatusForbidden || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="insufficient_scope", scope="users:write"`) {
			t.Fatalf("POST /users with a read-only key = %d %q %s, want 403 insufficient_scope", r.status, r.header.Get("WWW-Authenticate"), r.body)
		}
		for _, base := range []string{a, b} {
			for range 3 { // the later reads come from each instance's memory
				if r := call(t, "GET", base+"/users/1", "", bearer(reader)...); r.status != http.StatusOK {
					t.Fatalf("GET %s/users/1 with the reader key = %d %s", base, r.status, r.body)
				}
			}
		}
		if r := call(t, "GET", a+"/jobs/1", "", bearer(reader)...); r.status != http.StatusForbidden {
			t.Errorf("GET /jobs/1 with users:read only = %d, want 403", r.status)
		}

		list, err := keysCmd(t, vars, "list")
		if err != nil {
			t.Fatal(err)
		}
		readerPrefix := reader[:12]
		for _, want := range []string{writer[:12], readerPrefix, "billing", "reports", "users:read,users:write"} {
			if !strings.Contains(list, want) {
				t.Errorf("keys list lacks %q:\n%s", want, list)
			}
		}
		if strings.Contains(list, reader) || strings.Contains(list, writer) {
			t.Errorf("keys list shows a whole key:\n%s", list)
		}

		if _, err := keysCmd(t, vars, "revoke", readerPrefix); err != nil {
			t.Fatal(err)
		}
		revoked := time.Now()
		for _, base := range []string{a, b} {
			for {
				r := call(t, "GET", base+"/users/1", "", bearer(reader)...)
				if r.status == http.StatusUnauthorized {
					if !strings.Contains(r.body, "revoked") || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
						t.Errorf("revoked key: %q %s", r.header.Get("WWW-Authenticate"), r.body)
					}
					break
				}
				if r.status != http.StatusOK {
					t.Fatalf("GET with the revoked key = %d %s", r.status, r.body)
				}
				if time.Since(revoked) > time.Second {
					t.Fatalf("%s still accepts the key a second after its revocation", base)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		t.Logf("revocation seen by both instances %v after the command returned", time.Since(revoked))
		if r := call(t, "GET", b+"/users/1", "", bearer(writer)...); r.status != http.StatusOK {
			t.Errorf("the other key stopped working: %d", r.status)
		}
		if list, _ := keysCmd(t, vars, "list"); !strings.Contains(list, "revoked") {
			t.Errorf("keys list does not show the revocation:\n%s", list)
		}
	})
}

// A key revoked while Redis is down stays refused when Redis comes back
// with the key's old record: the revocation was recorded in the database,
// and each instance applies it before trusting Redis again. Redis comes
// back from disk, or, in a cluster, as the replica promoted in place of the
// primary that held the record.
func TestKeys_RevokedWhileRedisDown(t *testing.T) {
	t.Parallel()
	record := func(key string) string { return "userapi:apikey:" + key[:12] }
	for _, d := range []struct {
		name  string
		start func(t *testing.T) keyOutage
	}{
		{"persistent restart", func(t *testing.T) keyOutage {
			redis := cachetest.NewPersistentServer(t)
			return keyOutage{redis.URL(), func(string) { redis.Stop() }, func(string) { redis.Start() }}
		}},
		{"cluster failover", func(t *testing.T) keyOutage {
			cluster := cachetest.NewCluster(t)
			return keyOutage{cluster.URL(),
				func(key string) {
					primary := cluster.PrimaryOf(t, record(key))
					cluster.WaitReplicated(t, primary)
					primary.Stop()
				},
				func(key string) { cluster.WaitServed(t, record(key)) }}
		}},
	} {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			testRevokedWhileRedisDown(t, d.start(t), record)
		})
	}
}

// keyOutage is a Redis at url that down takes away from the record of one
// API key, and up brings back with the record as it was.
type keyOutage struct {
	url      string
	down, up func(key string)
}

func testRevokedWhileRedisDown(t *testing.T, redis keyOutage, record func(key string) string) {
	vars := map[string]string{
		"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": redis.url, "USERAPI_CACHE_PREFIX": "userapi:",
		"USERAPI_DB_MIN_CONNS": "0", "USERAPI_DB_MAX_CONNS": "2", "USERAPI_AUTH": "on",
	}
	key := newKey(t, vars, "--name", "reports", "--scopes", "users:read")
	a, b := instance(t, vars), instance(t, vars)
	for _, base := range []string{a, b} {
		for range 3 { // in Redis, and in each instance's memory
			if r := call(t, "GET", base+"/users", "", bearer(key)...); r.status != http.StatusOK {
				t.Fatalf("GET %s/users = %d %s", base, r.status, r.body)
			}
		}
	}

	redis.down(key)
	if _, err := keysCmd(t, vars, "revoke", key[:12]); err != nil {
		t.Fatal(err)
	}
	refused := func(base string) bool {
		t.Helper()
		r := call(t, "GET", base+"/users", "", bearer(key)...)
		return r.status == http.StatusUnauthorized && strings.Contains(r.body, "revoked")
	}
	for _, base := range []string{a, b} {
		// At most until the instance notices Redis is gone and checks
		// keys in the database.
		for deadline := time.Now().Add(10 * time.Second); !refused(base); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s accepts the key revoked while Redis was down", base)
			}
		}
	}

	redis.up(key) // with the key's record from before the revocation
	entry := cachetest.Client(t, redis.url)
	cachedRevoked := func() bool {
		v, _ := entry.Do(context.Background(), entry.B().Get().Key(record(key)).Build()).ToString()
		return strings.Contains(v, `"RevokedAt":"`) && !strings.Contains(v, `"RevokedAt":"0001-`)
	}
	// Until an instance has cached the revoked record, which it does once
	// it trusts Redis again, and a few requests more.
	for deadline, after := time.Now().Add(15*time.Second), 0; after < 5; time.Sleep(10 * time.Millisecond) {
		for _, base := range []string{a, b} {
			if !refused(base) {
				t.Fatalf("%s accepts the revoked key after Redis came back", base)
			}
		}
		if cachedRevoked() {
			after++
		}
		if time.Now().After(deadline) {
			t.Fatal("no instance cached the revoked record within 15s of Redis returning")
		}
	}
}

// Refusals name what is wrong, and a key that expired or never existed is
// refused like any other bad key.
func TestKeys_BadKeys(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": cachetest.URL(), "USERAPI_CACHE_PREFIX": cachetest.Prefix(t),
		"USERAPI_DB_MIN_CONNS": "0", "USERAPI_DB_MAX_CONNS": "2", "USERAPI_AUTH": "on",
	}
	short := newKey(t, vars, "--name", "short", "--scopes", "admin", "--expires", "1s")
	expired := time.Now().Add(time.Second)
	base := instance(t, vars)
	time.Sleep(time.Until(expired))
	forged := forge(short)
	for _, tt := range []struct{ name, header, detail string }{
		{"expired", "Bearer " + short, "expired"},
		{"wrong secret", "Bearer " + forged, "not valid"},
		{"unknown prefix", "Bearer uak_aaaaaaaa_" + strings.Repeat("x", 43), "not valid"},
		{"not a key", "Bearer hunter2", "malformed"},
		{"basic auth", "Basic dXNlcjpwYXNz", "Bearer"},
	} {
		r := call(t, "GET", base+"/users", "", "Authorization", tt.header)
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, tt.detail) || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %q %s, want 401 saying %q", tt.name, r.status, r.header.Get("WWW-Authenticate"), r.body, tt.detail)
		}
	}
	// Public routes need no key, and ignore a bad one.
	for _, path := range []string{"/livez", "/health", "/openapi.yaml"} {
		if r := call(t, "GET", base+path, "", "Authorization", "Bearer nonsense"); r.status != http.StatusOK {
			t.Errorf("GET %s with a bad key = %d, want 200", path, r.status)
		}
	}
}

// The limiter counts per key: one key spending its budget leaves another's
// alone, even from the same address.
func TestKeys_RateLimitPerKey(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": cachetest.URL(), "USERAPI_CACHE_PREFIX": cachetest.Prefix(t),
		"USERAPI_DB_MIN_CONNS": "0", "USERAPI_DB_MAX_CONNS": "2", "USERAPI_AUTH": "on", "USERAPI_RATE_LIMIT": "3/1h",
	}
	first := newKey(t, vars, "--name", "first", "--scopes", "users:read")
	second := newKey(t, vars, "--name", "second", "--scopes", "users:read")
	base := instance(t, vars)
	for i := range 4 {
		r := call(t, "GET", base+"/users", "", bearer(first)...)
		if want := map[bool]int{true: 200, false: 429}[i < 3]; r.status != want {
			t.Fatalf("first key, request %d = %d, want %d", i+1, r.status, want)
		}
	}
	if r := call(t, "GET", base+"/users", "", bearer(second)...); r.status != http.StatusOK || r.header.Get("RateLimit-Remaining") != "2" {
		t.Errorf("second key = %d, RateLimit-Remaining %q; want 200 and 2", r.status, r.header.Get("RateLimit-Remaining"))
	}
}

// serveOnce runs `userapi serve args...` until it answers, stops it, and
// returns what it wrote on stderr.
func serveOnce(t *testing.T, vars map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), env(vars), &stdout, &stderr) }()
	waitReady(t, "http://"+vars["USERAPI_ADDR"]+"/livez", done)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve %v = %v\n%s", args, err, stdout.String())
	}
	return stderr.String()
}

// make run's development key: made once, then reused; made again when it
// stops working.
func TestServe_DevKey(t *testing.T) {
	t.Parallel()
	addr := freeport.Addr(t)
	vars := map[string]string{"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": "off", "USERAPI_ADDR": addr,
		"USERAPI_METRICS_ADDR": "off", "USERAPI_DB_MIN_CONNS": "0", "USERAPI_DB_MAX_CONNS": "4"}
	file := filepath.Join(t.TempDir(), "data", "dev-api-key")
	out := serveOnce(t, vars, "--dev-key-file", file)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(b))
	if !strings.Contains(out, key) || !strings.Contains(out, "curl -H \"Authorization: Bearer "+key+"\" http://"+addr+"/users") {
		t.Errorf("serve --dev-key-file output lacks the key and a curl example:\n%s", out)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", st.Mode().Perm())
	}
	if out := serveOnce(t, vars, "--dev-key-file", file); !strings.Contains(out, key) {
		t.Errorf("second serve did not reuse the key:\n%s", out)
	}
	if _, err := keysCmd(t, vars, "revoke", key[:12]); err != nil {
		t.Fatal(err)
	}
	out = serveOnce(t, vars, "--dev-key-file", file)
	if strings.Contains(out, key) || !strings.Contains(out, "uak_") {
		t.Errorf("serve reused a revoked development key:\n%s", out)
	}
}

// A busy address stops serve with one line naming USERAPI_ADDR, before it
// prints a curl line that would reach the other process.
func TestServe_BusyAddr(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	vars := map[string]string{"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": "off", "USERAPI_ADDR": ln.Addr().String(),
		"USERAPI_METRICS_ADDR": "off", "USERAPI_DB_MIN_CONNS": "0", "USERAPI_DB_MAX_CONNS": "2"}
	file := filepath.Join(t.TempDir(), "dev-api-key")
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"serve", "--dev-key-file", file}, env(vars), &stdout, &stderr)
	want := fmt.Sprintf("USERAPI_ADDR=%q: another process listens there", ln.Addr().String())
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("serve on a busy address = %v, want one line starting %s", err, want)
	}
	if strings.Contains(stderr.String(), "curl") {
		t.Errorf("serve on a busy address printed a curl line:\n%s", stderr.String())
	}
}

// The keys commands never change the schema: on a database without one they
// say, in one line, to run migrate.
func TestKeys_NeverMigrate(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": storetest.UnusedDB(t), "REDIS_URL": "off"}
	for _, args := range [][]string{{"list"}, {"create", "--name", "x", "--scopes", "admin"}, {"revoke", "uak_3kq7zt2m"}} {
		_, err := keysCmd(t, vars, args...)
		if err == nil || !strings.Contains(err.Error(), "run `userapi migrate` first") || strings.Contains(err.Error(), "\n") {
			t.Errorf("keys %v on an empty database = %v, want one line saying to run userapi migrate", args, err)
		}
	}
	pool := storetest.Pool(t, vars["DATABASE_URL"], 1)
	var tables int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("the keys commands made %d tables, want none", tables)
	}
	if err := run(context.Background(), []string{"migrate"}, env(vars), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := keysCmd(t, vars, "list"); err != nil {
		t.Errorf("keys list after migrate = %v", err)
	}
}

func TestKeys_CommandLineErrors(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": "off"}
	for _, args := range [][]string{
		{"create", "--name", "x", "--scopes", "users:delete"},
		{"create", "--scopes", "admin"},
		{"create", "--name", "x"},
		{"create", "--name", "x", "--scopes", "admin", "--expires", "forever"},
		{"revoke", "uak_zzzzzzzz"},
		{"revoke", "not-a-prefix"},
		{"rotate"},
	} {
		if out, err := keysCmd(t, vars, args...); err == nil || out != "" {
			t.Errorf("keys %v = %v, stdout %q; want an error and nothing on stdout", args, err, out)
		}
	}
}

// Idempotency keys belong to the API key that sent them: two callers who
// happen to pick the same Idempotency-Key do not see each other's answers.
func TestKeys_IdempotencyKeysPerAPIKey(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": "off", "USERAPI_AUTH": "on",
		"USERAPI_DB_MIN_CONNS": "0", "USERAPI_DB_MAX_CONNS": "2",
	}
	alice := newKey(t, vars, "--name", "alice", "--scopes", "users:write")
	bob := newKey(t, vars, "--name", "bob", "--scopes", "users:write")
	base := instance(t, vars)
	post := func(key, body string) reply {
		return call(t, "POST", base+"/users", body, append(bearer(key), "Idempotency-Key", "order-42")...)
	}
	first := post(alice, `{"name":"Ada","email":"ada@example.com"}`)
	other := post(bob, `{"name":"Bob","email":"bob@example.com"}`)
	if first.status != http.StatusCreated || other.status != http.StatusCreated || other.body == first.body {
		t.Fatalf("same Idempotency-Key from two API keys = %d %s and %d %s, want two creates", first.status, first.body, other.status, other.body)
	}
	again := post(alice, `{"name":"Ada","email":"ada@example.com"}`)
	if again.status != http.StatusCreated || again.body != first.body || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("retry by the same API key = %d %s (replayed %q), want the first answer replayed", again.status, again.body, again.header.Get("Idempotent-Replayed"))
	}
	if r := post(bob, `{"name":"Ada","email":"ada@example.com"}`); r.status != http.StatusUnprocessableEntity {
		t.Errorf("bob reusing his key with another body = %d %s, want 422", r.status, r.body)
	}
}

// rollKey runs `userapi keys roll args...` and returns the new key.
func rollKey(t *testing.T, vars map[string]string, args ...string) string {
	t.Helper()
	out, err := keysCmd(t, vars, append([]string{"roll"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(key, "uak_") {
		t.Fatalf("keys roll printed %q, want the new key alone on one line", out)
	}
	return key
}

// A rolled key and its successor both work on every instance during the
// overlap; when it ends, every instance refuses the old key within a
// second, though each had its record cached from before the roll (in a
// single Redis, or a cluster).
func TestKeys_RollAcrossInstances(t *testing.T) {
	t.Parallel()
	cachetest.OnEachDeployment(t, func(t *testing.T, url string) {
		vars := map[string]string{
			"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": url, "USERAPI_CACHE_PREFIX": cachetest.Prefix(t),
			"USERAPI_DB_MIN_CONNS": "0", "USERAPI_DB_MAX_CONNS": "2", "USERAPI_AUTH": "on",
		}
		old := newKey(t, vars, "--name", "billing", "--scopes", "users:read")
		a, b := instance(t, vars), instance(t, vars)
		for _, base := range []string{a, b} { // both cache the old key's record
			if r := call(t, "GET", base+"/users", "", bearer(old)...); r.status != http.StatusOK {
				t.Fatalf("GET %s/users with the key = %d %s", base, r.status, r.body)
			}
		}

		const overlap = 4 * time.Second
		next := rollKey(t, vars, old[:12], "--expire-old", overlap.String())
		ends := time.Now().Add(overlap) // the overlap ends no later than this
		for _, base := range []string{a, b} {
			for _, key := range []string{old, next} {
				r := call(t, "GET", base+"/users", "", bearer(key)...)
				if r.status != http.StatusOK && time.Now().Before(ends.Add(-overlap/2)) {
					t.Fatalf("GET %s/users with %s during the overlap = %d %s, want 200", base, key[:12], r.status, r.body)
				}
			}
		}
		list, err := keysCmd(t, vars, "list")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"to " + next[:12], "from " + old[:12]} {
			if !strings.Contains(list, want) {
				t.Errorf("keys list lacks %q:\n%s", want, list)
			}
		}
		if _, err := keysCmd(t, vars, "roll", old[:12]); err == nil {
			t.Error("keys roll of a key rolled already = nil error")
		}

		for _, base := range []string{a, b} {
			for {
				r := call(t, "GET", base+"/users", "", bearer(old)...)
				if r.status == http.StatusUnauthorized {
					if !strings.Contains(r.body, "expired") {
						t.Errorf("old key after the overlap: %s, want it refused as expired", r.body)
					}
					break
				}
				if r.status != http.StatusOK {
					t.Fatalf("GET with the old key = %d %s", r.status, r.body)
				}
				if time.Since(ends) > time.Second {
					t.Fatalf("%s still accepts the old key more than a second after the overlap ended", base)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if r := call(t, "GET", base+"/users", "", bearer(next)...); r.status != http.StatusOK {
				t.Errorf("GET %s/users with the new key after the overlap = %d %s", base, r.status, r.body)
			}
		}
	})
}

// A key made with --rate spends its own budget instead of the default one,
// says so in RateLimit-Policy, and hands it on when rolled.
func TestKeys_OwnRate(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": cachetest.URL(), "USERAPI_CACHE_PREFIX": cachetest.Prefix(t),
		"USERAPI_DB_MIN_CONNS": "0", "USERAPI_DB_MAX_CONNS": "2", "USERAPI_AUTH": "on", "USERAPI_RATE_LIMIT": "100/1m",
	}
	small := newKey(t, vars, "--name", "small", "--scopes", "users:read", "--rate", "2/1h")
	plain := newKey(t, vars, "--name", "plain", "--scopes", "users:read")
	base := instance(t, vars)
	for i := range 3 {
		r := call(t, "GET", base+"/users", "", bearer(small)...)
		if want := map[bool]int{true: 200, false: 429}[i < 2]; r.status != want {
			t.Fatalf("key with 2/1h, request %d = %d, want %d", i+1, r.status, want)
		}
		if got, want := r.header.Get("RateLimit-Policy"), `"reads";q=2;w=3600`; got != want {
			t.Errorf("RateLimit-Policy = %q, want %q", got, want)
		}
	}
	r := call(t, "GET", base+"/users", "", bearer(plain)...)
	if got, want := r.header.Get("RateLimit-Policy"), `"reads";q=100;w=60`; r.status != http.StatusOK || got != want {
		t.Errorf("key without a rate = %d, RateLimit-Policy %q; want 200 and %q", r.status, got, want)
	}
	if list, _ := keysCmd(t, vars, "list"); !strings.Contains(list, "2/1h0m0s") {
		t.Errorf("keys list does not show the key's rate:\n%s", list)
	}
	next := rollKey(t, vars, small[:12])
	r = call(t, "GET", base+"/users", "", bearer(next)...)
	if got, want := r.header.Get("RateLimit-Policy"), `"reads";q=2;w=3600`; got != want {
		t.Errorf("rolled key: RateLimit-Policy = %q, want the old key's %q", got, want)
	}
	faster := rollKey(t, vars, next[:12], "--rate", "50/1m")
	r = call(t, "GET", base+"/users", "", bearer(faster)...)
	if got, want := r.header.Get("RateLimit-Policy"), `"reads";q=50;w=60`; got != want {
		t.Errorf("key rolled with --rate 50/1m: RateLimit-Policy = %q, want %q", got, want)
	}
}
