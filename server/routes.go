package server

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"userapi/gen"
	"userapi/tracing"
)

// addRoutes is the whole surface of the service in one place.
func addRoutes(e *echo.Echo, logger *slog.Logger, validationSpec *openapi3.T, h *Handler, specJSON []byte, opts Options, labels *routeLabels) {
	e.Use(withRequestID)
	if opts.Tracing {
		e.Use(tracing.Middleware()) // outermost: the span covers all the rest
	}
	e.Use(
		accessLog(logger, opts.Observer, labels),
		recoverPanics(logger),
		deadline(opts.RequestTimeout), // before anything that waits on a dependency
	)
	if len(opts.CORSOrigins) > 0 {
		e.Use(cors(opts.CORSOrigins)) // before the limiter: preflights spend nothing
	}
	if opts.Auth != nil {
		e.Use(identify(opts.Auth)) // before the limiter, which counts per key
	}
	if opts.RateLimit != nil {
		e.Use(rateLimit(*opts.RateLimit, opts.Observer))
	}
	e.Use(middleware.BodyLimit("1M"))

	// Every operation in openapi.yaml, each behind the request validator.
	// The validator runs per route rather than globally so that unknown paths
	// and methods reach Echo's router, which answers 404, or 405 with Allow.
	api := validatedRoutes{e: e, v: newValidator(validationSpec), auth: opts.Auth != nil, obs: opts.Observer, idempotent: idempotent(opts.Idempotency, opts.IdempotencyTTL)}
	gen.RegisterHandlers(api, gen.NewStrictHandler(h, nil))
	refuseOtherMethods(e, validationSpec)

	// Assets of the documentation pages, which the spec describes only by
	// their entry points (/docs and /redoc).
	e.GET("/docs/*", swaggerUI(specJSON))
	e.GET("/redoc/*", redocAssets())
}

// refuseOtherMethods answers 405 with Allow for the methods a fixed path of
// the spec lacks. Without it Echo's router would try a parameter route next:
// GET /users/batch-get would reach GET /users/{id} and fail as a bad id.
func refuseOtherMethods(e *echo.Echo, spec *openapi3.T) {
	for path, item := range spec.Paths.Map() {
		if strings.Contains(path, "{") {
			continue
		}
		ops := item.Operations()
		var allowed []string
		for _, m := range methods {
			if ops[m] != nil {
				allowed = append(allowed, m)
			}
		}
		allow := strings.Join(allowed, ", ")
		for _, m := range methods {
			if ops[m] == nil {
				e.Add(m, path, func(c echo.Context) error {
					c.Response().Header().Set(echo.HeaderAllow, allow)
					return echo.ErrMethodNotAllowed
				})
			}
		}
	}
}

var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// validatedRoutes registers generated routes with, in front: the
// authorization check (when auth is on), the validator, and for the
// operations that take an Idempotency-Key, the idempotency middleware. A
// caller without a key learns nothing about what a valid request looks like.
type validatedRoutes struct {
	e          *echo.Echo
	v          *validator
	auth       bool
	obs        Observer
	idempotent echo.MiddlewareFunc
}

func (v validatedRoutes) add(method, p string, h echo.HandlerFunc, m []echo.MiddlewareFunc) *echo.Route {
	op := v.v.operation(method, p)
	var mw []echo.MiddlewareFunc
	if v.auth {
		if a := authorize(op, v.obs); a != nil {
			mw = append(mw, a)
		}
	}
	mw = append(mw, v.v.forRoute(method, p))
	if takesIdempotencyKey(op) {
		mw = append(mw, v.idempotent)
	}
	return v.e.Add(method, p, h, append(mw, m...)...)
}

func (v validatedRoutes) CONNECT(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodConnect, p, h, m)
}
func (v validatedRoutes) DELETE(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodDelete, p, h, m)
}
func (v validatedRoutes) GET(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodGet, p, h, m)
}
func (v validatedRoutes) HEAD(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodHead, p, h, m)
}
func (v validatedRoutes) OPTIONS(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodOptions, p, h, m)
}
func (v validatedRoutes) PATCH(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodPatch, p, h, m)
}
func (v validatedRoutes) POST(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodPost, p, h, m)
}
func (v validatedRoutes) PUT(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodPut, p, h, m)
}
func (v validatedRoutes) TRACE(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodTrace, p, h, m)
}
