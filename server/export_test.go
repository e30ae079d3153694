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

// OperationPolicy is what the server read from openapi.yaml for one
// operation: the middleware it gets follows from it.
type OperationPolicy struct {
	ID, Method, Path string
	Public           bool
	Budget           string // reads, writes or none
	Idempotent       bool
	// Body is the example request body of the spec, if any.
	Body any
}

// OperationPolicies are the records New serves the spec's operations by.
func OperationPolicies() ([]OperationPolicy, error) {
	spec, err := LoadSpec()
	if err != nil {
		return nil, err
	}
	ops, err := operations(spec)
	if err != nil {
		return nil, err
	}
	out := make([]OperationPolicy, len(ops))
	for i, op := range ops {
		out[i] = OperationPolicy{ID: op.id, Method: op.method, Path: op.path, Public: op.public, Budget: string(op.budget), Idempotent: op.idempotent}
		if rb := op.route.Operation.RequestBody; rb != nil && rb.Value != nil {
			if mt := rb.Value.Content.Get("application/json"); mt != nil {
				out[i].Body = mt.Example
			}
		}
	}
	return out, nil
}
