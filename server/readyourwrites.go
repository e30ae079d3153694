package server

import (
	"context"
	"net/http"

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
// caller's reads may go; after a successful write it tells the router.
func readYourWrites(r ReadRouter) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			client := clientOf(c, caller(c))
			req := c.Request()
			switch req.Method {
			case http.MethodGet, http.MethodHead:
				c.SetRequest(req.WithContext(store.WithReader(req.Context(), func(ctx context.Context) store.Reader {
					return r.Reader(ctx, client)
				})))
				return next(c)
			}
			err := next(c)
			if err == nil && c.Response().Status < 400 {
				r.Wrote(context.WithoutCancel(req.Context()), client)
			}
			return err
		}
	}
}
