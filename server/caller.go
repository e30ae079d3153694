package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"userapi/accesstoken"
	"userapi/auth"
	"userapi/ratelimit"
)

const (
	callerKey    = "caller"
	authErrorKey = "auth_error"
	pendingKey   = "pending_key" // a key identify left for verify
)

// Caller is who sent a request: the API key or the identity provider's
// token that authenticated it.
type Caller struct {
	// KeyPrefix is the key's public prefix, which names it in logs and in
	// `userapi keys list`; empty for a token.
	KeyPrefix string
	// Subject is the token's sub; empty for a key.
	Subject string
	// Scopes are what the key or token may do.
	Scopes []string
	// Rate, unless Off, is the key's own rate budget, which replaces the
	// default policy of each budget it spends.
	Rate ratelimit.Policy
}

// ID names the caller in logs, rate-limit budgets and scoped records (such
// as idempotency keys and webhook owners): the key's prefix, or "sub:" and
// the token's subject, which no key prefix can look like. Empty when no one
// was authenticated. Never the token itself.
func (c Caller) ID() string {
	switch {
	case c.KeyPrefix != "":
		return c.KeyPrefix
	case c.Subject != "":
		return "sub:" + c.Subject
	}
	return ""
}

// String names the caller in a detail: "the key uak_…" or "the token of …".
func (c Caller) String() string {
	if c.KeyPrefix != "" {
		return "the key " + c.KeyPrefix
	}
	return fmt.Sprintf("the token of %q", c.Subject)
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

// TokenVerifier verifies the identity provider's access tokens (see
// accesstoken.Verifier).
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (accesstoken.Token, error)
}

var errNotBearer = errors.New(`the Authorization header must be "Bearer <key or token>"`)

// identify checks the API key or token a request presents, before the rate
// limiter so that the limiter can count per caller. It refuses nothing
// itself: authorize does, for the operations that need a caller. A key has
// its own shape (auth.PrefixOf); anything else shaped like a JWT goes to
// tokens when the identity provider is configured. A token is verified
// here, with no lookup but the provider's cached keys.
//
// With later set, a well-formed key whose prefix has not been verified here
// is left for verify, after the limiter: until then the request counts
// against its address, so that made-up keys, a database lookup each, are
// refused once the address's budget is spent rather than each getting a
// budget of its own.
func identify(keys KeyChecker, tokens TokenVerifier, later bool) echo.MiddlewareFunc {
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
			if _, isKey := auth.PrefixOf(token); !isKey && tokens != nil && accesstoken.Looks(token) {
				checkToken(c, tokens, token)
				return next(c)
			}
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
	setCaller(c, Caller{KeyPrefix: key.Prefix, Scopes: key.Scopes, Rate: key.Rate})
}

// checkToken records whose token raw is, or why it is refused. The token's
// scopes count only where they name one of auth.Scopes (a provider adds
// its own, such as openid).
func checkToken(c echo.Context, tokens TokenVerifier, raw string) {
	tok, err := tokens.Verify(c.Request().Context(), raw)
	if err != nil {
		c.Set(authErrorKey, err)
		return
	}
	var scopes []string
	for _, s := range tok.Scopes {
		if slices.Contains(auth.Scopes, s) && !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	setCaller(c, Caller{Subject: tok.Subject, Scopes: scopes})
}

// authorize refuses a request to an operation that needs the scope needs
// (its x-scope in openapi.yaml) unless identify found a key or token that
// holds it.
func authorize(needs string, obs Observer) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			who := caller(c)
			if who.ID() == "" {
				return unauthorized(c, obs)
			}
			if !auth.Allows(who.Scopes, needs) {
				if obs != nil {
					obs.AuthRefused("scope")
				}
				return insufficientScope(needs, fmt.Sprintf("this operation needs the scope %s; %s has %s",
					needs, who, scopeList(who.Scopes)))
			}
			return next(c)
		}
	}
}

// scopeList names scopes in a detail.
func scopeList(scopes []string) string {
	if len(scopes) == 0 {
		return "none of this API's scopes"
	}
	return strings.Join(scopes, ", ")
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
		p = newProblem(http.StatusUnauthorized, `this operation needs an API key or an access token: send it as "Authorization: Bearer <key or token>"`)
		p.header = http.Header{"Www-Authenticate": {`Bearer realm="userapi"`}}
	} else if errors.Is(err, accesstoken.ErrUnavailable) {
		// The provider's fault, not the token's.
		p = newProblem(http.StatusServiceUnavailable, "the identity provider's keys cannot be fetched to verify the token; retry shortly")
		p.header = http.Header{"Retry-After": {"1"}}
		p.cause = err
		return p
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
	var bad *accesstoken.Error
	if errors.As(err, &bad) {
		return newProblem(http.StatusUnauthorized, bad.Error())
	}
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
