package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"userapi/gen"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
)

func TestMain(m *testing.M) {
	// The pages and the YAML document are checked as strings.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.PlainBodyDecoder)
	// Exports are checked line by line by their own tests.
	openapi3filter.RegisterBodyDecoder("text/csv", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	storetest.Main(m)
}

// testServer is the real HTTP handler on a loopback port. Every answer it
// gives is checked against openapi.yaml before the test sees it.
type testServer struct {
	t      *testing.T
	url    string
	client *http.Client
	router routers.Router
}

// newServer serves users (a fresh database when nil) and the given checks.
func newServer(t *testing.T, users store.UserService, checks ...server.Check) *testServer {
	t.Helper()
	return newServerWith(t, users, server.Options{Checks: checks})
}

func newServerWith(t *testing.T, users store.UserService, opts server.Options) *testServer {
	t.Helper()
	if users == nil {
		users = store.NewUsers(storetest.NewPool(t))
	}
	e, err := server.New(slog.New(slog.NewTextHandler(io.Discard, nil)), users, opts)
	if err != nil {
		t.Fatal(err)
	}
	return serveEcho(t, e)
}

// serveEcho serves e on a loopback port, checking every answer.
func serveEcho(t *testing.T, e http.Handler) *testServer {
	t.Helper()
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	spec, err := server.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	spec.Servers = nil // match any host, as the test server's port is random
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &testServer{t: t, url: srv.URL, client: client, router: router}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request. body may be nil, a string (sent as it is) or a value
// (sent as JSON); headers come in name, value pairs. A JSON body gets
// Content-Type application/json unless the pairs set one.
func (s *testServer) do(method, path string, body any, headers ...string) response {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	named := map[string]bool{}
	for i := 0; i+1 < len(headers); i += 2 {
		if named[headers[i]] { // a name given twice is sent twice
			req.Header.Add(headers[i], headers[i+1])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
		named[headers[i]] = true
	}
	res, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	got := response{status: res.StatusCode, header: res.Header, body: raw}
	s.checkContract(req, got)
	return got
}

// checkContract fails the test when the answer is not what openapi.yaml
// promises for this operation. Answers to paths outside the document (an
// unknown route, a wrong method, documentation assets) must still be
// problems when they are errors.
func (s *testServer) checkContract(req *http.Request, res response) {
	s.t.Helper()
	if res.header.Get("X-Request-ID") == "" {
		s.t.Errorf("%s %s: no X-Request-ID header", req.Method, req.URL.Path)
	}
	asked, head := req, req.Method == http.MethodHead
	if head {
		// openapi.yaml lists GET alone; HEAD answers as GET does, without
		// the body: check the status and headers against the GET operation.
		if len(res.body) > 0 {
			s.t.Errorf("HEAD %s answered %d with a body of %d bytes, want none", req.URL.Path, res.status, len(res.body))
		}
		asked = req.Clone(context.Background())
		asked.Method = http.MethodGet
	}
	route, params, err := s.router.FindRoute(asked)
	if err != nil {
		if res.status >= 400 {
			s.mustBeProblem(req, res, head)
		}
		return
	}
	opts := server.ValidationOptions()
	opts.IncludeResponseStatus = true
	opts.ExcludeResponseBody = head
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: asked, PathParams: params, Route: route, Options: &opts},
		Status:                 res.status,
		Header:                 res.header,
		Body:                   io.NopCloser(bytes.NewReader(res.body)),
		Options:                &opts,
	}
	// The document says which answers are problems; this checks the
	// status, headers, content type and body against it.
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		s.t.Errorf("%s %s answered %d, which breaks openapi.yaml: %v\nbody: %s", req.Method, req.URL, res.status, err, res.body)
	}
}

// mustBeProblem checks an error answer outside the document; for HEAD,
// only its Content-Type, as there is no body.
func (s *testServer) mustBeProblem(req *http.Request, res response, head bool) {
	s.t.Helper()
	if ct := res.header.Get("Content-Type"); ct != "application/problem+json" {
		s.t.Errorf("%s %s answered %d with Content-Type %q, want application/problem+json", req.Method, req.URL.Path, res.status, ct)
	}
	if head {
		return
	}
	var p gen.Problem
	if err := json.Unmarshal(res.body, &p); err != nil || p.Status != res.status || p.Title == "" || p.Detail == "" || !p.Type.Valid() {
		s.t.Errorf("%s %s answered %d with body %s, want a problem with a listed type, title, status and detail", req.Method, req.URL.Path, res.status, res.body)
	}
}

// problem decodes a problem body.
func (r response) problem(t *testing.T) gen.Problem {
	t.Helper()
	var p gen.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("body %s is not a problem: %v", r.body, err)
	}
	return p
}

// user decodes a user body.
func (r response) user(t *testing.T) gen.User {
	t.Helper()
	var u gen.User
	if err := json.Unmarshal(r.body, &u); err != nil {
		t.Fatalf("body %s is not a user: %v", r.body, err)
	}
	return u
}

func (r response) page(t *testing.T) gen.UserPage {
	t.Helper()
	var p gen.UserPage
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("body %s is not a page: %v", r.body, err)
	}
	return p
}

// wantStatus stops the test when the status is not want.
func (r response) wantStatus(t *testing.T, want int) response {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d; body: %s", r.status, want, r.body)
	}
	return r
}
