package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"userapi/auth"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
)

// authServer serves with API keys on, and returns a function that makes keys.
func authServer(t *testing.T) (*testServer, func(scopes ...string) string) {
	t.Helper()
	pool := storetest.Pool(t, storetest.NewDB(t), 4)
	keys := store.NewAPIKeys(pool)
	s := newServerWith(t, store.NewUsers(pool), server.Options{
		Auth:     auth.NewChecker(keys, keys, slog.New(slog.DiscardHandler)),
		Webhooks: store.NewWebhooks(pool),
	})
	makeKey := func(scopes ...string) string {
		k := auth.Generate()
		if _, err := keys.Create(context.Background(), store.NewAPIKey{Prefix: k.Prefix, Hash: k.Hash, Name: "test", Scopes: scopes}); err != nil {
			t.Fatal(err)
		}
		return k.Key
	}
	return s, makeKey
}

// Every operation that openapi.yaml protects refuses a request without a
// key (401) and one whose key lacks its scope (403), before looking at the
// request, with answers the spec documents; public operations need no key.
func TestAuth_EveryOperation(t *testing.T) {
	t.Parallel()
	s, makeKey := authServer(t)
	spec, err := server.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	protected := 0
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			url := param.ReplaceAllString(path, "1")
			if len(*op.Security) == 0 {
				if strings.HasPrefix(path, "/users") || strings.HasPrefix(path, "/jobs") || strings.HasPrefix(path, "/webhooks") {
					t.Errorf("%s %s is public; every /users, /jobs and /webhooks operation needs a key", method, path)
				}
				if r := s.do(method, url, nil, "Authorization", "Bearer not-a-key"); r.status == http.StatusUnauthorized {
					t.Errorf("%s %s is public but answered 401", method, path)
				}
				continue
			}
			protected++
			needs, _ := op.Extensions["x-scope"].(string)
			if !slices.Contains(auth.Scopes, needs) || needs == auth.ScopeAdmin {
				t.Errorf("%s %s: x-scope %q is not an operation scope", method, path, needs)
				continue
			}
			r := s.do(method, url, "{not json")
			if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != `Bearer realm="userapi"` {
				t.Errorf("%s %s without a key = %d %q, want 401 with WWW-Authenticate", method, path, r.status, r.header.Get("WWW-Authenticate"))
			}
			var other string
			for _, sc := range auth.Scopes {
				if sc != needs && sc != auth.ScopeAdmin {
					other = sc
					break
				}
			}
			r = s.do(method, url, "{not json", "Authorization", "Bearer "+makeKey(other))
			if r.status != http.StatusForbidden || !strings.Contains(string(r.body), needs) ||
				!strings.Contains(r.header.Get("WWW-Authenticate"), `scope="`+needs+`"`) {
				t.Errorf("%s %s with scope %s = %d %q %s, want 403 naming %s", method, path, other, r.status, r.header.Get("WWW-Authenticate"), r.body, needs)
			}
			// With the scope, the request gets past authorization: its bad
			// body is now what is wrong with it.
			r = s.do(method, url, "{not json", "Authorization", "Bearer "+makeKey(needs))
			if r.status == http.StatusUnauthorized || r.status == http.StatusForbidden {
				t.Errorf("%s %s with scope %s = %d %s", method, path, needs, r.status, r.body)
			}
		}
	}
	if protected == 0 {
		t.Error("no protected operations")
	}
}

func TestAuth_AdminAllowsEverything(t *testing.T) {
	t.Parallel()
	s, makeKey := authServer(t)
	admin := makeKey(auth.ScopeAdmin)
	if r := s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}, "Authorization", "Bearer "+admin); r.status != http.StatusCreated {
		t.Fatalf("POST /users as admin = %d %s", r.status, r.body)
	}
	if r := s.do("GET", "/webhooks", nil, "Authorization", "Bearer "+admin); r.status != http.StatusOK {
		t.Errorf("GET /webhooks as admin = %d %s", r.status, r.body)
	}
	// The scheme name is case-insensitive (RFC 7235).
	if r := s.do("GET", "/users/1", nil, "Authorization", "bearer "+admin); r.status != http.StatusOK {
		t.Errorf("lower-case bearer = %d %s", r.status, r.body)
	}
}

// A key is refused when revoked or expired, straight from the database (no
// cache here): the answer is 401 with invalid_token.
func TestAuth_RevokedAndExpired(t *testing.T) {
	t.Parallel()
	pool := storetest.Pool(t, storetest.NewDB(t), 4)
	keys := store.NewAPIKeys(pool)
	s := newServerWith(t, store.NewUsers(pool), server.Options{Auth: auth.NewChecker(keys, keys, slog.New(slog.DiscardHandler))})
	ctx := context.Background()
	revoked, expired := auth.Generate(), auth.Generate()
	for _, k := range []store.NewAPIKey{
		{Prefix: revoked.Prefix, Hash: revoked.Hash, Name: "revoked", Scopes: []string{auth.ScopeAdmin}},
		{Prefix: expired.Prefix, Hash: expired.Hash, Name: "expired", Scopes: []string{auth.ScopeAdmin}, ExpiresAt: time.Now().Add(-time.Minute)},
	} {
		if _, err := keys.Create(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if r := s.do("GET", "/users", nil, "Authorization", "Bearer "+revoked.Key); r.status != http.StatusOK {
		t.Fatalf("before revocation = %d", r.status)
	}
	if _, err := keys.Revoke(ctx, revoked.Prefix); err != nil {
		t.Fatal(err)
	}
	for key, why := range map[string]string{revoked.Key: "revoked", expired.Key: "expired"} {
		r := s.do("GET", "/users", nil, "Authorization", "Bearer "+key)
		if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), why) || !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("%s key = %d %q %s", why, r.status, r.header.Get("WWW-Authenticate"), r.body)
		}
	}
	// Using a key records when, at most once a minute.
	deadline := time.Now().Add(5 * time.Second)
	for {
		k, err := keys.Get(ctx, revoked.Prefix)
		if err != nil {
			t.Fatal(err)
		}
		if !k.LastUsedAt.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("last_used_at was never set")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The database being down while a key is checked is a 503, not a 401: the
// key may well be good.
func TestAuth_DatabaseDown(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1; the pool connects lazily, so New succeeds.
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	keys := store.NewAPIKeys(pool)
	s := newServerWith(t, store.NewUsers(pool), server.Options{Auth: auth.NewChecker(keys, keys, slog.New(slog.DiscardHandler))})
	r := s.do("GET", "/users", nil, "Authorization", "Bearer "+auth.Generate().Key)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("key check with the database down = %d %s, want 503 with Retry-After", r.status, r.body)
	}
}

// Seeing deleted users and purging need users:admin besides the
// operation's scope; admin holds it too.
func TestAuth_DeletedUsersNeedUsersAdmin(t *testing.T) {
	t.Parallel()
	s, makeKey := authServer(t)
	writer := "Bearer " + makeKey(auth.ScopeUsersRead, auth.ScopeUsersWrite)
	usersAdmin := "Bearer " + makeKey(auth.ScopeUsersRead, auth.ScopeUsersWrite, auth.ScopeUsersAdmin)
	admin := "Bearer " + makeKey(auth.ScopeAdmin)
	u := s.do("POST", "/users", map[string]any{"name": "Ada", "email": "ada@example.com"}, "Authorization", writer).wantStatus(t, http.StatusCreated).user(t)
	path := "/users/" + strconv.FormatInt(u.Id, 10)
	s.do("DELETE", path, nil, "Authorization", writer).wantStatus(t, http.StatusNoContent)
	for _, req := range []struct{ method, url string }{
		{"GET", path + "?show_deleted=true"},
		{"GET", "/users?show_deleted=true"},
		{"GET", "/users/export?show_deleted=true"},
		{"DELETE", path + "?purge=true"},
	} {
		p := s.do(req.method, req.url, nil, "Authorization", writer).wantStatus(t, http.StatusForbidden).problem(t)
		if !strings.Contains(p.Detail, auth.ScopeUsersAdmin) {
			t.Errorf("%s %s without users:admin: detail %q does not name the scope", req.method, req.url, p.Detail)
		}
	}
	p := s.do("GET", "/users?state=deleted", nil, "Authorization", usersAdmin).wantStatus(t, http.StatusUnprocessableEntity).problem(t)
	if p.Errors == nil || (*p.Errors)[0].Location != "query.state" {
		t.Errorf("state=deleted without show_deleted: %+v, want query.state named", p)
	}
	for _, key := range []string{usersAdmin, admin} {
		got := s.do("GET", path+"?show_deleted=true", nil, "Authorization", key).wantStatus(t, http.StatusOK).user(t)
		if got.State != "deleted" || got.DeletedAt == nil {
			t.Errorf("GET deleted user = %+v, want it deleted with deleted_at", got)
		}
		page := s.do("GET", "/users?state=deleted&show_deleted=true", nil, "Authorization", key).wantStatus(t, http.StatusOK).page(t)
		if len(page.Items) != 1 || page.Items[0].Id != u.Id {
			t.Errorf("deleted users listed: %+v, want user %d", page.Items, u.Id)
		}
	}
	s.do("DELETE", path+"?purge=true", nil, "Authorization", usersAdmin).wantStatus(t, http.StatusNoContent)
	s.do("GET", path+"?show_deleted=true", nil, "Authorization", admin).wantStatus(t, http.StatusNotFound)
}
