package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PoolConfig says how to reach PostgreSQL and how big the pool may grow.
type PoolConfig struct {
	URL      string
	MinConns int32
	MaxConns int32
	// StatementTimeout stops any one statement that runs longer.
	StatementTimeout time.Duration
	// IdleInTxTimeout ends sessions that sit in an open transaction doing
	// nothing, so a stuck client cannot hold row locks forever.
	IdleInTxTimeout time.Duration
	// Tracer, when set, observes every statement (tracing spans).
	Tracer pgx.QueryTracer
	// Pooler says URL reaches PostgreSQL through a pooler in transaction
	// mode (PgBouncer), which hands each transaction, or each statement
	// outside one, to any server connection. Statements then use no named
	// prepared statement (each is described once per connection, then sent
	// with its types in one round trip), and no session setting is sent
	// at start-up: such a pooler refuses them, so StatementTimeout and
	// IdleInTxTimeout belong on the database role instead. The database
	// must exist: it is not created through a pooler.
	Pooler bool
	// Lazy opens the pool without waiting for a connection, and creates
	// no database: for a server that may be down now (a read replica).
	Lazy bool
}

// Open connects a pool to the database in cfg.URL, creating the database
// first when the server answers that it does not exist. It returns once one
// connection works, or with an error saying why none could be made.
func Open(ctx context.Context, cfg PoolConfig) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	pcfg.MinConns = cfg.MinConns
	pcfg.MaxConns = cfg.MaxConns
	params := pcfg.ConnConfig.RuntimeParams
	if cfg.Pooler {
		pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
		cfg.StatementTimeout, cfg.IdleInTxTimeout = 0, 0
	}
	if cfg.StatementTimeout > 0 {
		params["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	}
	if cfg.IdleInTxTimeout > 0 {
		params["idle_in_transaction_session_timeout"] = strconv.FormatInt(cfg.IdleInTxTimeout.Milliseconds(), 10)
	}
	if cfg.Tracer != nil {
		pcfg.ConnConfig.Tracer = cfg.Tracer
	}
	if _, ok := params["application_name"]; !ok {
		params["application_name"] = "userapi"
	}

	if !cfg.Pooler && !cfg.Lazy {
		if err := ensureDatabase(ctx, pcfg.ConnConfig); err != nil {
			return nil, err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	if cfg.Lazy {
		return pool, nil
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %q on %s:%d: %w", pcfg.ConnConfig.Database, pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, err)
	}
	return pool, nil
}

// BehindPooler reports whether pool was opened with PoolConfig.Pooler (or
// set up as it would be): code that would otherwise hold a session on it,
// such as a job queue's LISTEN, must not.
func BehindPooler(pool *pgxpool.Pool) bool {
	return pool.Config().ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeCacheDescribe
}

// ensureDatabase creates the configured database when the server says it does
// not exist. Several instances may race here; losing the race is fine.
func ensureDatabase(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		return fmt.Errorf("connect to database %q on %s:%d: %w", cfg.Database, cfg.Host, cfg.Port, err)
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err = pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("database %q does not exist and the server's postgres database is unreachable to create it: %w", cfg.Database, err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: another instance won
		err = nil
	}
	if err != nil {
		return fmt.Errorf("create database %q: %w", cfg.Database, err)
	}
	return nil
}

// translate turns driver errors into the package's sentinels, keeping the
// original error in the chain for the logs.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if Unavailable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", ErrConflict, err)
		case "22021", "22P05": // character_not_in_repertoire, untranslatable_character
			return fmt.Errorf("%w: %w", ErrInvalidText, err)
		}
	}
	return err
}

// Unavailable reports whether err means the database could not be reached
// or did not answer in time: a failure worth retrying shortly, not a fault
// of the request. It is the one test for that in the service; code that runs
// statements of its own on the store's database (the job queue) uses it too.
func Unavailable(err error) bool {
	// Failing to obtain a connection comes first, whatever SQLSTATE the
	// server sent with its refusal: a database that does not allow
	// connections (55000), a server starting up or full, all come back
	// once the server does.
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || // connection exception
			pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" || // shutting down, starting up
			pgErr.Code == "53300" || // too many connections
			pgErr.Code == "57014" // statement timeout
	}
	var netErr net.Error
	// A connection that ends mid-answer (the server was killed) reads as
	// an unexpected EOF.
	return errors.As(err, &netErr) || pgconn.SafeToRetry(err) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}
