package server

import (
	"context"

	"github.com/labstack/echo/v4"

	"userapi/store"
)

// ReadRouter chooses where a caller's lag-tolerant reads go (see
// replica.Set): a replica that has the caller's last write, or the primary.
type ReadRouter interface {
	Reader(ctx context.Context, caller string) store.Reader
	// Wrote is told after each successful write of caller; it reports its
	// own failures.
	Wrote(ctx context.Context, caller string)
}

// readYourWrites lets the store ask, when a read may lag, where this
// caller's reads may go; after a successful write it tells the router. An
// operation writes when it spends the write budget, whatever its method:
// POST /users/batch-get reads.
func readYourWrites(r ReadRouter, b budget) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if b != budgetWrites {
			return func(c echo.Context) error {
				client := clientOf(c, caller(c))
				req := c.Request()
				c.SetRequest(req.WithContext(store.WithReader(req.Context(), func(ctx context.Context) store.Reader {
					return r.Reader(ctx, client)
				})))
				return next(c)
			}
		}
		return func(c echo.Context) error {
			err := next(c)
			if err == nil && c.Response().Status < 400 {
				r.Wrote(context.WithoutCancel(c.Request().Context()), clientOf(c, caller(c)))
			}
			return err
		}
	}
}
