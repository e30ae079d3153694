package server_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"userapi/server"
	"userapi/store"
)

// stuckUsers answers Get only when the request's context ends, as a query
// cut short by a cancelled context does.
type stuckUsers struct {
	store.UserService
	started chan struct{}
}

func (s stuckUsers) Get(ctx context.Context, id int64) (store.User, error) {
	s.started <- struct{}{}
	<-ctx.Done()
	return store.User{}, fmt.Errorf("get user %d: %w", id, ctx.Err())
}

// statuses is an Observer that passes on each request's status.
type statuses chan int

func (s statuses) ObserveRequest(_, _ string, status int, _ time.Duration) { s <- status }
func (statuses) AuthRefused(string)                                        {}
func (statuses) RateLimited(string)                                        {}

// lockedBuffer is a log destination the server may write while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A client that gives up before the answer is recorded as 499, in the
// access log and the metrics, not as a server error.
func TestClientAbortIs499(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	seen := make(statuses, 1)
	users := stuckUsers{started: make(chan struct{}, 1)}
	e, err := server.New(slog.New(slog.NewJSONHandler(&logs, nil)), users, server.Options{Observer: seen})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/users/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		<-users.started
		cancel()
	}()
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("the request was answered %d, want it aborted", res.StatusCode)
	}
	if got := <-seen; got != server.StatusClientClosedRequest {
		t.Errorf("observed status = %d, want %d", got, server.StatusClientClosedRequest)
	}
	log := logs.String()
	if !strings.Contains(log, `"status":499`) || strings.Contains(log, `"level":"ERROR"`) {
		t.Errorf("log = %s, want the request at status 499 and no error line", log)
	}
}
