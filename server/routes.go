package server

import (
	"log/slog"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"userapi/gen"
)

// addRoutes is the whole surface of the service in one place.
func addRoutes(e *echo.Echo, logger *slog.Logger, spec *openapi3.T, h *Handler, specJSON []byte) {
	e.Use(
		withRequestID,
		accessLog(logger),
		recoverPanics(logger),
		middleware.BodyLimit("1M"),
	)

	// Every operation in openapi.yaml, each behind the request validator.
	// The validator runs per route rather than globally so that unknown paths
	// and methods reach Echo's router, which answers 404, or 405 with Allow.
	api := validatedRoutes{e: e, validate: requestValidator(spec)}
	gen.RegisterHandlers(api, gen.NewStrictHandler(h, nil))

	// Assets of the documentation pages, which the spec describes only by
	// their entry points (/docs and /redoc).
	e.GET("/docs/*", swaggerUI(specJSON))
	e.GET("/redoc/*", redocAssets())
}

// validatedRoutes registers generated routes with the validator in front.
type validatedRoutes struct {
	e        *echo.Echo
	validate echo.MiddlewareFunc
}

func (v validatedRoutes) with(m []echo.MiddlewareFunc) []echo.MiddlewareFunc {
	return append([]echo.MiddlewareFunc{v.validate}, m...)
}

func (v validatedRoutes) CONNECT(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.e.CONNECT(p, h, v.with(m)...)
}
func (v validatedRoutes) DELETE(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.e.DELETE(p, h, v.with(m)...)
}
func (v validatedRoutes) GET(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.e.GET(p, h, v.with(m)...)
}
func (v validatedRoutes) HEAD(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.e.HEAD(p, h, v.with(m)...)
}
func (v validatedRoutes) OPTIONS(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.e.OPTIONS(p, h, v.with(m)...)
}
func (v validatedRoutes) PATCH(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.e.PATCH(p, h, v.with(m)...)
}
func (v validatedRoutes) POST(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.e.POST(p, h, v.with(m)...)
}
func (v validatedRoutes) PUT(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.e.PUT(p, h, v.with(m)...)
}
func (v validatedRoutes) TRACE(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.e.TRACE(p, h, v.with(m)...)
}
