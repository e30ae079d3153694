package server

import (
	"log/slog"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"userapi/tracing"
)

// addRoutes is the whole surface of the service in one place: the
// middleware every request passes, in order, then the operations of
// openapi.yaml (each with the middleware its record asks for, see
// addOperations) and the pages outside it.
func addRoutes(e *echo.Echo, logger *slog.Logger, ops []operation, h *Handler, specJSON []byte, opts Options, labels *routeLabels) {
	e.Use(withRequestID)
	if opts.Tracing {
		e.Use(tracing.Middleware()) // outermost: the span covers all the rest
	}
	e.Use(
		accessLog(logger, opts.Observer, labels),
		recoverPanics(logger),
		deadline(opts.RequestTimeout, streamedPaths(ops)), // before anything that waits on a dependency
	)
	e.Use(cors(logger, opts.CORSOrigins)) // before the limiter: preflights spend nothing
	e.Use(middleware.BodyLimit("1M"))

	addOperations(e, ops, h, opts)
	addPages(e, specJSON, opts)
}
