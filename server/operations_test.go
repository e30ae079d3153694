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
