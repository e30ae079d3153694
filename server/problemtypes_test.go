package server_test

import (
	"net/http"
	"strings"
	"testing"

	"userapi/gen"
	"userapi/server"
)

// Each problem type the spec lists is a public page saying what it means;
// other names are a 404 problem.
func TestProblemTypes_Pages(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	spec, err := server.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	enum := spec.Components.Schemas["Problem"].Value.Properties["type"].Value.Enum
	if len(enum) < 10 {
		t.Fatalf("the Problem type enum has %d values, want every kind listed", len(enum))
	}
	for _, v := range enum {
		uri := v.(string)
		if uri == string(gen.AboutBlank) {
			continue
		}
		res := s.do("GET", uri, nil).wantStatus(t, http.StatusOK)
		page := string(res.body)
		if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s: Content-Type %q, want text/html", uri, ct)
		}
		if !strings.Contains(page, "<code>type: "+uri+"</code>") || !strings.Contains(page, "What to do") || strings.Contains(page, "`") {
			t.Errorf("GET %s = %s, want the page of that type with its advice and code marked up", uri, page)
		}
	}
	p := s.do("GET", "/problems/no-such-kind", nil).wantStatus(t, http.StatusNotFound).problem(t)
	if p.Type != gen.ProblemsnotFound || p.Title != "Not Found" {
		t.Errorf("unknown kind: %+v, want a not-found problem", p)
	}
	// Problems take their title from the spec's list.
	p = s.do("POST", "/users", map[string]any{"name": ""}).wantStatus(t, http.StatusUnprocessableEntity).problem(t)
	if p.Type != gen.Problemsvalidation || p.Title != "Invalid request" {
		t.Errorf("422: type %q title %q, want %q and its title from openapi.yaml", p.Type, p.Title, gen.Problemsvalidation)
	}
}
