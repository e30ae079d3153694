package server

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

const requestIDKey = "request_id"

// withRequestID takes the caller's X-Request-ID when it is a sane token, and
// makes one up otherwise, so every log line and error body can be traced.
func withRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !saneRequestID(id) {
			id = newRequestID()
		}
		c.Set(requestIDKey, id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

// requestIDs makes the ids of this process: a random prefix drawn at start
// and a counter, unique across instances and restarts without asking the
// kernel for randomness on every request.
var requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func init() {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	requestIDs.prefix = fmt.Sprintf("%x-", b)
}

// newRequestID is the prefix and the counter in hexadecimal, 17 to 33
// characters.
func newRequestID() string {
	var buf [40]byte
	b := append(buf[:0], requestIDs.prefix...)
	return string(strconv.AppendUint(b, requestIDs.n.Add(1), 16))
}

// saneRequestID keeps ids short and printable so they cannot forge log lines.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':') {
			return false
		}
	}
	return true
}

func requestID(c echo.Context) string {
	id, _ := c.Get(requestIDKey).(string)
	return id
}

// routeLabels maps Echo's route paths to bounded metric labels.
type routeLabels struct {
	known map[string]bool // every registered route path
}

// route is c.Path() when a route matched. Otherwise Echo gives the path of
// the nearest node of its tree, which is no route: that is UnmatchedRoute.
func (l *routeLabels) route(path string) string {
	if l.known[path] {
		return path
	}
	return UnmatchedRoute
}

// method keeps the label to the standard methods: anyone can send any token.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// accessLog writes one JSON line per request once its answer is known, and
// tells obs (when set) of it: both see the same status and latency.
func accessLog(logger *slog.Logger, obs Observer, labels *routeLabels) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		HandleError:  true, // run the error handler first, so the status logged is the one sent
		LogStatus:    true,
		LogLatency:   true,
		LogMethod:    true,
		LogURIPath:   true,
		LogRoutePath: true,
		LogRemoteIP:  true,
		LogUserAgent: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			if v.Status >= 500 {
				level = slog.LevelError
			}
			logger.LogAttrs(c.Request().Context(), level, "request",
				slog.String("request_id", requestID(c)),
				slog.String("method", v.Method),
				slog.String("path", v.URIPath),
				slog.String("route", v.RoutePath),
				slog.Int("status", v.Status),
				slog.Float64("latency_ms", float64(v.Latency)/float64(time.Millisecond)),
				slog.Int64("bytes_out", c.Response().Size),
				slog.String("remote_ip", v.RemoteIP),
				slog.String("caller", caller(c).ID()),
				slog.String("user_agent", v.UserAgent),
			)
			// After the line is written, so that whoever learns of the
			// request from obs finds it in the log too.
			if obs != nil {
				obs.ObserveRequest(labels.route(v.RoutePath), method(v.Method), v.Status, v.Latency)
			}
			return nil
		},
	})
}

// recoverPanics turns a panic into a 500 problem and logs its stack with the
// request id; the client never sees the stack.
func recoverPanics(logger *slog.Logger) echo.MiddlewareFunc {
	return middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			logger.ErrorContext(c.Request().Context(), "panic",
				"request_id", requestID(c), "path", c.Request().URL.Path, "error", err.Error(), "stack", string(stack))
			return echo.NewHTTPError(http.StatusInternalServerError).SetInternal(err)
		},
	})
}
