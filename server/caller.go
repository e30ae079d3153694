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
	c.Set(callerKey, Caller{KeyPrefix: key.Prefix, Scopes: key.Scopes})
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
				p := newProblem(http.StatusForbidden, fmt.Sprintf("this operation needs the scope %s; the key %s has %s",
					needs, who.KeyPrefix, strings.Join(who.Scopes, ", ")))
				p.header = http.Header{"Www-Authenticate": {fmt.Sprintf(`Bearer realm="userapi", error="insufficient_scope", scope=%q`, needs)}}
				return p
			}
			return next(c)
		}
	}
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
		switch {
		case errors.Is(err, auth.ErrRevoked):
			reason = "revoked"
		case errors.Is(err, auth.ErrExpired):
			reason = "expired"
		default:
			reason = "invalid"
		}
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

// adminOnly guards the job dashboard, which a browser opens: browsers do not
// send Bearer tokens, so it takes an admin key as the password of HTTP Basic
// authentication (any user name), which makes the browser ask for it.
func adminOnly(keys KeyChecker) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			_, key, ok := c.Request().BasicAuth()
			if !ok {
				return adminChallenge("the job dashboard needs an API key with the admin scope, as the password")
			}
			k, err := keys.Check(c.Request().Context(), key)
			if err != nil {
				if p := unauthorizedBecause(err); p != nil {
					return adminChallenge(p.Detail)
				}
				return err
			}
			if !auth.Allows(k.Scopes, auth.ScopeAdmin) {
				return newProblem(http.StatusForbidden, fmt.Sprintf("the job dashboard needs the admin scope; the key %s has %s", k.Prefix, strings.Join(k.Scopes, ", ")))
			}
			c.Set(callerKey, Caller{KeyPrefix: k.Prefix, Scopes: k.Scopes})
			return next(c)
		}
	}
}

func adminChallenge(detail string) error {
	p := newProblem(http.StatusUnauthorized, detail)
	p.header = http.Header{"Www-Authenticate": {`Basic realm="userapi job dashboard", charset="UTF-8"`}}
	return p
}
