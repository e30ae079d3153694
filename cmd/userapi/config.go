package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"userapi/ratelimit"
)

// config is every setting of the service, read once from the environment.
type config struct {
	Addr        string // USERAPI_ADDR
	MetricsAddr string // "" when metrics are off
	LogLevel    slog.Level

	DatabaseURL      string
	DBMinConns       int32
	DBMaxConns       int32
	StatementTimeout time.Duration
	IdleInTxTimeout  time.Duration

	RedisURL         string // "" when the cache is off
	CacheTTL         time.Duration
	CacheNegativeTTL time.Duration
	CachePrefix      string
	RedisTimeout     time.Duration
	InvalidationPoll time.Duration

	RateLimit       ratelimit.Policy
	RateLimitWrites ratelimit.Policy
	TrustedProxies  []*net.IPNet
	CORSOrigins     []string
	OTLPEndpoint    string // "" when tracing is off

	ShutdownTimeout   time.Duration
	ReadHeaderTimeout time.Duration
	IdempotencyTTL    time.Duration

	Workers             int32
	ProcessDelay        time.Duration
	WebhookConcurrency  int32
	WebhookTimeout      time.Duration
	WebhookAllowPrivate bool
	JobRetryBackoff     time.Duration
	JobRescueAfter      time.Duration
	AdminUI             bool

	Auth bool // false only for local experiments
}

// setting is one environment variable: its name, default and parser.
type setting struct {
	name  string
	def   string
	parse func(string) error
}

// loadConfig reads the environment through getenv. A bad value stops with an
// error naming the variable and what is wrong with it.
func loadConfig(getenv func(string) string) (config, error) {
	var c config
	settings := []setting{
		{"USERAPI_ADDR", ":8080", func(v string) error {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return errors.New("must be host:port or :port")
			}
			c.Addr = v
			return nil
		}},
		{"USERAPI_METRICS_ADDR", "127.0.0.1:9090", func(v string) error {
			if v == "off" {
				return nil
			}
			if _, _, err := net.SplitHostPort(v); err != nil {
				return errors.New(`must be host:port, :port or "off"`)
			}
			c.MetricsAddr = v
			return nil
		}},
		{"USERAPI_LOG_LEVEL", "info", func(v string) error {
			return c.LogLevel.UnmarshalText([]byte(v))
		}},
		{"DATABASE_URL", "postgres://postgres@127.0.0.1:5432/userapi?sslmode=disable", func(v string) error {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				return errors.New("must be a postgres:// URL")
			}
			c.DatabaseURL = v
			return nil
		}},
		{"USERAPI_DB_MIN_CONNS", "10", intIn(&c.DBMinConns, 0, 1000)},
		{"USERAPI_DB_MAX_CONNS", "50", intIn(&c.DBMaxConns, 1, 1000)},
		{"USERAPI_DB_STATEMENT_TIMEOUT", "30s", duration(&c.StatementTimeout)},
		{"USERAPI_DB_IDLE_IN_TX_TIMEOUT", "10s", duration(&c.IdleInTxTimeout)},
		{"REDIS_URL", "redis://127.0.0.1:6379/0", func(v string) error {
			if v == "off" {
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
				return errors.New("must be a redis://, rediss:// or unix:// URL")
			}
			c.RedisURL = v
			return nil
		}},
		{"USERAPI_CACHE_TTL", "5m", positiveDuration(&c.CacheTTL)},
		{"USERAPI_CACHE_NEGATIVE_TTL", "10s", positiveDuration(&c.CacheNegativeTTL)},
		{"USERAPI_REDIS_TIMEOUT", "50ms", positiveDuration(&c.RedisTimeout)},
		{"USERAPI_INVALIDATION_POLL", "1s", positiveDuration(&c.InvalidationPoll)},
		{"USERAPI_CACHE_PREFIX", "userapi:", func(v string) error {
			if len(v) > 100 || strings.ContainsAny(v, " \t\r\n") {
				return errors.New("must be at most 100 characters, without spaces")
			}
			c.CachePrefix = v
			return nil
		}},
		{"USERAPI_RATE_LIMIT", "100/1m", policy(&c.RateLimit)},
		{"USERAPI_RATE_LIMIT_WRITES", "20/1m", policy(&c.RateLimitWrites)},
		{"USERAPI_TRUSTED_PROXIES", "none", func(v string) error {
			if v == "none" {
				return nil
			}
			for _, cidr := range strings.Split(v, ",") {
				_, n, err := net.ParseCIDR(strings.TrimSpace(cidr))
				if err != nil {
					return fmt.Errorf("%q is not a CIDR range such as 10.0.0.0/8", strings.TrimSpace(cidr))
				}
				c.TrustedProxies = append(c.TrustedProxies, n)
			}
			return nil
		}},
		{"USERAPI_CORS_ORIGINS", "none", func(v string) error {
			if v == "none" {
				return nil
			}
			for _, o := range strings.Split(v, ",") {
				o = strings.TrimSpace(o)
				u, err := url.Parse(o)
				if o != "*" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "") {
					return fmt.Errorf("%q is not an origin such as https://app.example.com", o)
				}
				c.CORSOrigins = append(c.CORSOrigins, o)
			}
			return nil
		}},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "none", func(v string) error {
			if v == "none" {
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errors.New("must be an http:// or https:// URL of an OTLP/HTTP collector, such as http://localhost:4318")
			}
			c.OTLPEndpoint = v
			return nil
		}},
		{"USERAPI_SHUTDOWN_TIMEOUT", "25s", duration(&c.ShutdownTimeout)},
		{"USERAPI_READ_HEADER_TIMEOUT", "5s", positiveDuration(&c.ReadHeaderTimeout)},
		{"USERAPI_IDEMPOTENCY_TTL", "24h", func(v string) error {
			// Shorter than a minute would turn client retries into repeats.
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Minute || d > 24*time.Hour {
				return errors.New("must be a duration from 1m to 24h, such as 1h")
			}
			c.IdempotencyTTL = d
			return nil
		}},
		{"USERAPI_WORKERS", "10", intIn(&c.Workers, 0, 1000)},
		{"USERAPI_PROCESS_DELAY", "2s", duration(&c.ProcessDelay)},
		{"USERAPI_WEBHOOK_CONCURRENCY", "16", intIn(&c.WebhookConcurrency, 1, 1000)},
		{"USERAPI_WEBHOOK_TIMEOUT", "5s", positiveDuration(&c.WebhookTimeout)},
		{"USERAPI_WEBHOOK_ALLOW_PRIVATE", "false", boolean(&c.WebhookAllowPrivate)},
		{"USERAPI_JOB_RETRY_BACKOFF", "1s", positiveDuration(&c.JobRetryBackoff)},
		{"USERAPI_JOB_RESCUE_AFTER", "1h", positiveDuration(&c.JobRescueAfter)},
		{"USERAPI_ADMIN_UI", "off", onOff(&c.AdminUI)},
		{"USERAPI_AUTH", "on", onOff(&c.Auth)},
	}
	for _, s := range settings {
		v := strings.TrimSpace(getenv(s.name))
		if v == "" {
			v = s.def
		}
		if err := s.parse(v); err != nil {
			return config{}, fmt.Errorf("%s=%q: %w", s.name, v, err)
		}
	}
	if c.MetricsAddr != "" && c.MetricsAddr == c.Addr {
		// /metrics must never be public: it needs a listener of its own.
		return config{}, fmt.Errorf("USERAPI_METRICS_ADDR=%q: must differ from USERAPI_ADDR", c.MetricsAddr)
	}
	if c.DBMinConns > c.DBMaxConns {
		return config{}, fmt.Errorf("USERAPI_DB_MIN_CONNS=%d: must not exceed USERAPI_DB_MAX_CONNS=%d", c.DBMinConns, c.DBMaxConns)
	}
	return c, nil
}

func intIn(dst *int32, lo, hi int32) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || int32(n) < lo || int32(n) > hi {
			return fmt.Errorf("must be a whole number from %d to %d", lo, hi)
		}
		*dst = int32(n)
		return nil
	}
}

func duration(dst *time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return errors.New("must be a duration such as 500ms, 30s or 5m")
		}
		*dst = d
		return nil
	}
}

func policy(dst *ratelimit.Policy) func(string) error {
	return func(v string) error {
		p, err := ratelimit.ParsePolicy(v)
		*dst = p
		return err
	}
}

func boolean(dst *bool) func(string) error {
	return func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false")
		}
		*dst = b
		return nil
	}
}

func onOff(dst *bool) func(string) error {
	return func(v string) error {
		switch v {
		case "on":
			*dst = true
		case "off":
			*dst = false
		default:
			return errors.New(`must be "on" or "off"`)
		}
		return nil
	}
}

func positiveDuration(dst *time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 24*time.Hour {
			return errors.New("must be a duration from 1ms to 24h, such as 30s or 5m")
		}
		*dst = d
		return nil
	}
}

// usage lists the settings for --help.
const usage = `userapi: user management over HTTP.

Usage:
  userapi serve     apply migrations, then serve HTTP and run background jobs
                    until SIGINT or SIGTERM
  userapi worker    apply migrations, then run background jobs only (no HTTP)
  userapi migrate   apply migrations (the service's and the job queue's) and exit
  userapi keys create --name NAME --scopes SCOPE[,SCOPE...] [--expires 90d]
                    make an API key and print it, once, on stdout; the scopes are
                    users:read, users:write, jobs:read, webhooks:admin and admin
  userapi keys list
                    list the keys: prefix, name, scopes, created, last used, expiry
  userapi keys revoke PREFIX
                    revoke a key at once, on every instance
  userapi keys dev --file PATH
                    print the development key kept in PATH, making it (admin scope)
                    when PATH is missing or its key no longer works (make run uses it)
  userapi --help    show this text

Environment (defaults in brackets):
  USERAPI_ADDR                   listen address [:8080]
  USERAPI_METRICS_ADDR           listen address of GET /metrics (Prometheus), kept apart
                                 from the API; "off" for none [127.0.0.1:9090]
  DATABASE_URL                   PostgreSQL URL; the database is created if missing
                                 [postgres://postgres@127.0.0.1:5432/userapi?sslmode=disable]
  USERAPI_DB_MIN_CONNS           connections kept open [10]
  USERAPI_DB_MAX_CONNS           most connections opened [50]
  USERAPI_DB_STATEMENT_TIMEOUT   longest a statement may run [30s]
  USERAPI_DB_IDLE_IN_TX_TIMEOUT  longest a transaction may sit idle [10s]
  REDIS_URL                      Redis for the cache, or "off" [redis://127.0.0.1:6379/0];
                                 when unreachable the service serves from the database
  USERAPI_CACHE_TTL              longest a cached user lives (writes invalidate at once) [5m]
  USERAPI_CACHE_NEGATIVE_TTL     how long "no such user" is remembered [10s]
  USERAPI_REDIS_TIMEOUT          longest wait for one Redis call; slower counts as Redis
                                 down, bypassed for a second [50ms]
  USERAPI_INVALIDATION_POLL      how often each instance reads the database's record of
                                 cache invalidations besides when notified of one [1s]
  USERAPI_CACHE_PREFIX           start of every Redis key, to share one Redis [userapi:]
  USERAPI_RATE_LIMIT             requests per client and period, or "off" [100/1m]
  USERAPI_RATE_LIMIT_WRITES      POST/PUT/PATCH/DELETE per client and period, or "off" [20/1m]
  USERAPI_TRUSTED_PROXIES        CIDR ranges of proxies whose X-Forwarded-For is believed
                                 (comma-separated, or "none") [none]
  USERAPI_CORS_ORIGINS           browser origins allowed to call the API, comma-separated,
                                 or "none" for no CORS headers [none]
  USERAPI_SHUTDOWN_TIMEOUT       how long in-flight requests and running jobs get on shutdown [25s]
  USERAPI_READ_HEADER_TIMEOUT    longest a client may take to send a request's headers;
                                 slower connections are closed [5s]
  USERAPI_IDEMPOTENCY_TTL        how long a successful answer to a request with an
                                 Idempotency-Key is replayed, from 1m to 24h [24h]
  USERAPI_WORKERS                profile jobs run at once by this process; 0 runs no jobs
                                 here (an API-only instance) [10]
  USERAPI_PROCESS_DELAY          extra time each profile job takes, standing in for slow work [2s]
  USERAPI_WEBHOOK_CONCURRENCY    webhook deliveries made at once by this process [16]
  USERAPI_WEBHOOK_TIMEOUT        longest one delivery attempt may take [5s]
  USERAPI_WEBHOOK_ALLOW_PRIVATE  let webhooks reach loopback and private addresses;
                                 keep false in production [false]
  USERAPI_JOB_RETRY_BACKOFF      wait before a failed job's first retry; doubles each time,
                                 up to 1h [1s]
  USERAPI_JOB_RESCUE_AFTER       a job running this long is presumed lost with its process
                                 and run again; must exceed the longest job [1h]
  USERAPI_ADMIN_UI               "on" serves the job dashboard at /admin/jobs; it takes a key
                                 with the admin scope as its Basic password [off]
  USERAPI_AUTH                   "off" serves every request without an API key: for local
                                 experiments only, never in production [on]
  OTEL_EXPORTER_OTLP_ENDPOINT    OTLP/HTTP collector to send traces to, such as
                                 http://localhost:4318, or "none" [none]
  USERAPI_LOG_LEVEL              debug, info, warn or error [info]
`
