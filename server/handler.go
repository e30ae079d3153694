package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"userapi/feed"
	"userapi/gen"
	"userapi/jobs"
	"userapi/store"
	"userapi/webhook"
)

// Handler implements every operation of the API. It only translates between
// HTTP types and the store; rules live in the store and in openapi.yaml.
type Handler struct {
	users          store.UserService
	jobs           JobService
	webhooks       store.WebhookService
	allowPrivate   bool
	webhooksPerKey int
	// rotationOverlap is how long a rotated-out secret keeps signing;
	// sender makes test deliveries.
	rotationOverlap time.Duration
	sender          *webhook.Client
	auth            bool // keys are checked: some answers depend on the caller's scopes
	checks          []Check
	ready           *Readiness
	health          *healthCache
	// exporter streams GET /users/export; exactCountWithin bounds count=exact.
	exporter         store.UserExporter
	exactCountWithin time.Duration
	// events serves GET /events and feeds the stream; feed follows the log
	// live for GET /events/stream.
	events          store.EventLog
	feed            *feed.Feed
	streamKeepAlive time.Duration
	replayer        Replayer
	audit           store.AuditLog
	specYAML        []byte
	specJSON        []byte
	// encoded keeps the answers to GET /users/{id} of the users read lately.
	encoded encodedUsers
}

var _ gen.StrictServerInterface = (*Handler)(nil)

// errNotValidated is a handler reached by a request the validator did not see.
var errNotValidated = errors.New("request reached its handler without validation")

// specDefault is a query parameter's value. The validator gives a parameter
// left out the default openapi.yaml declares, so no handler repeats it.
func specDefault[T any](p *T) (T, error) {
	if p == nil {
		var zero T
		return zero, errNotValidated
	}
	return *p, nil
}

// Check is one dependency that /health reports.
type Check struct {
	Name string
	// Required dependencies make the service "down" when they fail; others
	// only make it "degraded".
	Required bool
	Probe    func(ctx context.Context) error
	// Backlog, set instead of Probe for a job queue, also reports how many
	// jobs wait and for how long.
	Backlog func(ctx context.Context) (jobs.Backlog, error)
	// Lag, set instead of Probe for a read replica, reports how far
	// behind it is, and an error when it is down or ErrTooFarBehind.
	Lag func() (time.Duration, error)
}

// ErrTooFarBehind is a read replica's Lag error when it lags more than
// allowed.
var ErrTooFarBehind = errors.New("too far behind")

// GetRoot sends browsers to the docs.
func (h *Handler) GetRoot(context.Context, gen.GetRootRequestObject) (gen.GetRootResponseObject, error) {
	return gen.GetRoot302Response{Headers: gen.GetRoot302ResponseHeaders{Location: "/docs"}}, nil
}

// GetSwaggerUI sends browsers to Swagger UI's page.
func (h *Handler) GetSwaggerUI(context.Context, gen.GetSwaggerUIRequestObject) (gen.GetSwaggerUIResponseObject, error) {
	return gen.GetSwaggerUI302Response{Headers: gen.GetSwaggerUI302ResponseHeaders{Location: "/docs/index.html"}}, nil
}

// GetRedoc serves the ReDoc page.
func (h *Handler) GetRedoc(context.Context, gen.GetRedocRequestObject) (gen.GetRedocResponseObject, error) {
	return gen.GetRedoc200TexthtmlResponse{Body: strings.NewReader(redocPage), ContentLength: int64(len(redocPage))}, nil
}

// GetOpenAPIYAML serves openapi.yaml as it is in the repository.
func (h *Handler) GetOpenAPIYAML(context.Context, gen.GetOpenAPIYAMLRequestObject) (gen.GetOpenAPIYAMLResponseObject, error) {
	return gen.GetOpenAPIYAML200ApplicationyamlResponse{Body: bytes.NewReader(h.specYAML), ContentLength: int64(len(h.specYAML))}, nil
}

// GetOpenAPIJSON serves the same document as JSON.
func (h *Handler) GetOpenAPIJSON(context.Context, gen.GetOpenAPIJSONRequestObject) (gen.GetOpenAPIJSONResponseObject, error) {
	return rawJSON(h.specJSON), nil
}

// rawJSON writes bytes that are already JSON, so the document is not
// decoded and encoded again on every request.
type rawJSON []byte

func (r rawJSON) VisitGetOpenAPIJSONResponse(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(r)
	return err
}

// GetLiveness answers as long as the process serves HTTP.
func (h *Handler) GetLiveness(context.Context, gen.GetLivenessRequestObject) (gen.GetLivenessResponseObject, error) {
	return gen.GetLiveness200JSONResponse{Status: gen.LivenessStatusOk}, nil
}

// healthTimeout bounds each dependency check, so /health answers even when a
// dependency hangs.
const healthTimeout = 2 * time.Second

// GetHealth reports every dependency, from a probe at most HealthMaxAge old.
func (h *Handler) GetHealth(ctx context.Context, _ gen.GetHealthRequestObject) (gen.GetHealthResponseObject, error) {
	health, err := h.health.get(ctx)
	if err != nil {
		return nil, err
	}
	if health.Status == gen.HealthStatusDown {
		return gen.GetHealth503JSONResponse(health), nil
	}
	return gen.GetHealth200JSONResponse(health), nil
}

// probe checks every dependency at once and reports each.
func (h *Handler) probe(ctx context.Context) gen.Health {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()

	results := make([]gen.HealthCheck, len(h.checks))
	var wg sync.WaitGroup
	for i, c := range h.checks {
		wg.Go(func() {
			start := time.Now()
			var err error
			var backlog jobs.Backlog
			var lag time.Duration
			switch {
			case c.Backlog != nil:
				backlog, err = c.Backlog(ctx)
			case c.Lag != nil:
				lag, err = c.Lag()
			default:
				err = c.Probe(ctx)
			}
			ms := float64(time.Since(start).Microseconds()) / 1000
			results[i] = gen.HealthCheck{Status: gen.HealthCheckStatusUp, LatencyMs: &ms}
			if c.Backlog != nil && err == nil {
				oldest := backlog.OldestWait.Seconds()
				results[i].JobsWaiting, results[i].OldestWaitingSeconds = &backlog.Waiting, &oldest
			}
			if c.Lag != nil && (err == nil || errors.Is(err, ErrTooFarBehind)) {
				seconds := lag.Seconds()
				results[i].LagSeconds = &seconds
			}
			if err != nil {
				msg := c.Name + " unreachable"
				if errors.Is(err, ErrTooFarBehind) {
					msg = c.Name + " lags further behind the primary than allowed"
				}
				if ctx.Err() != nil {
					msg = c.Name + " did not answer within " + healthTimeout.String()
				}
				results[i].Status = gen.HealthCheckStatusDown
				results[i].Error = &msg
			}
		})
	}
	wg.Wait()

	health := gen.Health{Status: gen.HealthStatusOk, Checks: make(map[string]gen.HealthCheck, len(h.checks))}
	for i, c := range h.checks {
		health.Checks[c.Name] = results[i]
		if results[i].Status == gen.HealthCheckStatusUp {
			continue
		}
		if c.Required {
			health.Status = gen.HealthStatusDown
		} else if health.Status == gen.HealthStatusOk {
			health.Status = gen.HealthStatusDegraded
		}
	}
	return health
}
