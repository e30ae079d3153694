package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
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

	DatabaseURL       string
	DatabaseDirectURL string // "" when DatabaseURL reaches PostgreSQL itself
	ReplicaURLs       []string
	ReplicaMaxLag     time.Duration
	DBMinConns        int32
	DBMaxConns        int32
	StatementTimeout  time.Duration
	IdleInTxTimeout   time.Duration

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

	DrainDelay        time.Duration
	ShutdownTimeout   time.Duration
	ReadHeaderTimeout time.Duration
	RequestTimeout    time.Duration
	ExactCountTimeout time.Duration
	IdempotencyTTL    time.Duration
	JSONMaxKeys       int32
	JSONMaxDepth      int32

	Workers                int32
	ProcessDelay           time.Duration
	WebhookConcurrency     int32
	WebhookTimeout         time.Duration
	WebhookAllowPrivate    bool
	WebhooksPerKey         int32
	WebhookRotationOverlap time.Duration
	JobRetryBackoff        time.Duration
	JobRescueAfter         time.Duration
	AdminUI                bool

	EventRetention  time.Duration
	AuditRetention  time.Duration
	PurgeAfter      time.Duration
	EventPoll       time.Duration
	StreamsPerKey   int32
	StreamBuffer    int32
	StreamKeepAlive time.Duration

	Auth bool // false only for local experiments

	JWTIssuer     string // "" when only API keys are accepted
	JWTAudience   string
	JWTJWKSURL    string // "" to discover it from the issuer
	JWTScopeClaim string
}

// setting is one environment variable: its name, its default, what it
// means (Markdown: --help drops the backticks) and its parser. The table in
// settings is the one place each fact lives; --help and the configuration
// table in docs/operations.md are made from it.
type setting struct {
	name  string
	def   string
	help  string
	parse func(string) error
}

// settings returns every setting, parsing into c.
func settings(c *config) []setting {
	return []setting{
		{"USERAPI_ADDR", ":8080", "Listen address of the API", func(v string) error {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return errors.New("must be host:port or :port")
			}
			c.Addr = v
			return nil
		}},
		{"USERAPI_METRICS_ADDR", "127.0.0.1:9090", "Listen address of `GET /metrics` (Prometheus), apart from the API; `off` for none. Must differ from `USERAPI_ADDR`", func(v string) error {
			if v == "off" {
				return nil
			}
			if _, _, err := net.SplitHostPort(v); err != nil {
				return errors.New(`must be host:port, :port or "off"`)
			}
			c.MetricsAddr = v
			return nil
		}},
		{"USERAPI_LOG_LEVEL", "info", "`debug`, `info`, `warn` or `error`", func(v string) error {
			levels := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}
			l, ok := levels[strings.ToLower(v)]
			if !ok {
				return errors.New("must be debug, info, warn or error")
			}
			c.LogLevel = l
			return nil
		}},
		{"DATABASE_URL", "postgres://postgres@127.0.0.1:5432/userapi?sslmode=disable", "PostgreSQL; the database is created if missing", func(v string) error {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				return errors.New("must be a postgres:// URL")
			}
			c.DatabaseURL = v
			return nil
		}},
		{"DATABASE_DIRECT_URL", "none", "PostgreSQL itself, when `DATABASE_URL` goes through a pooler in transaction mode (PgBouncer); `none` when it does not. Migrations (a session lock) and LISTEN use it; the pool then sends no named prepared statements and no session settings (put the statement and idle-in-transaction timeouts on the role), and jobs are found by polling", func(v string) error {
			if v == "none" {
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				return errors.New(`must be a postgres:// URL or "none"`)
			}
			c.DatabaseDirectURL = v
			return nil
		}},
		{"DATABASE_REPLICA_URLS", "none", "Comma-separated streaming replicas of `DATABASE_URL`'s database, or `none`. Lists, search and export read from one that has replayed the caller's last write (remembered in Redis; without Redis every read goes to the primary)", func(v string) error {
			if v == "none" {
				return nil
			}
			for _, r := range strings.Split(v, ",") {
				r = strings.TrimSpace(r)
				u, err := url.Parse(r)
				if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
					return errors.New(`must be postgres:// URLs, comma-separated, or "none"`)
				}
				c.ReplicaURLs = append(c.ReplicaURLs, r)
			}
			return nil
		}},
		{"USERAPI_REPLICA_MAX_LAG", "5s", "A replica further behind the primary than this, or down, serves no reads until it catches up", positiveDuration(&c.ReplicaMaxLag)},
		{"USERAPI_DB_MIN_CONNS", "10", "Database connections kept open", intIn(&c.DBMinConns, 0, 1000)},
		{"USERAPI_DB_MAX_CONNS", "50", "Most database connections opened", intIn(&c.DBMaxConns, 1, 1000)},
		{"USERAPI_DB_STATEMENT_TIMEOUT", "30s", "Longest a statement may run", duration(&c.StatementTimeout)},
		{"USERAPI_DB_IDLE_IN_TX_TIMEOUT", "10s", "Longest a session may idle inside a transaction", duration(&c.IdleInTxTimeout)},
		{"REDIS_URL", "redis://127.0.0.1:6379/0", "Redis for the cache and the shared rate limits; `off` for none. Unreachable is fine: reads go to PostgreSQL until it answers. A Redis Cluster is found by itself: name a node, or several as seeds with `?addr=host:port&addr=…`", func(v string) error {
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
		{"USERAPI_CACHE_TTL", "5m", "Longest a cached user lives; writes invalidate at once, so this only bounds memory", positiveDuration(&c.CacheTTL)},
		{"USERAPI_CACHE_NEGATIVE_TTL", "10s", `How long "no such user" or "no such key" is remembered`, positiveDuration(&c.CacheNegativeTTL)},
		{"USERAPI_REDIS_TIMEOUT", "50ms", "Longest wait for one Redis call; a slower answer counts as Redis being down, and Redis is bypassed for a second", positiveDuration(&c.RedisTimeout)},
		{"USERAPI_INVALIDATION_POLL", "1s", "How often each instance reads the database's record of cache invalidations, besides when PostgreSQL notifies it of one", positiveDuration(&c.InvalidationPoll)},
		{"USERAPI_CACHE_PREFIX", "userapi:", "Start of every Redis key, for sharing one Redis", func(v string) error {
			if len(v) > 100 || strings.ContainsAny(v, " \t\r\n") {
				return errors.New("must be at most 100 characters, without spaces")
			}
			c.CachePrefix = v
			return nil
		}},
		{"USERAPI_RATE_LIMIT", "100/1m", "Reads per client and period (`N/DURATION`), or `off`", policy(&c.RateLimit)},
		{"USERAPI_RATE_LIMIT_WRITES", "20/1m", "Writes (`POST`, `PUT`, `PATCH`, `DELETE`) per client and period, or `off`", policy(&c.RateLimitWrites)},
		{"USERAPI_TRUSTED_PROXIES", "none", "Comma-separated CIDR ranges of proxies whose `X-Forwarded-For` / `X-Real-IP` name the client, or `none`", func(v string) error {
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
		{"USERAPI_CORS_ORIGINS", "none", "Browser origins allowed to call the API (comma-separated scheme://host[:port], such as `https://app.example.com,http://localhost:5173`; a trailing `/` is dropped, as browsers send none), `*` for any origin (no cookies are ever allowed: keys travel in `Authorization`), or `none` for no CORS headers. Refused origins are logged once each", func(v string) error {
			if v == "none" {
				return nil
			}
			for _, o := range strings.Split(v, ",") {
				o = strings.TrimSuffix(strings.TrimSpace(o), "/")
				u, err := url.Parse(o)
				if o != "*" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "") {
					return fmt.Errorf("%q is not an origin such as https://app.example.com (scheme, host and port only)", o)
				}
				c.CORSOrigins = append(c.CORSOrigins, o)
			}
			if len(c.CORSOrigins) > 1 && slices.Contains(c.CORSOrigins, "*") {
				return errors.New("`*` already allows every origin: give it alone, or list the origins without it")
			}
			return nil
		}},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "none", "OTLP/HTTP collector (base URL, such as `http://localhost:4318`) to send traces to, or `none`: tracing is off without it", func(v string) error {
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
		{"USERAPI_DRAIN_DELAY", "5s", "After SIGTERM, how long `/readyz` answers `503` while requests are still served (with `Connection: close`), before the listener closes", duration(&c.DrainDelay)},
		{"USERAPI_SHUTDOWN_TIMEOUT", "25s", "Grace period for in-flight requests and running jobs on SIGTERM", duration(&c.ShutdownTimeout)},
		{"USERAPI_READ_HEADER_TIMEOUT", "5s", "Longest a client may take to send a request's headers; slower connections are closed. Headers over 64 KiB get `431`", positiveDuration(&c.ReadHeaderTimeout)},
		{"USERAPI_REQUEST_TIMEOUT", "10s", "Longest any request may take, including every database and Redis call it makes; past it the answer is `503` with `Retry-After`. `GET /users/export` streams for as long as its client reads, each of its statements bounded by `USERAPI_DB_STATEMENT_TIMEOUT`", positiveDuration(&c.RequestTimeout)},
		{"USERAPI_EXACT_COUNT_TIMEOUT", "500ms", "Longest `GET /users?count=exact` counts; past it the page carries the planner's estimate, with `total_is_estimate: true`", positiveDuration(&c.ExactCountTimeout)},
		{"USERAPI_JSON_MAX_KEYS", "1000", "Most members one JSON object in a request body may have; more is a `422` naming `body`, answered before the body is validated", intIn(&c.JSONMaxKeys, 1, 1000000)},
		{"USERAPI_JSON_MAX_DEPTH", "32", "Deepest nesting of objects and arrays in a JSON request body; deeper is a `422` naming `body`", intIn(&c.JSONMaxDepth, 1, 10000)},
		// Shorter than a minute would turn client retries into repeats.
		{"USERAPI_IDEMPOTENCY_TTL", "24h", "How long a successful answer to a request with an `Idempotency-Key` is replayed, from 1m to 24h", durationIn(&c.IdempotencyTTL, time.Minute, 24*time.Hour, "must be a duration from 1m to 24h, such as 1h")},
		{"USERAPI_WORKERS", "10", "Profile jobs this process runs at once; `0` runs no jobs here (an API-only instance)", intIn(&c.Workers, 0, 1000)},
		{"USERAPI_PROCESS_DELAY", "2s", "Extra time each profile job takes, standing in for slow work", duration(&c.ProcessDelay)},
		{"USERAPI_WEBHOOK_CONCURRENCY", "16", "Webhook deliveries this process makes at once", intIn(&c.WebhookConcurrency, 1, 1000)},
		{"USERAPI_WEBHOOK_TIMEOUT", "5s", "Longest one delivery attempt may take, connecting included", positiveDuration(&c.WebhookTimeout)},
		{"USERAPI_WEBHOOK_ALLOW_PRIVATE", "off", "`on` lets webhooks reach loopback, private and link-local addresses. Keep it `off` in production: otherwise anyone who can subscribe can make the service call into its own network", onOff(&c.WebhookAllowPrivate)},
		{"USERAPI_WEBHOOKS_PER_KEY", "100", "Subscriptions one API key may make (each adds a delivery per event); past it, `POST /webhooks` answers `422`", intIn(&c.WebhooksPerKey, 1, 100000)},
		{"USERAPI_WEBHOOK_ROTATION_OVERLAP", "24h", "After `POST /webhooks/{id}/rotate-secret`, how long the replaced secret keeps signing deliveries beside the new one, so that receivers can switch without missing any", positiveDuration(&c.WebhookRotationOverlap)},
		// Go durations have no unit for days: 720h is 30 days.
		{"USERAPI_EVENT_RETENTION", "720h", "How long the event log keeps events (`GET /events`, the stream, webhook replays); a periodic job deletes older ones. Reading after an event no longer kept is `410`", durationIn(&c.EventRetention, time.Hour, 24*time.Hour*3650, "must be a duration from 1h to 87600h (ten years), such as 720h for 30 days")},
		{"USERAPI_AUDIT_RETENTION", "8760h", "How long the audit log (`GET /audit`) keeps entries; a periodic job deletes older ones", durationIn(&c.AuditRetention, time.Hour, 24*time.Hour*3650, "must be a duration from 1h to 87600h (ten years), such as 8760h for 365 days")},
		{"USERAPI_PURGE_AFTER", "720h", "How long a deleted user is kept (hidden, its email address reserved, restorable with `POST /users/{id}/undelete`) before a periodic job erases it and its personal data", durationIn(&c.PurgeAfter, time.Minute, 24*time.Hour*3650, "must be a duration from 1m to 87600h (ten years), such as 720h for 30 days")},
		{"USERAPI_EVENT_POLL", "500ms", "How often each instance reads the event log for its streams, besides when PostgreSQL notifies it of a new event", positiveDuration(&c.EventPoll)},
		{"USERAPI_STREAMS_PER_KEY", "10", "Event streams (`GET /events/stream`) one API key may hold open on one instance; past it the answer is `429`", intIn(&c.StreamsPerKey, 1, 100000)},
		{"USERAPI_STREAM_BUFFER", "256", "Events an event stream may fall behind the log before it is ended as too slow (its client resumes from its last id)", intIn(&c.StreamBuffer, 1, 100000)},
		{"USERAPI_STREAM_KEEPALIVE", "15s", "How long an event stream stays silent before it sends a comment line, so that proxies keep it open", positiveDuration(&c.StreamKeepAlive)},
		{"USERAPI_JOB_RETRY_BACKOFF", "1s", "Wait before a failed job's first retry; it doubles with each attempt, up to 1h, ±10%", positiveDuration(&c.JobRetryBackoff)},
		{"USERAPI_JOB_RESCUE_AFTER", "1h", "A job running this long (and longer than its own time limit) is presumed lost with its process and run again; must exceed the longest job", positiveDuration(&c.JobRescueAfter)},
		{"USERAPI_ADMIN_UI", "off", "`on` serves the River job dashboard at `/admin/jobs`. With API keys on, the browser asks for a password: give a key with the `admin` scope (any user name)", onOff(&c.AdminUI)},
		{"USERAPI_JWT_ISSUER", "none", "Issuer (`iss`) of the identity provider whose access tokens are accepted beside API keys, such as `https://idp.example.com/realms/main`; `none` accepts keys only. Needs `USERAPI_JWT_AUDIENCE`", func(v string) error {
			if v == "none" {
				return nil
			}
			if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return errors.New(`must be the issuer's URL, such as https://idp.example.com, or "none"`)
			}
			c.JWTIssuer = v
			return nil
		}},
		{"USERAPI_JWT_AUDIENCE", "none", "The audience (`aud`) tokens must be meant for, as the identity provider names this API", func(v string) error {
			if v != "none" {
				c.JWTAudience = v
			}
			return nil
		}},
		{"USERAPI_JWT_JWKS_URL", "discover", "Where the identity provider publishes its signing keys; `discover` reads it from the issuer's `/.well-known/openid-configuration`", func(v string) error {
			if v == "discover" {
				return nil
			}
			if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return errors.New(`must be an http(s) URL or "discover"`)
			}
			c.JWTJWKSURL = v
			return nil
		}},
		{"USERAPI_JWT_SCOPE_CLAIM", "scope", "The token claim holding its scopes: a space-separated string (as `scope` is) or a list of strings (such as `permissions`)", func(v string) error {
			if strings.ContainsAny(v, " \t") {
				return errors.New("must be a claim name, without spaces")
			}
			c.JWTScopeClaim = v
			return nil
		}},
		{"USERAPI_AUTH", "on", "`off` serves every request without an API key, with a warning at start-up: for local experiments only, never in production", onOff(&c.Auth)},
	}
}

// loadConfig reads the environment through getenv. A bad value stops with an
// error naming the variable and what is wrong with it.
func loadConfig(getenv func(string) string) (config, error) {
	var c config
	for _, s := range settings(&c) {
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
	if (c.JWTIssuer == "") != (c.JWTAudience == "") {
		return config{}, errors.New("USERAPI_JWT_ISSUER and USERAPI_JWT_AUDIENCE go together: set both to accept the identity provider's tokens, or neither")
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

// onOff is the one parser of switches: on/off, and true/false or 1/0 for
// those used to them, in any case.
func onOff(dst *bool) func(string) error {
	return func(v string) error {
		switch strings.ToLower(v) {
		case "on", "true", "1":
			*dst = true
		case "off", "false", "0":
			*dst = false
		default:
			return errors.New("must be on or off (or true/false, 1/0)")
		}
		return nil
	}
}

// durationIn parses a duration from lo to hi; message says which, by
// example.
func durationIn(dst *time.Duration, lo, hi time.Duration, message string) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < lo || d > hi {
			return errors.New(message)
		}
		*dst = d
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
