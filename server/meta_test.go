package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"userapi"
	"userapi/gen"
	"userapi/server"
)

func mustJSON(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("body %s: %v", raw, err)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	up := server.Check{Name: "database", Required: true, Probe: func(context.Context) error { return nil }}
	down := server.Check{Name: "cache", Probe: func(context.Context) error { return errors.New("dial tcp: refused") }}

	tests := []struct {
		name       string
		checks     []server.Check
		wantStatus int
		want       gen.HealthStatus
	}{
		{"OK", []server.Check{up}, 200, gen.HealthStatusOk},
		{"OptionalDownIsDegraded", []server.Check{up, down}, 200, gen.HealthStatusDegraded},
		{"RequiredDownIsDown", []server.Check{{Name: "database", Required: true, Probe: down.Probe}}, 503, gen.HealthStatusDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, fakeUsers{}, tt.checks...)
			res := s.do("GET", "/health", nil).wantStatus(t, tt.wantStatus)
			var h gen.Health
			mustJSON(t, res.body, &h)
			if h.Status != tt.want || len(h.Checks) != len(tt.checks) {
				t.Errorf("/health = %s, want status %s and %d checks", res.body, tt.want, len(tt.checks))
			}
			if strings.Contains(string(res.body), "dial tcp") {
				t.Errorf("/health leaks the error text: %s", res.body)
			}
		})
	}
}

func TestSpecEndpoints(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeUsers{})
	res := s.do("GET", "/openapi.yaml", nil).wantStatus(t, http.StatusOK)
	if !bytes.Equal(res.body, userapi.OpenAPI) {
		t.Error("/openapi.yaml differs from openapi.yaml")
	}
	res = s.do("GET", "/openapi.json", nil).wantStatus(t, http.StatusOK)
	want, err := yaml.YAMLToJSON(userapi.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	var got, wantDoc any
	mustJSON(t, res.body, &got)
	mustJSON(t, want, &wantDoc)
	if !jsonEqual(got, wantDoc) {
		t.Error("/openapi.json is not the same document as openapi.yaml")
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// The docs pages and every asset they load come from this server.
func TestDocsAreOffline(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeUsers{})

	if res := s.do("GET", "/", nil).wantStatus(t, http.StatusFound); res.header.Get("Location") != "/docs" {
		t.Errorf("GET / Location = %q, want /docs", res.header.Get("Location"))
	}
	if res := s.do("GET", "/docs", nil).wantStatus(t, http.StatusFound); res.header.Get("Location") != "/docs/index.html" {
		t.Errorf("GET /docs Location = %q, want /docs/index.html", res.header.Get("Location"))
	}

	src := regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	pages := map[string]string{"/docs/index.html": "/docs/", "/redoc": "/"}
	for page, base := range pages {
		res := s.do("GET", page, nil).wantStatus(t, http.StatusOK)
		if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s Content-Type = %q, want text/html", page, ct)
		}
		for _, m := range src.FindAllStringSubmatch(string(res.body), -1) {
			ref := m[1]
			if strings.Contains(ref, "//") {
				t.Errorf("%s loads %s from another host", page, ref)
				continue
			}
			path := strings.TrimPrefix(ref, "./")
			if !strings.HasPrefix(path, "/") {
				path = base + path
			}
			s.do("GET", path, nil).wantStatus(t, http.StatusOK)
		}
	}

	// Swagger UI reads our document through swag's registry.
	res := s.do("GET", "/docs/doc.json", nil).wantStatus(t, http.StatusOK)
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	mustJSON(t, res.body, &doc)
	if doc.OpenAPI != "3.0.3" || doc.Paths["/users/{id}"] == nil {
		t.Errorf("/docs/doc.json is not our document: openapi %q, %d paths", doc.OpenAPI, len(doc.Paths))
	}

	// The ReDoc bundle must not reach for its vendor's CDN.
	res = s.do("GET", "/redoc/redoc.standalone.js", nil).wantStatus(t, http.StatusOK)
	if bytes.Contains(res.body, []byte("cdn.redoc.ly")) {
		t.Error("redoc.standalone.js still loads an asset from cdn.redoc.ly")
	}
	s.do("GET", "/redoc/logo-mini.svg", nil).wantStatus(t, http.StatusOK)
	s.do("GET", "/redoc/LICENSE", nil).wantStatus(t, http.StatusOK)
	s.do("GET", "/redoc/nothing.js", nil).wantStatus(t, http.StatusNotFound)
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeUsers{})
	if got := s.do("GET", "/livez", nil, "X-Request-ID", "abc-123").header.Get("X-Request-ID"); got != "abc-123" {
		t.Errorf("X-Request-ID = %q, want the caller's abc-123", got)
	}
	// A forged id that would break log lines is replaced.
	if got := s.do("GET", "/livez", nil, "X-Request-ID", "x\" evil=1").header.Get("X-Request-ID"); got == "" || strings.Contains(got, "evil") {
		t.Errorf("X-Request-ID = %q, want a fresh id instead of the unsafe one", got)
	}
}
