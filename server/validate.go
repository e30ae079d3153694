package server

import (
	"context"
	"errors"
	"net/http"
	"net/mail"
	"net/url"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"
	echomiddleware "github.com/oapi-codegen/echo-middleware"
)

// ValidationOptions are the rules requests are checked with. Tests check
// responses with the same ones, so both sides agree on formats like email.
func ValidationOptions() openapi3filter.Options {
	return openapi3filter.Options{
		MultiError: true,
		// The generated handlers bind the value validated instead of
		// decoding the body a second time.
		KeepValidatedValue: true,
		// API keys are checked before validation (see authorize).
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{
			openapi3.WithStringFormatValidator("email", openapi3.NewCallbackValidator(checkEmail)),
		},
	}
}

// checkEmail accepts a bare address (local@domain) and nothing else: no
// display name, no comments, no surrounding spaces.
func checkEmail(s string) error {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s || !strings.Contains(s, "@") {
		return errors.New("must be a valid email address")
	}
	return nil
}

// validator checks requests against the spec before they reach a handler.
// Its failures go to the error handler as they are; requestProblem turns
// them into problems there.
type validator struct {
	opts  *echomiddleware.Options
	shape jsonShape
}

func newValidator(shape jsonShape) *validator {
	return &validator{shape: shape, opts: &echomiddleware.Options{
		Options: ValidationOptions(),
		MultiErrorHandler: func(me openapi3.MultiError) *echo.HTTPError {
			return &echo.HTTPError{Code: http.StatusUnprocessableEntity, Message: "invalid request", Internal: me}
		},
	}}
}

// forOperation returns the middleware that checks requests to op, a route
// Echo has already matched. Echo's router has found the operation, so the
// validator is handed it rather than searching the spec's paths again with
// regular expressions on every request.
func (v *validator) forOperation(op operation) echo.MiddlewareFunc {
	plain := plainInputOf(op.route.Operation, op.route.PathItem.Parameters)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			for k, vals := range op.deprecation {
				c.Response().Header()[k] = vals
			}
			// Echo lets a last path parameter run past a slash
			// (/users/1/friends matches /users/:id); no path here has one.
			for _, value := range c.ParamValues() {
				if strings.Contains(value, "/") {
					return echo.ErrNotFound
				}
			}
			if op.route.Operation.RequestBody != nil {
				if err := v.shape.checkBody(c.Request()); err != nil {
					return err
				}
			}
			// The validator does not watch the request's context: a client
			// that has gone costs nothing more.
			if err := c.Request().Context().Err(); err != nil {
				return err
			}
			if plain != nil && plain.accepts(c.Request(), c.ParamNames(), c.ParamValues()) {
				return next(c)
			}
			if err := v.validate(c, op); err != nil {
				return err
			}
			if body, ok := c.Request().Body.(interface{ ValidatedValue() any }); ok && op.bodySchema != nil {
				if fields := integerErrors(body.ValidatedValue(), op.bodySchema, "body", nil); len(fields) > 0 {
					return fieldsProblem(fields)
				}
			}
			return next(c)
		}
	}
}

// validate checks the request against op's parameters and body. It asks
// openapi3filter directly: Echo has matched the route and its parameters,
// and no callback of ValidationOptions reads the Echo context.
func (v *validator) validate(c echo.Context, op operation) error {
	in := &openapi3filter.RequestValidationInput{
		Request: c.Request(), PathParams: pathParams(c), Route: op.route, Options: &v.opts.Options,
	}
	err := openapi3filter.ValidateRequest(context.Background(), in)
	if err == nil {
		return nil
	}
	var me openapi3.MultiError
	if errors.As(err, &me) {
		return v.opts.MultiErrorHandler(me)
	}
	return &echo.HTTPError{Code: http.StatusBadRequest, Message: "invalid request", Internal: err}
}

// pathParams are the request's path parameters, unescaped.
func pathParams(c echo.Context) map[string]string {
	names := c.ParamNames()
	if len(names) == 0 {
		return nil
	}
	params := make(map[string]string, len(names))
	for i, name := range names {
		value := c.ParamValues()[i]
		if unescaped, err := url.PathUnescape(value); err == nil {
			value = unescaped
		}
		params[name] = value
	}
	return params
}
