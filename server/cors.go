package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// cors lets browser apps on the given origins call the API: preflights are
// answered for them with the methods and headers the API uses, and the
// response headers a client needs (ETag for If-Match, Location after a
// create, the rate limit, the request id, whether an answer is a replay)
// are exposed to their scripts.
// Other origins get no CORS headers, so browsers keep them out.
func cors(origins []string) echo.MiddlewareFunc {
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins: origins,
		AllowMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		AllowHeaders: []string{"Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key", "X-Request-ID"},
		ExposeHeaders: []string{
			"ETag", "Location", "Retry-After", "X-Request-ID",
			"RateLimit-Policy", "RateLimit", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
			"Deprecation", "Sunset", "WWW-Authenticate", "Idempotent-Replayed",
		},
		MaxAge: 600,
	})
}
