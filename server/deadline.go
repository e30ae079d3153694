package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/labstack/echo/v4"

	"userapi/internal/lazydeadline"
	"userapi/store"
)

// deadline bounds each request's work by d (none when d is zero). Every
// database and Redis call runs on the request's context, so a frozen
// dependency fails the request after d with a 503 and Retry-After instead of
// holding the client, and a connection, for as long as it stays frozen.
// Streamed operations (Echo paths in streamed) take as long as their data
// does; they end when the client leaves, and each statement they run is
// bounded by the database's statement timeout.
func deadline(d time.Duration, streamed map[string]bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if d <= 0 {
			return next
		}
		return func(c echo.Context) error {
			if streamed[c.Path()] {
				return next(c)
			}
			req := c.Request()
			ctx, cancel := lazydeadline.With(req.Context(), time.Now().Add(d))
			defer cancel()
			c.SetRequest(req.WithContext(ctx))
			err := next(c)
			// The error handler runs after this returns, when ctx is already
			// cancelled: give it back the request whose context says only
			// whether the client left.
			c.SetRequest(req)
			// The store translates its own timeouts; this catches any other
			// dependency's. A client that left gets context.Canceled instead.
			if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, store.ErrUnavailable) {
				return fmt.Errorf("%w: request deadline of %s: %w", store.ErrUnavailable, d, err)
			}
			return err
		}
	}
}

// streamedPaths are the Echo paths of the operations openapi.yaml marks
// `x-streamed: true`.
func streamedPaths(ops []operation) map[string]bool {
	paths := map[string]bool{}
	for _, op := range ops {
		if v, _ := op.route.Operation.Extensions["x-streamed"].(bool); v {
			paths[op.echoPath()] = true
		}
	}
	return paths
}
