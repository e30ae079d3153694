package server_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"userapi/auth"
	"userapi/ratelimit"
	"userapi/server"
)

// keyChecker accepts the key "good" with every scope and no other.
type keyChecker struct{}

func (keyChecker) Check(_ context.Context, key string) (auth.Key, error) {
	if key == "good" {
		return auth.Key{Prefix: "uak_good", Scopes: []string{auth.ScopeAdmin}}, nil
	}
	return auth.Key{}, auth.ErrUnknown
}

func (keyChecker) Verified(string) bool { return false }

// Each operation of openapi.yaml gets the middleware its record says: a
// public one never asks for a key, a protected one refuses a request
// without one (401); each spends the budget its record names (seen in
// RateLimit-Limit, since the limiter runs before the key is refused) or
// none; and exactly the operations that take an Idempotency-Key check it.
func TestOperations_MiddlewareFollowsTheSpec(t *testing.T) {
	t.Parallel()
	limits := map[string]string{"reads": "1000", "writes": "999", "none": ""}
	policies := map[string]string{"reads": `"reads";q=1000;w=3600`, "writes": `"writes";q=999;w=3600`, "none": ""}
	s := newServerWith(t, fakeUsers{}, server.Options{
		Auth: keyChecker{},
		RateLimit: &server.RateLimit{
			Limiter: ratelimit.NewMemory(100),
			Reads:   mustPolicy(t, limits["reads"]+"/1h"),
			Writes:  mustPolicy(t, limits["writes"]+"/1h"),
		},
	})
	ops, err := server.OperationPolicies()
	if err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	for _, op := range ops {
		path := param.ReplaceAllString(op.Path, "1")
		res := s.do(op.Method, path, nil)
		if got := res.header.Get("RateLimit-Limit"); got != limits[op.Budget] {
			t.Errorf("%s (%s %s) RateLimit-Limit = %q, want %q (budget %s)", op.ID, op.Method, op.Path, got, limits[op.Budget], op.Budget)
		}
		if got, want := res.header.Get("RateLimit-Policy"), policies[op.Budget]; got != want {
			t.Errorf("%s (%s %s) RateLimit-Policy = %q, want %q", op.ID, op.Method, op.Path, got, want)
		}
		if unauthorized := res.status == http.StatusUnauthorized; unauthorized == op.Public {
			t.Errorf("%s without a key = %d, public = %v", op.ID, res.status, op.Public)
		}
		if op.Body == nil && !op.Idempotent {
			continue // no valid request to send it without a handler behind
		}
		// Two keys are refused by the idempotency middleware alone (the
		// validator reads the first); the spec's example body is valid.
		req := []string{"Authorization", "Bearer good"}
		res = s.do(op.Method, path, op.Body, append(req, "Idempotency-Key", "a", "Idempotency-Key", "b")...)
		checked := res.status == http.StatusUnprocessableEntity && strings.Contains(string(res.body), "header.Idempotency-Key")
		if checked != op.Idempotent {
			t.Errorf("%s with two Idempotency-Keys = %d %s, idempotent = %v", op.ID, res.status, res.body, op.Idempotent)
		}
	}
}

// rateHeaders are the headers every answer of a limited operation carries,
// each described once in components/headers.
var rateHeaders = []string{"RateLimit-Policy", "RateLimit", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"}

// Every operation that spends a budget documents the rate-limit headers on
// its successful answers and its 429, each by reference to the one shared
// description; operations that spend none document none of them.
func TestOperations_RateHeadersDocumented(t *testing.T) {
	t.Parallel()
	spec, err := server.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	ops, err := server.OperationPolicies()
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		o := spec.Paths.Find(op.Path).GetOperation(op.Method)
		for code, resp := range o.Responses.Map() {
			limited := op.Budget != "none" && (strings.HasPrefix(code, "2") || code == "429")
			for _, name := range rateHeaders {
				h, ok := resp.Value.Headers[name]
				switch {
				case limited && !ok:
					t.Errorf("%s %s: answer %s does not document %s", op.ID, op.Path, code, name)
				case limited && h.Ref != "#/components/headers/"+name:
					t.Errorf("%s %s: answer %s describes %s itself (%q), not by reference to components/headers", op.ID, op.Path, code, name, h.Ref)
				case !limited && ok && op.Budget == "none":
					t.Errorf("%s %s spends no budget but its answer %s documents %s", op.ID, op.Path, code, name)
				}
			}
		}
		if _, ok := o.Responses.Map()["429"]; op.Budget != "none" && !ok {
			t.Errorf("%s %s spends a budget but documents no 429", op.ID, op.Path)
		}
	}
}
