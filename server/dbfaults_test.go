package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"userapi/jobs"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
)

// dbServer serves users and jobs (inserts only, no workers) from a pool of
// its own database, so a test may break that database without touching
// anyone else's.
func dbServer(t *testing.T) (_ *testServer, _ *pgxpool.Pool, dbName string) {
	t.Helper()
	dbURL := storetest.NewDB(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pool := storetest.Pool(t, dbURL, 4)
	q, err := jobs.New(pool, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return newServerWith(t, store.NewUsers(pool), server.Options{Jobs: q}), pool, strings.TrimPrefix(u.Path, "/")
}

func mustExec(t *testing.T, pool *pgxpool.Pool, sql string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// wantUnavailable fails the test unless r is a 503 telling the client when
// to retry.
func (r response) wantUnavailable(t *testing.T, what string) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("%s = %d, Retry-After %q; want 503 with Retry-After; body: %s", what, r.status, r.header.Get("Retry-After"), r.body)
	}
}

// A session the server terminates (57P01: an administrator, a failover)
// while River inserts a job is an outage, as it is for any other statement.
func TestJobs_InsertOnTerminatedSession(t *testing.T) {
	t.Parallel()
	s, pool, _ := dbServer(t)
	u := s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated).user(t)

	// The session that inserts a job ends itself mid-statement, with the
	// same FATAL error pg_terminate_backend gives any session.
	mustExec(t, pool, `CREATE FUNCTION terminate_self() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$`)
	mustExec(t, pool, `CREATE TRIGGER terminate_self BEFORE INSERT ON river_job FOR EACH ROW EXECUTE FUNCTION terminate_self()`)

	s.do("POST", fmt.Sprint("/users/", u.Id, "/process"), nil).wantUnavailable(t, "POST /users/{id}/process on a terminated session")
}

// A server that refuses connections (here, a database that does not allow
// them: SQLSTATE 55000) is an outage on every route that needs one, whatever
// code it refuses with.
func TestDatabaseRefusingConnections(t *testing.T) {
	t.Parallel()
	if storetest.ThroughPgBouncer() {
		t.Skip("a pooler keeps its server connections open: the database refuses none of its requests")
	}
	s, pool, dbName := dbServer(t)
	u := s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}).wantStatus(t, http.StatusCreated).user(t)

	// A database cannot refuse its own sessions: ask from the server's own.
	admin := storetest.Pool(t, storetest.BaseURL(), 1)
	mustExec(t, admin, "ALTER DATABASE "+pgx.Identifier{dbName}.Sanitize()+" ALLOW_CONNECTIONS false")
	pool.Reset() // close the connections made before: every request needs a new one

	tests := []struct {
		method, path string
		body         any
	}{
		{"GET", fmt.Sprint("/users/", u.Id), nil},
		{"GET", "/users", nil},
		{"POST", "/users", map[string]string{"name": "Bob", "email": "bob@example.com"}},
		{"POST", fmt.Sprint("/users/", u.Id, "/process"), nil},
		{"GET", "/jobs/1", nil},
	}
	for _, tt := range tests {
		s.do(tt.method, tt.path, tt.body).wantUnavailable(t, tt.method+" "+tt.path)
	}
}

// blackHole listens on a loopback port, accepts connections and never
// answers on them: a database whose network path froze.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// With the database's network path frozen, a request ends at its deadline
// with a 503 and Retry-After rather than waiting on the database.
func TestRequestDeadline_FrozenDatabase(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@"+blackHole(t)+"/none?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := newServerWith(t, store.NewUsers(pool), server.Options{RequestTimeout: 200 * time.Millisecond})
	s.client.Timeout = 15 * time.Second // without a deadline the answer never comes

	s.do("GET", "/users/1", nil).wantUnavailable(t, "GET /users/1 with the database frozen")
	s.do("POST", "/users", map[string]string{"name": "Ada", "email": "ada@example.com"}).wantUnavailable(t, "POST /users with the database frozen")
}

// Errors answered under a request deadline keep their status: the deadline's
// context is cancelled by the time the error handler runs, which must not
// pass for a client that left.
func TestRequestDeadline_ErrorsKeepTheirStatus(t *testing.T) {
	t.Parallel()
	s := newServerWith(t, nil, server.Options{RequestTimeout: time.Minute})
	if r := s.do("GET", "/users/987654", nil); r.status != http.StatusNotFound {
		t.Errorf("GET /users/987654 = %d %s, want 404", r.status, r.body)
	}
	if r := s.do("POST", "/users", map[string]string{"name": "Ada"}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("POST /users without an email = %d %s, want 422", r.status, r.body)
	}
}
