package server_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"userapi/server"
)

// A small body that is costly to validate (thousands of unknown fields, or
// nesting thousands deep) is refused before validation with a 422 naming
// the body, in bounded memory. Not parallel: it reads the process's
// allocation counter.
func TestJSONShape_CostlyBodies(t *testing.T) {
	e, err := server.New(slog.New(slog.DiscardHandler), fakeUsers{}, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, body, message string
	}{
		// Under the bound, the validator reports them all, and builds no
		// text for the log line nobody writes.
		{"999Fields", "/users/batch-get", unknownFields(999), ""},
		{"8000Fields", "/users/batch-get", unknownFields(8000), "has an object with more than 1000 fields"},
		{"8000FieldsCreate", "/users", strings.Replace(unknownFields(8000), `"ids":[1]`, `"name":"A","email":"a@example.com"`, 1), "has an object with more than 1000 fields"},
		{"10000Deep", "/users/batch-get", `{"ids":[1],"x":` + strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10001),
			"nests objects and arrays more than 32 levels deep"},
		{"10000DeepArrays", "/users/batch-get", `{"ids":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "}",
			"nests objects and arrays more than 32 levels deep"},
	}
	// Generous: the answers take under 1 MB; before, 1,000 fields took
	// 0.6 GB and 8,000 never finished.
	const maxBytes = 16 << 20
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			e.ServeHTTP(w, req)
			runtime.ReadMemStats(&after)
			res := response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
			res.wantStatus(t, http.StatusUnprocessableEntity)
			p := res.problem(t)
			if tt.message == "" {
				if want := "the request has 999 invalid fields; the first 20 are listed"; p.Detail != want {
					t.Errorf("detail = %q, want %q", p.Detail, want)
				}
			} else if p.Errors == nil || len(*p.Errors) != 1 || (*p.Errors)[0].Location != "body" || (*p.Errors)[0].Message != tt.message {
				t.Errorf("errors = %+v, want one at body: %q", p.Errors, tt.message)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > maxBytes {
				t.Errorf("the request allocated %d bytes, want at most %d", n, maxBytes)
			}
		})
	}
}

// The shape check refuses what it must and nothing else: strings that look
// like structure, bodies at the limits, and trailing data.
func TestJSONShape_Limits(t *testing.T) {
	t.Parallel()
	s := newServerWith(t, nil, server.Options{JSONMaxKeys: 3, JSONMaxDepth: 3})
	tests := []struct {
		name, body string
		status     int
		detail     string
	}{
		{"ThreeFields", `{"name":"A","email":"a@example.com","x":1}`, 422, "body.x is not a known field"},
		{"FourFields", `{"name":"A","email":"a@example.com","x":1,"y":2}`, 422, "body has an object with more than 3 fields"},
		{"ColonsInStrings", `{"name":"a:b:c:d:e","email":"u0@example.com"}`, 201, ""},
		{"BracesInStrings", `{"name":"{{{{[[[[\"}","email":"u1@example.com"}`, 201, ""},
		{"ThreeLevels", `{"name":"A","email":"a@example.com","x":[[1]]}`, 422, "body.x is not a known field"},
		{"FourLevels", `{"name":"A","email":"a@example.com","x":[[[1]]]}`, 422, "body nests objects and arrays more than 3 levels deep"},
		{"TrailingData", `{"name":"A","email":"a@example.com"} {}`, 400, "the body is not valid JSON: data follows the JSON value"},
		{"TrailingSpace", "{\"name\":\"A\",\"email\":\"a@example.com\"}\r\n\t ", 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := s.do(http.MethodPost, "/users", tt.body)
			if res.status != tt.status || (tt.detail != "" && res.problem(t).Detail != tt.detail) {
				t.Errorf("POST %s = %d %s, want %d %q", tt.body, res.status, res.body, tt.status, tt.detail)
			}
		})
	}
}
