// Package server is the HTTP layer: it serves the operations of openapi.yaml
// through the generated strict interface, checks every request against the
// document, and turns every error into an RFC 9457 problem.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"sigs.k8s.io/yaml"

	"userapi"
	"userapi/feed"
	"userapi/store"
	"userapi/webhook"
)

// bodyLimit is the largest request body accepted, in bytes.
const bodyLimit = 1 << 20

// Options are the parts of the service that are optional or configurable.
type Options struct {
	// Checks are the dependencies /health reports.
	Checks []Check
	// Ready decides what /readyz answers; nil is always ready.
	Ready *Readiness
	// Auth checks API keys; nil lets everyone do everything (USERAPI_AUTH=off).
	Auth KeyChecker
	// Tokens verifies the identity provider's access tokens beside the API
	// keys of Auth; nil accepts keys only. Used only with Auth.
	Tokens TokenVerifier
	// RateLimit limits each client; nil limits nothing.
	RateLimit *RateLimit
	// Tracing makes a span per request for the global OpenTelemetry tracer
	// (see package tracing).
	Tracing bool
	// CORSOrigins are the browser origins allowed to call the API (such as
	// https://app.example.com); none means no CORS headers at all.
	CORSOrigins []string
	// TrustedProxies are the peers whose X-Forwarded-For and X-Real-IP
	// headers name the client; nobody else's are believed.
	TrustedProxies []*net.IPNet
	// Jobs serves /users/{id}/process and /jobs; nil answers 500 there.
	Jobs JobService
	// Webhooks serves /webhooks; nil answers 500 there.
	Webhooks store.WebhookService
	// WebhookAllowPrivate accepts subscription URLs whose host is a
	// loopback or private address.
	WebhookAllowPrivate bool
	// WebhookTimeout bounds a test delivery (DefaultWebhookTimeout when
	// zero), as Options.WebhookTimeout of package jobs bounds the others.
	WebhookTimeout time.Duration
	// WebhookRotationOverlap is how long a secret replaced by a rotation
	// keeps signing deliveries beside the new one
	// (DefaultWebhookRotationOverlap when zero).
	WebhookRotationOverlap time.Duration
	// WebhooksPerKey is how many subscriptions one API key may make
	// (DefaultWebhooksPerKey when zero): each adds a delivery to every event.
	WebhooksPerKey int
	// Admin, when set, is mounted at AdminPrefix (the job dashboard). It
	// sits outside openapi.yaml and its validation. With Auth, it needs a
	// key with the admin scope (see adminOnly); it always refuses changes sent
	// from other sites (see mountAdmin).
	Admin http.Handler
	// Observer, when set, is told of every answered request and every
	// rate-limit refusal (metrics).
	Observer Observer
	// Idempotency stores the answers to requests sent with an
	// Idempotency-Key; nil answers 500 to those requests.
	Idempotency *store.Idempotency
	// IdempotencyTTL is how long such an answer is replayed
	// (DefaultIdempotencyTTL when zero).
	IdempotencyTTL time.Duration
	// RequestTimeout bounds each request, with every database and Redis call
	// it makes; past it the answer is 503 with Retry-After. Zero sets none.
	RequestTimeout time.Duration
	// JSONMaxKeys and JSONMaxDepth bound a JSON body before it is
	// validated: members in one object, and objects and arrays inside one
	// another (DefaultJSONMaxKeys and DefaultJSONMaxDepth when zero).
	JSONMaxKeys, JSONMaxDepth int
	// HealthMaxAge is how old a /health answer may be (DefaultHealthMaxAge
	// when zero).
	HealthMaxAge time.Duration
	// Reads, when set, sends each caller's lag-tolerant reads to read
	// replicas that have its last write, and is told of every write.
	Reads ReadRouter
	// Exporter streams GET /users/export: the store itself, not a cache
	// over it (when nil, the users given to New if they can).
	Exporter store.UserExporter
	// Events serves GET /events; nil answers 500 there.
	Events store.EventLog
	// Feed follows the event log for GET /events/stream (with Events);
	// nil answers 500 there.
	Feed *feed.Feed
	// StreamKeepAlive is how long a stream stays silent before it sends a
	// comment line (DefaultStreamKeepAlive when zero).
	StreamKeepAlive time.Duration
	// Replayer serves the webhook replay and retry operations; nil answers
	// 500 there.
	Replayer Replayer
	// Audit serves GET /audit; nil answers 500 there.
	Audit store.AuditLog
	// ExactCountWithin bounds the count GET /users?count=exact makes;
	// past it the page gets the estimate (store.DefaultExactCountWithin
	// when zero).
	ExactCountWithin time.Duration
}

// Observer is told what the server did, for metrics.
type Observer interface {
	// ObserveRequest is called once per answered request. route is the
	// route template, such as /users/:id, or UnmatchedRoute; method is one
	// of the standard methods or "OTHER"; both have few possible values.
	ObserveRequest(route, method string, status int, latency time.Duration)
	// AuthRefused is called for each request refused for its API key, with
	// why: "missing", "invalid", "revoked", "expired" (401) or "scope" (403).
	AuthRefused(reason string)
	// RateLimited is called for each refusal, with the budget spent:
	// "reads" or "writes".
	RateLimited(budget string)
}

// UnmatchedRoute is the route Observer gets for a request no route matched,
// so that unknown paths add no label values.
const UnmatchedRoute = "unmatched"

// Defaults of Options.
const (
	DefaultWebhooksPerKey         = 100
	DefaultWebhookTimeout         = 5 * time.Second
	DefaultWebhookRotationOverlap = 24 * time.Hour
)

// AdminPrefix is where Options.Admin is mounted.
const AdminPrefix = "/admin/jobs"

// New returns the HTTP handler for the whole service.
func New(logger *slog.Logger, users store.UserService, opts Options) (*echo.Echo, error) {
	spec, err := LoadSpec()
	if err != nil {
		return nil, err
	}
	ops, err := operations(spec)
	if err != nil {
		return nil, err
	}
	if err := checkProblemTypes(); err != nil {
		return nil, err
	}
	specJSON, err := yaml.YAMLToJSON(userapi.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("convert openapi.yaml to JSON: %w", err)
	}
	h := &Handler{
		users: users, jobs: opts.Jobs, webhooks: opts.Webhooks, allowPrivate: opts.WebhookAllowPrivate, auth: opts.Auth != nil,
		checks: opts.Checks, ready: opts.Ready, specYAML: userapi.OpenAPI, specJSON: specJSON,
		exporter: opts.Exporter, exactCountWithin: opts.ExactCountWithin,
		events: opts.Events, feed: opts.Feed, streamKeepAlive: opts.StreamKeepAlive, replayer: opts.Replayer,
		audit: opts.Audit,
	}
	if h.streamKeepAlive <= 0 {
		h.streamKeepAlive = DefaultStreamKeepAlive
	}
	h.health = newHealthCache(opts.HealthMaxAge, h.probe)
	if h.webhooksPerKey = opts.WebhooksPerKey; h.webhooksPerKey <= 0 {
		h.webhooksPerKey = DefaultWebhooksPerKey
	}
	if h.exporter == nil {
		h.exporter, _ = users.(store.UserExporter)
	}
	if h.rotationOverlap = opts.WebhookRotationOverlap; h.rotationOverlap <= 0 {
		h.rotationOverlap = DefaultWebhookRotationOverlap
	}
	timeout := opts.WebhookTimeout
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	h.sender = webhook.NewClient(timeout, opts.WebhookAllowPrivate)

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(logger)
	e.IPExtractor = ipExtractor(opts.TrustedProxies)
	labels := &routeLabels{known: map[string]bool{}}
	addRoutes(e, logger, ops, h, specJSON, opts, labels)
	// Filled once here, before any request, and only read afterwards.
	for _, r := range e.Routes() {
		labels.known[r.Path] = true
	}
	return e, nil
}

// LoadSpec parses and checks the embedded openapi.yaml.
func LoadSpec() (*openapi3.T, error) {
	spec, err := openapi3.NewLoader().LoadFromData(userapi.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := spec.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml is invalid: %w", err)
	}
	return spec, nil
}
