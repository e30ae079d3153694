package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"userapi/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

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

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The whole program: serve on a port, answer, stop cleanly on cancel.
func TestRun_ServeAndShutdown(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, env(map[string]string{
			"USERAPI_ADDR":         addr,
			"DATABASE_URL":         storetest.NewDB(t),
			"USERAPI_DB_MIN_CONNS": "1",
			"USERAPI_DB_MAX_CONNS": "4",
		}), &logs, &logs)
	}()
	base := "http://" + addr
	waitReady(t, base+"/livez", done)

	res, err := http.Post(base+"/users", "application/json", strings.NewReader(`{"name":"Ada","email":"ada@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Errorf("POST /users = %d, want 201", res.StatusCode)
	}
	res, err = http.Get(base + "/health")
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
	for _, want := range []string{`"msg":"listening"`, `"msg":"request"`, `"route":"/users"`, `"status":201`, `"msg":"stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// In-flight requests finish when shutdown starts.
func TestRun_GracefulShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, env(map[string]string{
			"USERAPI_ADDR": addr, "DATABASE_URL": storetest.NewDB(t), "USERAPI_DB_MIN_CONNS": "1", "USERAPI_DB_MAX_CONNS": "4",
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

func waitReady(t *testing.T, url string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
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
	if !strings.Contains(out.String(), `"migrations_applied":["0001_users.sql"]`) {
		t.Errorf("migrate log = %s, want 0001_users.sql applied", out.String())
	}
}

func TestRun_BadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"USERAPI_ADDR": "8080"}, "USERAPI_ADDR"},
		{map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		{map[string]string{"USERAPI_DB_MAX_CONNS": "lots"}, "USERAPI_DB_MAX_CONNS"},
		{map[string]string{"USERAPI_DB_MIN_CONNS": "20", "USERAPI_DB_MAX_CONNS": "5"}, "USERAPI_DB_MIN_CONNS"},
		{map[string]string{"USERAPI_DB_STATEMENT_TIMEOUT": "soon"}, "USERAPI_DB_STATEMENT_TIMEOUT"},
		{map[string]string{"REDIS_URL": "http://x"}, "REDIS_URL"},
		{map[string]string{"USERAPI_LOG_LEVEL": "loud"}, "USERAPI_LOG_LEVEL"},
	}
	for _, tt := range tests {
		err := run(context.Background(), []string{"serve"}, env(tt.env), &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.HasPrefix(err.Error(), tt.want+"=") || strings.Contains(err.Error(), "\n") {
			t.Errorf("run with %v = %v, want one line starting with %s=", tt.env, err, tt.want)
		}
	}
}

func TestRun_Help(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, env(nil), &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"serve", "migrate", "DATABASE_URL", "USERAPI_ADDR"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %s", want)
		}
	}
	if err := run(context.Background(), []string{"frobnicate"}, env(nil), &out, &out); err == nil {
		t.Error("run(frobnicate) = nil, want a usage error")
	}
}
