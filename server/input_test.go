package server_test

import (
	"net/http"
	"strconv"
	"testing"
)

// Integers that JSON Schema or a parser would bend into an int64 (1.0, 1e3,
// -0, 2^63) are a 422 naming the field, wherever they are sent: a path, the
// query, or a JSON body.
func TestInput_IntegerForms(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	for _, tc := range []struct {
		method, path string
		body         any
		field, msg   string
	}{
		{"GET", "/users/1.0", nil, "path.id", "must be an integer"},
		{"GET", "/users/1e3", nil, "path.id", "must be an integer"},
		{"GET", "/users/-0", nil, "path.id", "must be at least 1"},
		{"GET", "/users/9223372036854775808", nil, "path.id", "must be an integer"},
		{"DELETE", "/users/0x10", nil, "path.id", "must be an integer"},
		{"GET", "/webhooks/1_0", nil, "path.id", "must be an integer"},
		{"GET", "/jobs/1.0", nil, "path.id", "must be an integer"},
		{"GET", "/users?limit=1.0", nil, "query.limit", "must be an integer"},
		{"GET", "/users?limit=1e3", nil, "query.limit", "must be an integer"},
		{"GET", "/users?limit=-0", nil, "query.limit", "must be at least 1"},
		{"GET", "/users?offset=9223372036854775808", nil, "query.offset", "must be an integer"},
		{"POST", "/users/batch-get", `{"ids":[1.0]}`, "body.ids.0", "must be an integer written in digits alone, such as 42"},
		{"POST", "/users/batch-get", `{"ids":[2, 1e3]}`, "body.ids.1", "must be an integer written in digits alone, such as 42"},
		{"POST", "/users/batch-get", `{"ids":[9223372036854775808]}`, "body.ids.0", "must be at most 9223372036854775807"},
		{"POST", "/users/batch-get", `{"ids":[-9223372036854775809]}`, "body.ids.0", "must be at least 1"},
	} {
		res := s.do(tc.method, tc.path, tc.body).wantStatus(t, http.StatusUnprocessableEntity)
		p := res.problem(t)
		if p.Errors == nil || len(*p.Errors) != 1 || (*p.Errors)[0].Location != tc.field || (*p.Errors)[0].Message != tc.msg {
			t.Errorf("%s %s %v: errors = %s, want one at %s: %q", tc.method, tc.path, tc.body, res.body, tc.field, tc.msg)
		}
	}
}

// A name must show something and read as it is stored: blank names, and
// names with bidirectional overrides or isolates, are a 422 naming
// body.name on every write; names with spaces inside, or in scripts
// written right to left, are fine.
func TestInput_Names(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	id := s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated).user(t).Id
	user := "/users/" + strconv.FormatInt(id, 10)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{" ", false}, {"\t\n\r ", false}, {"\u00a0\u3000\u2003", false}, {"\u200b\u200d", false}, {"\ufeff", false},
		{"a\u202eb", false}, {"\u202aAda", false}, {"Ada\u2066", false}, {"Ad\u2069a", false}, {" \u202e ", false},
		{"Ada Lovelace", true}, {" Ada ", true}, {"עדה", true}, {"أدا", true}, {"Ada \u200d", true},
	} {
		for _, w := range []struct {
			method, path string
			body         map[string]string
		}{
			{"POST", "/users", map[string]string{"name": tc.name, "email": "new@example.com"}},
			{"PUT", user, map[string]string{"name": tc.name, "email": "ada@example.com"}},
			{"PATCH", user, map[string]string{"name": tc.name}},
		} {
			res := s.do(w.method, w.path, w.body)
			if tc.ok {
				if res.status >= 300 {
					t.Errorf("%s %s name %+q = %d %s, want success", w.method, w.path, tc.name, res.status, res.body)
				}
				if w.method == "POST" && res.status == http.StatusCreated {
					s.do("DELETE", "/users/"+strconv.FormatInt(res.user(t).Id, 10)+"?purge=true", nil).wantStatus(t, http.StatusNoContent)
				}
				continue
			}
			want := "must not be blank, nor contain bidirectional override or isolate characters (U+202A to U+202E, U+2066 to U+2069)"
			if p := res.problem(t); res.status != http.StatusUnprocessableEntity || p.Errors == nil || len(*p.Errors) != 1 ||
				(*p.Errors)[0].Location != "body.name" || (*p.Errors)[0].Message != want {
				t.Errorf("%s %s name %+q = %d %s, want 422 at body.name: %q", w.method, w.path, tc.name, res.status, res.body, want)
			}
		}
	}
}
