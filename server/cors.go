package server

import (
	"log/slog"
	"net/http"
	"net/url"
	"sync"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// corsSetting is the setting that lists the allowed origins, named in logs
// so that whoever reads them knows what to change.
const corsSetting = "USERAPI_CORS_ORIGINS"

// cors lets browser apps on the given origins call the API: preflights are
// answered for them with the methods and headers the API uses, and the
// response headers a client needs (ETag for If-Match, Location after a
// create, the rate limit, the request id, whether an answer is a replay)
// are exposed to their scripts. Credentials (cookies) are never allowed:
// the API reads none, and a key travels in Authorization.
// Other origins get no CORS headers, so browsers keep them out; as a
// browser reports that only to the page's console, the first refusal of
// each origin is logged here. With no origins, nothing is allowed and
// refusals are still logged.
func cors(logger *slog.Logger, origins []string) echo.MiddlewareFunc {
	if len(origins) == 0 {
		logger.Info("CORS is off: no browser page on another origin may call the API; list its origin in " + corsSetting + " to allow it")
	} else {
		logger.Info("CORS: browser pages on these origins may call the API ("+corsSetting+")", "origins", origins)
	}
	allow := func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	if len(origins) > 0 {
		allow = middleware.CORSWithConfig(middleware.CORSConfig{
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
	refused := &refusedOrigins{logger: logger, seen: map[string]bool{}}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		h := allow(next)
		return func(c echo.Context) error {
			err := h(c)
			req := c.Request()
			if origin := req.Header.Get(echo.HeaderOrigin); origin != "" &&
				c.Response().Header().Get(echo.HeaderAccessControlAllowOrigin) == "" && !sameOrigin(req, origin) {
				refused.note(origin)
			}
			return err
		}
	}
}

// sameOrigin reports whether origin is the host the request was sent to:
// browsers send Origin on their own pages' writes too (the docs' Try it
// out), and those need no CORS.
func sameOrigin(req *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host == req.Host
}

// maxRefusedOrigins bounds the origins remembered as logged: a flood of
// made-up origins costs a fixed amount of memory and one last log line.
const maxRefusedOrigins = 100

// refusedOrigins logs each refused origin once per process.
type refusedOrigins struct {
	logger *slog.Logger
	mu     sync.Mutex
	seen   map[string]bool
	full   bool
}

func (r *refusedOrigins) note(origin string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[origin] || r.full {
		return
	}
	if len(r.seen) == maxRefusedOrigins {
		r.full = true
		r.logger.Warn("CORS: more browser origins were refused; they are not logged one by one", "logged", maxRefusedOrigins)
		return
	}
	r.seen[origin] = true
	r.logger.Warn("CORS: refused a browser page's request from an origin that is not allowed; add it to "+corsSetting+" if it should call the API (logged once per origin)",
		"origin", origin)
}
