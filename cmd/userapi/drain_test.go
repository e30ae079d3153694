package main

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"userapi/internal/freeport"
	"userapi/store/storetest"
)

// After the stop signal the instance drains: /readyz answers 503 while the
// other routes still serve, every answer says Connection: close, and then
// the process stops cleanly.
func TestRun_DrainBeforeShutdown(t *testing.T) {
	t.Parallel()
	addr := freeport.Addr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, env(map[string]string{
			"USERAPI_ADDR": addr, "DATABASE_URL": storetest.NewDB(t), "USERAPI_DB_MIN_CONNS": "1", "USERAPI_DB_MAX_CONNS": "4",
			"REDIS_URL": "off", "USERAPI_METRICS_ADDR": "off", "USERAPI_AUTH": "off", "USERAPI_WORKERS": "0",
			"USERAPI_DRAIN_DELAY": "3s",
		}), &logs, &logs)
	}()
	base := "http://" + addr
	waitReady(t, base+"/readyz", done)
	defer func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	}()

	// One keep-alive client throughout, as a load balancer's would be.
	client := &http.Client{Transport: &http.Transport{}}
	get := func(path string) *http.Response {
		t.Helper()
		res, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	if res := get("/users"); res.StatusCode != http.StatusOK || res.Close {
		t.Fatalf("GET /users before the signal = %d (Connection: close %v), want 200 on a kept-alive connection", res.StatusCode, res.Close)
	}

	cancel()
	var res *http.Response
	for {
		if res = get("/readyz"); res.StatusCode != http.StatusOK {
			break
		}
		time.Sleep(10 * time.Millisecond) // the signal has not reached serve yet
	}
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /readyz while draining = %d %s, want a 503 problem", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, path := range []string{"/users", "/livez"} {
		res := get(path)
		if res.StatusCode != http.StatusOK || !res.Close {
			t.Errorf("GET %s while draining = %d (Connection: close %v), want 200 with Connection: close", path, res.StatusCode, res.Close)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run() after the drain = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run() did not return after the drain")
	}
	if _, err := client.Get(base + "/livez"); err == nil {
		t.Error("GET /livez after shutdown succeeded, want the listener closed")
	}
}
