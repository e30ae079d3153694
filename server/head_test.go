package server_test

import (
	"net/http"
	"regexp"
	"testing"

	"userapi/server"
)

// HEAD answers every GET route as GET does, without the body: the same
// status and the same headers, Content-Length included. The paths are
// every GET operation of openapi.yaml, with an id that exists, one that
// does not and one that is not an id, and pages outside the document.
func TestHead_AnswersAsGet(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated)
	spec, err := server.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/users/2", "/users/x", "/users?limit=0", "/docs/index.html", "/nowhere"}
	param := regexp.MustCompile(`\{[^}]+\}`)
	for path, item := range spec.Paths.Map() {
		if item.Get != nil {
			paths = append(paths, param.ReplaceAllString(path, "1"))
		}
	}
	for _, path := range paths {
		get := s.do("GET", path, nil)
		head := s.do("HEAD", path, nil) // checkContract: no body
		if head.status != get.status {
			t.Errorf("HEAD %s = %d, GET = %d", path, head.status, get.status)
		}
		for _, h := range []string{"Content-Type", "Content-Length", "ETag", "Cache-Control", "Allow", "Location"} {
			got, want := head.header.Get(h), get.header.Get(h)
			if h == "Content-Length" && want == "0" {
				want = "" // net/http leaves it out of an answer to HEAD with no body
			}
			if got != want {
				t.Errorf("HEAD %s: %s = %q, GET has %q", path, h, got, want)
			}
		}
	}
}

// A 405 names HEAD wherever GET is allowed, and HEAD is refused where GET
// is not, rather than reaching a route with a parameter.
func TestHead_Allow(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	for _, tc := range []struct{ method, path, allow string }{
		{"PUT", "/livez", "GET, HEAD"},
		{"DELETE", "/users", "GET, HEAD, POST"},
		{"HEAD", "/users/batch-get", "POST"},
	} {
		res := s.do(tc.method, tc.path, nil).wantStatus(t, http.StatusMethodNotAllowed)
		if got := res.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
	res := s.do("POST", "/users/1", nil).wantStatus(t, http.StatusMethodNotAllowed)
	if allow := res.header.Get("Allow"); !regexp.MustCompile(`\bGET\b`).MatchString(allow) || !regexp.MustCompile(`\bHEAD\b`).MatchString(allow) {
		t.Errorf("POST /users/1: Allow = %q, want GET and HEAD among them", allow)
	}
}
