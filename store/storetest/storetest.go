// Package storetest gives tests a fresh, migrated PostgreSQL database of
// their own. It talks to a real server and fails, rather than skips, when
// none answers: a test suite that silently skips its database tests proves
// nothing.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"userapi/store"
)

// defaultURL is the machine's PostgreSQL, used when DATABASE_URL is unset.
const defaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	mu       sync.Mutex // serialises template use: a template cannot be cloned twice at once
	template string     // this process's migrated template database, made by Main
)

// Main runs a package's tests with a migrated template database, and drops
// the template afterwards, after calling each of after (which stops servers
// the tests shared). Call it from TestMain.
func Main(m *testing.M, after ...func()) {
	name, err := createTemplate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "storetest:", err)
		os.Exit(1)
	}
	template = name
	code := m.Run()
	for _, f := range after {
		f()
	}
	stopSharedPgBouncer()
	if err := dropDatabase(context.Background(), name); err != nil {
		fmt.Fprintln(os.Stderr, "storetest: drop template:", err)
	}
	// A background loop that outlives its test (a pool, a Redis client, a
	// ticker nobody stops) shows up here, after every test has cleaned up.
	if code == 0 {
		// A Redis Cluster client closes the connections to nodes that
		// left the cluster 5s after it noticed, in a goroutine of its own.
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2")); err != nil {
			fmt.Fprintln(os.Stderr, "storetest: goroutines left running after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// NewDB returns the URL of a new database, cloned from the migrated template,
// that is dropped when the test ends.
func NewDB(t testing.TB) string {
	t.Helper()
	if template == "" {
		t.Fatal("storetest: call storetest.Main(m) from TestMain first")
	}
	name := "userapi_test_" + randomSuffix()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mu.Lock()
	err := execAdmin(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s",
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{template}.Sanitize()))
	mu.Unlock()
	if err != nil {
		t.Fatalf("storetest: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(context.Background(), name); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})
	return urlFor(name)
}

// UnusedDB returns the URL of a database that does not exist, for tests of
// code that creates it. Whatever exists under that name is dropped when the
// test ends.
func UnusedDB(t testing.TB) string {
	t.Helper()
	name := "userapi_test_" + randomSuffix()
	t.Cleanup(func() {
		if err := dropDatabase(context.Background(), name); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})
	return urlFor(name)
}

// NewPool returns a small pool on a new database (see NewDB), closed when the
// test ends. Pools stay small: the server allows 100 connections in all, and
// test packages run in parallel.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return Pool(t, NewDB(t), 4)
}

// Pool opens a pool of at most maxConns connections on dbURL, closed when
// the test ends; through a pgbouncer in transaction mode with
// USERAPI_TEST_PGBOUNCER=on.
func Pool(t testing.TB, dbURL string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	return PoolWith(t, dbURL, maxConns, nil)
}

// PoolWith is Pool with its configuration changed by configure first (a
// tracer that watches the statements, say).
func PoolWith(t testing.TB, dbURL string, maxConns int32, configure func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	if ThroughPgBouncer() && onSharedServer(dbURL) {
		if cfg, err = pgxpool.ParseConfig(sharedPgBouncer(t).Via(dbURL)); err != nil {
			t.Fatal(err)
		}
		cfg.MaxConns = maxConns
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe // as store.Open with Pooler
	}
	if configure != nil {
		configure(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// BaseURL is the server tests run against: DATABASE_URL when set, otherwise
// the machine's PostgreSQL on 127.0.0.1:5432.
func BaseURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return defaultURL
}

func urlFor(database string) string {
	u, err := url.Parse(BaseURL())
	if err != nil {
		panic(fmt.Sprintf("storetest: DATABASE_URL is not a URL: %v", err))
	}
	u.Path = "/" + database
	return u.String()
}

func createTemplate() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "userapi_tpl_" + randomSuffix()
	if err := execAdmin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	pool, err := pgxpool.New(ctx, urlFor(name))
	if err != nil {
		return "", err
	}
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool); err != nil {
		_ = dropDatabase(ctx, name)
		return "", err
	}
	return name, nil
}

func dropDatabase(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return execAdmin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// execAdmin runs one statement on the server's postgres database.
func execAdmin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, urlFor("postgres"))
	if err != nil {
		return fmt.Errorf("PostgreSQL is not reachable at %s (set DATABASE_URL, or run the tests with make test, which starts one): %w", redacted(), err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func redacted() string {
	u, err := url.Parse(BaseURL())
	if err != nil {
		return "DATABASE_URL"
	}
	return u.Redacted()
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
