package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"userapi/auth"
)

const (
	callerKey    = "caller"
	authErrorKey = "auth_error"
	pendingKey   = "pending_key" // a key identify left for verify
)

// Caller is who sent a request: the API key that authenticated it.
type Caller struct {
	// KeyPrefix is the key's public prefix, which names it in logs, in
	// `userapi keys list` and in scoped records such as idempotency keys.
	KeyPrefix string
	// Scopes are what the key may do.
	Scopes []string
}

// caller returns the request's authenticated caller, or the zero Caller when
// authentication is off or found no valid key.
func caller(c echo.Context) Caller {
	v, _ := c.Get(callerKey).(Caller)
	return v
}

type callerCtxKey struct{}

// setCaller records who sent the request, for middleware (caller) and for
// handlers, which see only the request's context (callerOf).
func setCaller(c echo.Context, who Caller) {
	c.Set(callerKey, who)
	req := c.Request()
	c.SetRequest(req.WithContext(context.WithValue(req.Context(), callerCtxKey{}, who)))
}

// callerOf is caller for a handler: the zero Caller when authentication is
// off or found no valid key.
func callerOf(ctx context.Context) Caller {
	v, _ := ctx.Value(callerCtxKey{}).(Caller)
	return v
}

// KeyChecker checks a presented API key (see auth.Checker).
type KeyChecker interface {
	Check(ctx context.Context, key string) (auth.Key, error)
	// Verified reports whether a key with this prefix has passed Check
	// here before, so that checking it again costs no lookup per request.
	Verified(prefix string) bool
}

var errNotBearer = errors.New(`the Authorization header must be "Bearer <key>"`)

// identify checks the API key a request presents, before the rate limiter
// so that the limiter can count per key. It refuses nothing itself:
// authorize does, for the operations that need a key.
//
// With later set, a well-formed key whose prefix has not been verified here
// is left for verify, after the limiter: until then the request counts
// against its address, so that made-up keys, a database lookup each, are
// refused once the address's budget is spent rather than each getting a
// budget of its own.
func identify(keys KeyChecker, later bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			header := c.Request().Header.Get(echo.HeaderAuthorization)
			if header == "" {
				return next(c)
			}
			scheme, token, _ := strings.Cut(header, " ")
			if !strings.EqualFold(scheme, "Bearer") {
				c.Set(authErrorKey, errNotBearer)
				return next(c)
			}
			token = strings.TrimSpace(token)
			if prefix, ok := auth.PrefixOf(token); later && ok && !keys.Verified(prefix) {
				c.Set(pendingKey, token)
				return next(c)
			}
			checkKey(c, keys, token)
			return next(c)
		}
	}
}

// verify checks the key identify left for after the limiter.
func verify(keys KeyChecker) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if token, ok := c.Get(pendingKey).(string); ok {
				checkKey(c, keys, token)
			}
			return next(c)
		}
	}
}

// checkKey records who token belongs to, or why it is refused.
func checkKey(c echo.Context, keys KeyChecker, token string) {
	key, err := keys.Check(c.Request().Context(), token)
	if err != nil {
		c.Set(authErrorKey, err)
		return
	}
	setCaller(c, Caller{KeyPrefix: key.Prefix, Scopes: key.Scopes})
}

// authorize refuses a request to an operation that needs the scope needs
// (its x-scope in openapi.yaml) unless identify found a key that holds it.
func authorize(needs string, obs Observer) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			who := caller(c)
			if who.KeyPrefix == "" {
				return unauthorized(c, obs)
			}
			if !auth.Allows(who.Scopes, needs) {
				if obs != nil {
					obs.AuthRefused("scope")
				}
				return insufficientScope(needs, fmt.Sprintf("this operation needs the scope %s; the key %s has %s",
					needs, who.KeyPrefix, strings.Join(who.Scopes, ", ")))
			}
			return next(c)
		}
	}
}

// insufficientScope is the 403 for a key that lacks the scope needs.
func insufficientScope(needs, detail string) *problem {
	p := newProblem(http.StatusForbidden, detail)
	p.header = http.Header{"Www-Authenticate": {fmt.Sprintf(`Bearer realm="userapi", error="insufficient_scope", scope=%q`, needs)}}
	return p
}

// unauthorized is the 401 for a request without a usable key, which obs
// (when set) is told of. A store failure while checking the key is the
// store's error (503), not a 401.
func unauthorized(c echo.Context, obs Observer) error {
	err, _ := c.Get(authErrorKey).(error)
	var p *problem
	reason := "missing"
	if err == nil {
		p = newProblem(http.StatusUnauthorized, `this operation needs an API key: send it as "Authorization: Bearer <key>"`)
		p.header = http.Header{"Www-Authenticate": {`Bearer realm="userapi"`}}
	} else {
		if p = unauthorizedBecause(err); p == nil {
			return err
		}
		p.header = http.Header{"Www-Authenticate": {`Bearer realm="userapi", error="invalid_token"`}}
		reason = refusalReason(err)
	}
	if obs != nil {
		obs.AuthRefused(reason)
	}
	return p
}

// unauthorizedBecause is the 401 for a key refused for what it is, or nil
// for another failure (such as the store's), which is not the key's fault.
func unauthorizedBecause(err error) *problem {
	for _, why := range []error{errNotBearer, auth.ErrMalformed, auth.ErrUnknown, auth.ErrRevoked, auth.ErrExpired} {
		if errors.Is(err, why) {
			return newProblem(http.StatusUnauthorized, why.Error())
		}
	}
	return nil
}

// refusalReason is the Observer's reason for a key unauthorizedBecause
// refuses.
func refusalReason(err error) string {
	switch {
	case errors.Is(err, auth.ErrRevoked):
		return "revoked"
	case errors.Is(err, auth.ErrExpired):
		return "expired"
	}
	return "invalid"
}
