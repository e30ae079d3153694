package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"

	"userapi/auth"
	"userapi/gen"
)

// operation is what openapi.yaml says about one operation that decides how
// it is served. It is read once at start-up; nothing in Go names a path to
// decide per-operation policy.
type operation struct {
	id     string
	method string
	path   string // as in the spec: /users/{id}
	// public operations declare `security: []`: no key is asked for.
	public bool
	// scope is the x-scope a key needs (empty when public).
	scope string
	// budget is the rate-limit budget spent: x-rate-budget when set,
	// otherwise reads for GET and writes for the other methods.
	budget budget
	// idempotent operations take the Idempotency-Key header.
	idempotent bool
	// deprecation holds the Deprecation and Sunset headers of a
	// deprecated operation.
	deprecation http.Header
	// route hands the validator the operation Echo matched.
	route *routers.Route
	// bodySchema is the schema of a JSON request body, if any.
	bodySchema *openapi3.Schema
}

// budget names a rate-limit budget (see RateLimit).
type budget string

const (
	budgetReads  budget = "reads"
	budgetWrites budget = "writes"
	budgetNone   budget = "none"
)

// rateBudgets are the values x-rate-budget takes.
var rateBudgets = map[string]budget{"read": budgetReads, "write": budgetWrites, "none": budgetNone}

// operations reads every operation of spec, in a stable order. A spec that
// leaves a decision open (no security, an unknown scope or budget, a
// deprecation without its date) is refused, so that such a mistake stops
// the service at start-up instead of serving the operation unguarded.
func operations(spec *openapi3.T) ([]operation, error) {
	var ops []operation
	for path, item := range spec.Paths.Map() {
		for method, o := range item.Operations() {
			op, err := newOperation(spec, path, item, method, o)
			if err != nil {
				return nil, fmt.Errorf("openapi.yaml, %s %s: %w", method, path, err)
			}
			ops = append(ops, op)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].id < ops[j].id })
	return ops, nil
}

// withoutSecurity is o as the validator sees it: keys and tokens are checked
// before validation (identify, authorize), so it need not walk the
// security requirements again on every request.
func withoutSecurity(o *openapi3.Operation) *openapi3.Operation {
	checked := *o
	checked.Security = &openapi3.SecurityRequirements{}
	return &checked
}

func newOperation(spec *openapi3.T, path string, item *openapi3.PathItem, method string, o *openapi3.Operation) (operation, error) {
	op := operation{
		id: o.OperationID, method: method, path: path, idempotent: takesIdempotencyKey(o),
		route: &routers.Route{Spec: spec, Path: path, PathItem: item, Method: method, Operation: withoutSecurity(o)},
	}
	if op.id == "" {
		return op, fmt.Errorf("no operationId")
	}
	if o.RequestBody != nil && o.RequestBody.Value != nil {
		if mt := o.RequestBody.Value.Content.Get(echo.MIMEApplicationJSON); mt != nil && mt.Schema != nil {
			op.bodySchema = mt.Schema.Value
		}
	}
	switch {
	case o.Security == nil:
		return op, fmt.Errorf("%s declares no security: `security: []` for a public operation, or a requirement and an x-scope", op.id)
	case len(*o.Security) == 0:
		op.public = true
	default:
		op.scope, _ = o.Extensions["x-scope"].(string)
		if !slices.Contains(auth.Scopes, op.scope) {
			return op, fmt.Errorf("%s has security but no valid x-scope (%q)", op.id, op.scope)
		}
	}
	op.budget = budgetWrites
	if method == http.MethodGet {
		op.budget = budgetReads
	}
	if v, ok := o.Extensions["x-rate-budget"]; ok {
		s, _ := v.(string)
		if op.budget, ok = rateBudgets[s]; !ok {
			return op, fmt.Errorf("%s: x-rate-budget is %v, not read, write or none", op.id, v)
		}
	}
	var err error
	op.deprecation, err = deprecationHeaders(o)
	return op, err
}

// echoPath turns /users/{id} into Echo's /users/:id.
func (op operation) echoPath() string {
	return strings.NewReplacer("{", ":", "}", "").Replace(op.path)
}

// addOperations serves every operation through the generated routes, each
// behind the middleware its record asks for, in this order:
//
//   - identify: read the API key or token (for limiting per caller, and
//     authorizing);
//   - the rate limiter, for operations that spend a budget, before the key
//     is refused so that a flood without keys is limited too;
//   - verify: a key not verified here before, after the limiter has counted
//     it against the address, so that made-up keys cannot buy a database
//     lookup each once the address's budget is spent; then the limiter
//     again, which spends from the key's budget if verify accepted it;
//   - authorize: the operation's x-scope (401 / 403), so that a caller
//     without a key learns nothing about what a valid request looks like;
//   - auditActor: the caller and request id, for the audit log;
//   - validate: the request against the spec, with deprecation headers;
//   - idempotency, for operations that take an Idempotency-Key, after
//     validation so that only valid requests are stored.
func addOperations(e *echo.Echo, ops []operation, h *Handler, opts Options) {
	v := newValidator(newJSONShape(opts.JSONMaxKeys, opts.JSONMaxDepth))
	idem := idempotent(opts.Idempotency, opts.IdempotencyTTL)
	mws := make(map[string][]echo.MiddlewareFunc, len(ops))
	for _, op := range ops {
		var mw []echo.MiddlewareFunc
		var limit echo.MiddlewareFunc
		if opts.RateLimit != nil && op.budget != budgetNone {
			limit = rateLimit(*opts.RateLimit, op.budget, opts.Observer)
		}
		if opts.Auth != nil && (!op.public || limit != nil) {
			mw = append(mw, identify(opts.Auth, opts.Tokens, limit != nil))
		}
		if limit != nil {
			mw = append(mw, limit)
		}
		if opts.Auth != nil && !op.public {
			// A public operation needs no key: an unverified one only
			// counts against the address.
			mw = append(mw, verify(opts.Auth))
			if limit != nil {
				mw = append(mw, limit)
			}
			mw = append(mw, authorize(op.scope, opts.Observer))
		}
		// Once the caller is known, so that whatever the request changes
		// is recorded as theirs; reads change nothing.
		if op.budget == budgetWrites {
			mw = append(mw, auditActor)
		}
		mw = append(mw, v.forOperation(op))
		if opts.Reads != nil {
			// Outside idempotency's transaction: a write counts once committed.
			mw = append(mw, readYourWrites(opts.Reads, op.budget))
		}
		if op.idempotent {
			mw = append(mw, idem)
		}
		mws[op.id] = mw
	}
	gen.RegisterHandlersWithOptions(headToo{e}, gen.NewStrictHandler(h, nil), gen.RegisterHandlersOptions{OperationMiddlewares: mws})
	refuseOtherMethods(e, ops)
}

// headToo registers a HEAD route beside every GET route, with the same
// handler and middleware: load balancers probe with HEAD. The answer is the
// GET answer, status, headers and Content-Length alike; net/http drops the
// body of an answer to HEAD.
//
// It wraps each route's handler in its middleware once, here: Echo would
// wrap it again on every request.
type headToo struct{ *echo.Echo }

func (r headToo) GET(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	r.Echo.HEAD(path, withMiddleware(func(c echo.Context) error {
		// The handler is shown a GET, as some refuse other methods (the
		// Swagger UI's does); the server still answers the HEAD it was sent.
		get := c.Request().Clone(context.WithValue(c.Request().Context(), headRequest{}, true))
		get.Method = http.MethodGet
		c.SetRequest(get)
		return h(c)
	}, m))
	return r.Echo.GET(path, withMiddleware(h, m))
}

// headRequest marks the context of a GET that answers a HEAD: an answer
// that writes to the connection itself (an event stream) must write its
// head alone.
type headRequest struct{}

// answersHead reports whether the request of ctx answers a HEAD.
func answersHead(ctx context.Context) bool {
	v, _ := ctx.Value(headRequest{}).(bool)
	return v
}

func (r headToo) POST(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.Echo.POST(path, withMiddleware(h, m))
}

func (r headToo) PUT(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.Echo.PUT(path, withMiddleware(h, m))
}

func (r headToo) PATCH(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.Echo.PATCH(path, withMiddleware(h, m))
}

func (r headToo) DELETE(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return r.Echo.DELETE(path, withMiddleware(h, m))
}

// withMiddleware is h inside m, m[0] outermost, as Echo orders them.
func withMiddleware(h echo.HandlerFunc, m []echo.MiddlewareFunc) echo.HandlerFunc {
	for i := len(m) - 1; i >= 0; i-- {
		h = m[i](h)
	}
	return h
}

// refuseOtherMethods answers 405 with Allow for the methods a fixed path of
// the spec lacks. Without it Echo's router would try a parameter route next:
// GET /users/batch-get would reach GET /users/{id} and fail as a bad id.
func refuseOtherMethods(e *echo.Echo, ops []operation) {
	allowed := map[string][]string{}
	for _, op := range ops {
		if !strings.Contains(op.path, "{") {
			allowed[op.path] = append(allowed[op.path], op.method)
			if op.method == http.MethodGet {
				allowed[op.path] = append(allowed[op.path], http.MethodHead)
			}
		}
	}
	for path, have := range allowed {
		var allow []string
		for _, m := range methods {
			if slices.Contains(have, m) {
				allow = append(allow, m)
			}
		}
		header := strings.Join(allow, ", ")
		for _, m := range methods {
			if !slices.Contains(have, m) {
				e.Add(m, path, func(c echo.Context) error {
					c.Response().Header().Set(echo.HeaderAllow, header)
					return echo.ErrMethodNotAllowed
				})
			}
		}
	}
}

var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// addPages serves what openapi.yaml describes only by its entry points or
// not at all: the documentation pages' assets, and the job dashboard (which
// checks its own key). Neither spends a rate-limit budget: people reading
// the docs, and a dashboard that polls, are never refused.
func addPages(e *echo.Echo, specJSON []byte, opts Options) {
	headToo{e}.GET("/docs/*", swaggerUI(specJSON))
	headToo{e}.GET("/redoc/*", redocAssets())
	if opts.Admin != nil {
		mountAdmin(e, opts)
	}
}
