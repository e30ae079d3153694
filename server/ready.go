package server

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"

	"userapi/gen"
	"userapi/store"
)

// Readiness decides what GET /readyz answers: whether load balancers should
// send this instance traffic.
type Readiness struct {
	// Probe fails when the instance cannot serve, such as store.Ready; nil
	// checks nothing.
	Probe func(ctx context.Context) error

	draining atomic.Bool
}

// Drain makes /readyz answer 503 from now on, while every other route goes on
// serving: load balancers move traffic away before the listener closes.
func (r *Readiness) Drain() { r.draining.Store(true) }

// drainingDetail is what /readyz says while the instance shuts down.
const drainingDetail = "this instance is shutting down; send requests to another one"

// GetReadiness answers 200 when this instance should get traffic, and a 503
// problem when it should not.
func (h *Handler) GetReadiness(ctx context.Context, _ gen.GetReadinessRequestObject) (gen.GetReadinessResponseObject, error) {
	r := h.ready
	if r == nil {
		return gen.GetReadiness200JSONResponse{Status: gen.Ready}, nil
	}
	if r.draining.Load() {
		// Expected during every shutdown: an answer, not an error to log.
		p := newProblem(http.StatusServiceUnavailable, drainingDetail).Problem
		return gen.GetReadiness503ApplicationProblemPlusJSONResponse{NotReadyApplicationProblemPlusJSONResponse: gen.NotReadyApplicationProblemPlusJSONResponse{
			Body: p, Headers: gen.NotReadyResponseHeaders{RetryAfter: 1},
		}}, nil
	}
	if r.Probe != nil {
		ctx, cancel := context.WithTimeout(ctx, healthTimeout)
		defer cancel()
		if err := r.Probe(ctx); errors.Is(err, store.ErrSchemaBehind) {
			return nil, notReady("the database lacks migrations this version needs; run userapi migrate", err)
		} else if err != nil {
			return nil, notReady("the database is unreachable", err)
		}
	}
	return gen.GetReadiness200JSONResponse{Status: gen.Ready}, nil
}

// notReady is a 503 problem that asks to retry (elsewhere) shortly.
func notReady(detail string, cause error) *problem {
	p := newProblem(http.StatusServiceUnavailable, detail)
	p.header = http.Header{"Retry-After": {"1"}}
	p.cause = cause
	return p
}
