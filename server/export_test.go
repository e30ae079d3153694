package server

import "github.com/labstack/echo/v4"

// TestCallerHeader names the header through which tests choose the caller's
// key prefix, standing in for authentication.
const TestCallerHeader = "X-Test-Key-Prefix"

// UseTestCaller makes the TestCallerHeader of each request its caller's key
// prefix.
func UseTestCaller(e *echo.Echo) {
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if p := c.Request().Header.Get(TestCallerHeader); p != "" {
				c.Set(callerKey, Caller{KeyPrefix: p})
			}
			return next(c)
		}
	})
}
