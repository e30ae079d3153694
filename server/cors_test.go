package server_test

import (
	"net/http"
	"slices"
	"strings"
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
