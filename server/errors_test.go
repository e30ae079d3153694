package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"userapi/gen"
	"userapi/server"
	"userapi/store"
)

// Every bad input gets the status its kind calls for, a problem body, and
// for validation errors the exact fields at fault.
func TestBadInput(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	u := s.do("POST", "/users", map[string]any{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated).user(t)
	userPath := fmt.Sprint("/users/", u.Id)
	big := `{"name":"` + strings.Repeat("a", 1<<20) + `","email":"a@example.com"}`

	tests := []struct {
		name       string
		method     string
		path       string
		body       any
		headers    []string
		wantStatus int
		wantFields []string // locations named in errors, in order
	}{
		{"MalformedJSON", "POST", "/users", `{"name": "Ada",`, nil, 400, nil},
		{"NotJSONAtAll", "POST", "/users", `name=Ada`, nil, 400, nil},
		{"WrongContentType", "POST", "/users", `{"name":"Ada","email":"a@example.com"}`, []string{"Content-Type", "text/plain"}, 415, nil},
		{"FormContentType", "PUT", userPath, `name=Ada`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, nil},
		{"BodyTooLarge", "POST", "/users", big, nil, 413, nil},
		{"EmptyBody", "POST", "/users", "", nil, 422, []string{"body"}},
		{"BodyNotObject", "POST", "/users", `[1,2]`, nil, 422, []string{"body"}},
		{"MissingFields", "POST", "/users", map[string]any{}, nil, 422, []string{"body.email", "body.name"}},
		{"EmptyName", "POST", "/users", map[string]any{"name": "", "email": "a@example.com"}, nil, 422, []string{"body.name"}},
		{"LongName", "POST", "/users", map[string]any{"name": strings.Repeat("n", 101), "email": "a@example.com"}, nil, 422, []string{"body.name"}},
		{"NameNotString", "POST", "/users", map[string]any{"name": 7, "email": "a@example.com"}, nil, 422, []string{"body.name"}},
		{"BadEmail", "POST", "/users", map[string]any{"name": "Ada", "email": "not-an-email"}, nil, 422, []string{"body.email"}},
		{"EmailWithDisplayName", "POST", "/users", map[string]any{"name": "Ada", "email": "Ada <ada@example.com>"}, nil, 422, []string{"body.email"}},
		{"LongEmail", "POST", "/users", map[string]any{"name": "Ada", "email": strings.Repeat("e", 250) + "@example.com"}, nil, 422, []string{"body.email"}},
		{"UnknownField", "POST", "/users", map[string]any{"name": "Ada", "email": "a@example.com", "emial": "typo"}, nil, 422, []string{"body.emial"}},
		{"PutMissingEmail", "PUT", userPath, map[string]any{"name": "Ada"}, nil, 422, []string{"body.email"}},
		{"PatchEmpty", "PATCH", userPath, map[string]any{}, nil, 422, []string{"body"}},
		{"PatchNull", "PATCH", userPath, map[string]any{"name": nil}, nil, 422, []string{"body.name"}},
		{"PatchUnknownField", "PATCH", userPath, map[string]any{"nmae": "x"}, nil, 422, []string{"body.nmae"}},
		{"IDNotInteger", "GET", "/users/abc", nil, nil, 422, []string{"path.id"}},
		{"IDZero", "GET", "/users/0", nil, nil, 422, []string{"path.id"}},
		{"IDNegative", "DELETE", "/users/-4", nil, nil, 422, []string{"path.id"}},
		{"IDTooLarge", "GET", "/users/9223372036854775808", nil, nil, 422, []string{"path.id"}},
		{"IDFraction", "GET", "/users/1.5", nil, nil, 422, []string{"path.id"}},
		{"LimitZero", "GET", "/users?limit=0", nil, nil, 422, []string{"query.limit"}},
		{"LimitTooLarge", "GET", "/users?limit=1001", nil, nil, 422, []string{"query.limit"}},
		{"LimitNotInteger", "GET", "/users?limit=ten", nil, nil, 422, []string{"query.limit"}},
		{"OffsetNegative", "GET", "/users?offset=-1", nil, nil, 422, []string{"query.offset"}},
		{"OffsetPastCap", "GET", "/users?offset=10001", nil, nil, 422, []string{"query.offset"}}, // deep pages take cursor
		{"CursorAndOffset", "GET", "/users?cursor=YWZ0ZXI6MQ&offset=2", nil, nil, 422, []string{"query.cursor"}},
		{"CursorForged", "GET", "/users?cursor=bm90LWEtY3Vyc29y", nil, nil, 422, []string{"query.cursor"}},
		{"CursorNotBase64", "GET", "/users?cursor=%25%25%25", nil, nil, 422, []string{"query.cursor"}},
		{"TwoBadParams", "GET", "/users?limit=0&offset=-1", nil, nil, 422, []string{"query.limit", "query.offset"}},
		{"BatchEmpty", "POST", "/users/batch-get", map[string]any{"ids": []int{}}, nil, 422, []string{"body.ids"}},
		{"BatchTooMany", "POST", "/users/batch-get", map[string]any{"ids": oneTo(1001)}, nil, 422, []string{"body.ids"}},
		{"BatchBadID", "POST", "/users/batch-get", map[string]any{"ids": []any{1, "two"}}, nil, 422, []string{"body.ids.1"}},
		{"BatchZeroID", "POST", "/users/batch-get", map[string]any{"ids": []int{1, 0}}, nil, 422, []string{"body.ids.1"}},
		{"BatchNoIDs", "POST", "/users/batch-get", map[string]any{}, nil, 422, []string{"body.ids"}},
		{"BatchWrongMethod", "GET", "/users/batch-get", nil, nil, 405, nil},
		{"UnknownRoute", "GET", "/nope", nil, nil, 404, nil},
		{"UnknownNestedRoute", "GET", "/users/1/friends", nil, nil, 404, nil},
		{"WrongMethod", "PATCH", "/users", map[string]any{"name": "x"}, nil, 405, nil},
		{"WrongMethodOnUser", "POST", userPath, map[string]any{"name": "x"}, nil, 405, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := s.do(tt.method, tt.path, tt.body, tt.headers...)
			if res.status != tt.wantStatus {
				t.Fatalf("%s %s = %d, want %d; body: %s", tt.method, tt.path, res.status, tt.wantStatus, res.body)
			}
			p := res.problem(t)
			var got []string
			if p.Errors != nil {
				for _, fe := range *p.Errors {
					got = append(got, fe.Location)
					if fe.Message == "" {
						t.Errorf("error at %s has no message", fe.Location)
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantFields) {
				t.Errorf("%s %s errors at %v, want %v; body: %s", tt.method, tt.path, got, tt.wantFields, res.body)
			}
			if tt.wantStatus == http.StatusMethodNotAllowed && res.header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
			for _, leak := range []string{"goroutine", ".go:", "SQL", "pgx", "strconv", "openapi3", "Schema:"} {
				if strings.Contains(string(res.body), leak) {
					t.Errorf("body leaks internals (%q): %s", leak, res.body)
				}
			}
		})
	}
}

// A body larger than the limit is refused even when it does not say how
// large it is (chunked encoding, no Content-Length).
func TestBodyLimit_Chunked(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	body := `{"name":"` + strings.Repeat("a", 2<<20) + `","email":"a@example.com"}`
	req, err := http.NewRequest("POST", s.url+"/users", struct{ *strings.Reader }{strings.NewReader(body)}) // hides the length
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || res.Header.Get("Content-Type") != "application/problem+json" || req.ContentLength != 0 {
		t.Errorf("2 MiB body of unknown length (%d) = %d %s, want 413 problem", req.ContentLength, res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// fakeUsers is a UserService whose every method does what GetFn does.
type fakeUsers struct {
	store.UserService
	GetFn func(id int64) (store.User, error)
}

func (f fakeUsers) Get(_ context.Context, id int64) (store.User, error) { return f.GetFn(id) }

// Delete finds nobody: the fake store holds no users.
func (fakeUsers) Delete(context.Context, int64, func(int64) bool) error { return store.ErrNotFound }

// A panic in a handler is a 500 problem with the request id, and the
// server keeps serving.
func TestPanicIsProblem(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeUsers{GetFn: func(int64) (store.User, error) { panic("boom") }})
	res := s.do("GET", "/users/1", nil, "X-Request-ID", "trace-me-1").wantStatus(t, http.StatusInternalServerError)
	p := res.problem(t)
	if p.RequestId == nil || *p.RequestId != "trace-me-1" || res.header.Get("X-Request-ID") != "trace-me-1" {
		t.Errorf("500 problem %+v, X-Request-ID %q; want the caller's request id in both", p, res.header.Get("X-Request-ID"))
	}
	if strings.Contains(string(res.body), "boom") {
		t.Errorf("500 body leaks the panic value: %s", res.body)
	}
	s.do("GET", "/livez", nil).wantStatus(t, http.StatusOK)
}

// Internal errors never show their text.
func TestInternalErrorIsOpaque(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeUsers{GetFn: func(int64) (store.User, error) {
		return store.User{}, errors.New(`ERROR: relation "users" does not exist (SQLSTATE 42P01)`)
	}})
	res := s.do("GET", "/users/1", nil).wantStatus(t, http.StatusInternalServerError)
	if strings.Contains(string(res.body), "relation") || strings.Contains(string(res.body), "SQLSTATE") {
		t.Errorf("500 body leaks the error: %s", res.body)
	}
}

// A database that cannot be reached gives 503 with Retry-After, and /health
// says the service is down.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1; the pool connects lazily, so New succeeds.
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := newServer(t, store.NewUsers(pool), server.Check{Name: "database", Required: true, Probe: pool.Ping})

	res := s.do("GET", "/users/1", nil).wantStatus(t, http.StatusServiceUnavailable)
	if res.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	s.do("POST", "/users", map[string]any{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusServiceUnavailable)

	res = s.do("GET", "/health", nil).wantStatus(t, http.StatusServiceUnavailable)
	var h gen.Health
	mustJSON(t, res.body, &h)
	if h.Status != gen.HealthStatusDown || h.Checks["database"].Status != gen.HealthCheckStatusDown || h.Checks["database"].Error == nil {
		t.Errorf("/health = %s, want status down with the database down and why", res.body)
	}
	s.do("GET", "/livez", nil).wantStatus(t, http.StatusOK)
}

func oneTo(n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i + 1
	}
	return ids
}

// A body with many bad fields lists a bounded number of them.
func TestBadInput_ManyErrorsAreCapped(t *testing.T) {
	t.Parallel()
	s := newServer(t, fakeUsers{})
	ids := make([]int, 500) // every id is 0: 500 bad items
	p := s.do("POST", "/users/batch-get", map[string]any{"ids": ids}).wantStatus(t, http.StatusUnprocessableEntity).problem(t)
	if p.Errors == nil || len(*p.Errors) != 20 || !strings.Contains(p.Detail, "500") {
		t.Errorf("500 bad ids: detail %q with %d errors, want the count in the detail and 20 listed", p.Detail, len(*p.Errors))
	}
}

// Text PostgreSQL cannot store (invalid UTF-8, NUL) is a 422, not a 500,
// and a missing docs asset is a 404 problem, like every other error.
func TestUnstorableTextAndMissingAsset(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	tests := []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/users?email=%E0%80%80", nil, http.StatusUnprocessableEntity},
		{"POST", "/users", map[string]any{"name": "A\u0000", "email": "nul@example.com"}, http.StatusUnprocessableEntity},
		{"GET", "/docs/no-such-file.js", nil, http.StatusNotFound},
		{"GET", "/docs/?\xa3", nil, http.StatusNotFound}, // once a plain-text 500
	}
	for _, tt := range tests {
		res := s.do(tt.method, tt.path, tt.body).wantStatus(t, tt.want)
		if ct := res.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s %s Content-Type = %q, want application/problem+json", tt.method, tt.path, ct)
		}
	}
}
