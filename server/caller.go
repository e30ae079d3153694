package server

import "github.com/labstack/echo/v4"

const callerKey = "caller"

// Caller is who sent a request: the API key that authenticated it.
type Caller struct {
	// KeyPrefix is the key's public prefix, which names it in logs, in
	// `userapi keys list` and in scoped records such as idempotency keys.
	KeyPrefix string
	// Scopes are what the key may do.
	Scopes []string
}

// caller returns the request's authenticated caller, or the zero Caller when
// authentication is off or has not run.
func caller(c echo.Context) Caller {
	v, _ := c.Get(callerKey).(Caller)
	return v
}
