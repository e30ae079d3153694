package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/labstack/echo/v4"

	"userapi/store"
)

// deadline bounds each request's work by d (none when d is zero). Every
// database and Redis call runs on the request's context, so a frozen
// dependency fails the request after d with a 503 and Retry-After instead of
// holding the client, and a connection, for as long as it stays frozen.
func deadline(d time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if d <= 0 {
			return next
		}
		return func(c echo.Context) error {
			req := c.Request()
			ctx, cancel := context.WithTimeout(req.Context(), d)
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
