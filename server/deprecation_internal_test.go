package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

// No operation of openapi.yaml is deprecated yet, so this proves the
// headers on a spec made for the test.
const deprecatedSpec = `
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /old:
    get:
      operationId: getOld
      security: []
      deprecated: true
      x-deprecated-at: "2026-01-15"
      x-sunset: "2027-01-15"
      responses:
        "200": {description: ok}
  /older:
    get:
      operationId: getOlder
      security: []
      deprecated: true
      x-deprecated-at: "2025-06-01T00:00:00Z"
      responses:
        "200": {description: ok}
  /current:
    get:
      operationId: getCurrent
      security: []
      responses:
        "200": {description: ok}
`

func TestDeprecationHeaders(t *testing.T) {
	t.Parallel()
	spec, err := openapi3.NewLoader().LoadFromData([]byte(deprecatedSpec))
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HTTPErrorHandler = errorHandler(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ops, err := operations(spec)
	if err != nil {
		t.Fatal(err)
	}
	v := newValidator(newJSONShape(0, 0))
	ok := func(c echo.Context) error { return c.NoContent(http.StatusOK) }
	for _, op := range ops {
		e.GET(op.echoPath(), ok, v.forOperation(op))
	}
	tests := []struct {
		path, deprecation, sunset string
	}{
		{"/old", "@1768435200", "Fri, 15 Jan 2027 00:00:00 GMT"},
		{"/older", "@1748736000", ""},
		{"/current", "", ""},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if got := w.Header().Get("Deprecation"); got != tt.deprecation {
			t.Errorf("GET %s Deprecation = %q, want %q", tt.path, got, tt.deprecation)
		}
		if got := w.Header().Get("Sunset"); got != tt.sunset {
			t.Errorf("GET %s Sunset = %q, want %q", tt.path, got, tt.sunset)
		}
	}
}
