package server_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"userapi/server"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	s := newServerWith(t, fakeUsers{}, server.Options{CORSOrigins: []string{"https://app.example.com"}})

	t.Run("PreflightFromAllowedOrigin", func(t *testing.T) {
		res := s.do("OPTIONS", "/users/1", nil,
			"Origin", "https://app.example.com",
			"Access-Control-Request-Method", "PATCH",
			"Access-Control-Request-Headers", "if-match, content-type, authorization, idempotency-key")
		if res.status != http.StatusNoContent {
			t.Fatalf("preflight = %d, want 204", res.status)
		}
		if got := res.header.Get("Access-Control-Allow-Origin"); got != "https://app.example.com" {
			t.Errorf("Access-Control-Allow-Origin = %q", got)
		}
		methods := res.header.Get("Access-Control-Allow-Methods")
		headers := strings.ToLower(res.header.Get("Access-Control-Allow-Headers"))
		for _, want := range []string{"PATCH", "DELETE", "PUT"} {
			if !strings.Contains(methods, want) {
				t.Errorf("Access-Control-Allow-Methods = %q, lacks %s", methods, want)
			}
		}
		for _, want := range []string{"if-match", "if-none-match", "idempotency-key", "authorization", "content-type"} {
			if !strings.Contains(headers, want) {
				t.Errorf("Access-Control-Allow-Headers = %q, lacks %s", headers, want)
			}
		}
	})
	t.Run("ExposesHeaders", func(t *testing.T) {
		res := s.do("GET", "/livez", nil, "Origin", "https://app.example.com")
		exposed := strings.Split(strings.ToLower(res.header.Get("Access-Control-Expose-Headers")), ",")
		for i := range exposed {
			exposed[i] = strings.TrimSpace(exposed[i])
		}
		for _, want := range []string{"etag", "location", "ratelimit-policy", "ratelimit", "ratelimit-remaining", "retry-after", "x-request-id", "idempotent-replayed"} {
			if !slices.Contains(exposed, want) {
				t.Errorf("Access-Control-Expose-Headers = %q, lacks %s", exposed, want)
			}
		}
	})
	t.Run("OtherOriginGetsNothing", func(t *testing.T) {
		res := s.do("OPTIONS", "/users/1", nil, "Origin", "https://evil.example.net", "Access-Control-Request-Method", "DELETE")
		if got := res.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("preflight from another origin: Access-Control-Allow-Origin = %q, want none", got)
		}
	})
	t.Run("OffByDefault", func(t *testing.T) {
		plain := newServer(t, fakeUsers{})
		res := plain.do("GET", "/livez", nil, "Origin", "https://app.example.com")
		if got := res.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("without origins configured: Access-Control-Allow-Origin = %q, want none", got)
		}
	})
}

// A refused origin is logged once, naming the setting that allows it; the
// allowed origins are logged at start-up; a page of the service itself is
// no refusal; and a flood of origins ends in one last line.
func TestCORS_RefusalsLogged(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	e, err := server.New(logger, fakeUsers{}, server.Options{CORSOrigins: []string{"https://app.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	s := serveEcho(t, e)
	if out := buf.String(); !strings.Contains(out, "level=INFO") || !strings.Contains(out, "USERAPI_CORS_ORIGINS") || !strings.Contains(out, "https://app.example.com") {
		t.Errorf("start-up log = %q, want the allowed origins and the setting", out)
	}
	for range 2 {
		s.do("OPTIONS", "/users/1", nil, "Origin", "http://localhost:5173", "Access-Control-Request-Method", "DELETE")
		s.do("GET", "/livez", nil, "Origin", "http://localhost:5173")
	}
	s.do("GET", "/livez", nil, "Origin", "https://app.example.com")
	s.do("POST", "/users", map[string]any{}, "Origin", s.url)
	warns := func() []string {
		var out []string
		for _, line := range strings.Split(buf.String(), "\n") {
			if strings.Contains(line, "level=WARN") {
				out = append(out, line)
			}
		}
		return out
	}
	got := warns()
	if len(got) != 1 || !strings.Contains(got[0], "origin=http://localhost:5173") || !strings.Contains(got[0], "USERAPI_CORS_ORIGINS") {
		t.Fatalf("WARN lines = %q, want one for http://localhost:5173 naming USERAPI_CORS_ORIGINS", got)
	}
	for i := range 150 {
		s.do("GET", "/livez", nil, "Origin", fmt.Sprintf("https://site%d.example", i))
	}
	if got := warns(); len(got) != 101 || !strings.Contains(got[100], "not logged one by one") {
		t.Errorf("%d WARN lines after 151 refused origins, want 100 and one saying the rest are not logged", len(got))
	}
}

// syncBuffer is a bytes.Buffer that handlers on several goroutines may write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
