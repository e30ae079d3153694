package main

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"userapi/store/storetest"
)

// With OTEL_EXPORTER_OTLP_ENDPOINT set, a request's span (named by its
// route, continuing the caller's trace) and its SQL spans reach the
// collector.
func TestTracingExportsSpans(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got [][]byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" {
			mu.Lock()
			got = append(got, body)
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(collector.Close)

	base := instance(t, map[string]string{
		"DATABASE_URL": storetest.NewDB(t), "REDIS_URL": "off", "USERAPI_WORKERS": "0",
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL,
	})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := call(t, "GET", base+"/users/42", "", "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if r.status != http.StatusNotFound {
		t.Fatalf("GET /users/42 = %d, want 404", r.status)
	}

	id, _ := hex.DecodeString(traceID)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		all := bytes.Join(got, nil)
		mu.Unlock()
		// OTLP is protobuf: names travel as raw strings, ids as raw bytes.
		if bytes.Contains(all, []byte("GET /users/:id")) && bytes.Contains(all, id) && bytes.Contains(all, []byte("db.query")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collector got %d exports without a GET /users/:id span in trace %s with a db.query child", len(got), traceID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestTracingBadEndpoint(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), []string{"serve"}, env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}), io.Discard, io.Discard)
	if err == nil || !bytes.HasPrefix([]byte(err.Error()), []byte("OTEL_EXPORTER_OTLP_ENDPOINT=")) {
		t.Errorf("run with a bad OTLP endpoint = %v, want one line naming OTEL_EXPORTER_OTLP_ENDPOINT", err)
	}
}
