package server

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"userapi/auth"
	"userapi/ratelimit"
)

// mountAdmin serves opts.Admin, the job dashboard, at AdminPrefix. A browser
// opens it with the admin key as its Basic password, which the browser then
// sends on its own: so the dashboard refuses to be framed and refuses
// state-changing requests from other sites, which could otherwise cancel and
// delete jobs through a visitor's browser.
func mountAdmin(e *echo.Echo, opts Options) {
	admin := echo.WrapHandler(opts.Admin)
	if opts.Auth != nil {
		var failures *failedLogins
		if opts.RateLimit != nil && !opts.RateLimit.Writes.Off() {
			failures = &failedLogins{limiter: opts.RateLimit.Limiter, policy: opts.RateLimit.Writes, blocked: map[string]time.Time{}}
		}
		admin = adminOnly(opts.Auth, opts.Observer, failures)(admin)
	}
	admin = sameOriginOnly(admin)
	e.Any(AdminPrefix, admin)
	e.Any(AdminPrefix+"/*", admin)
}

// crossOrigin tells a browser's cross-site request from a same-origin one:
// by Sec-Fetch-Site, or else by comparing Origin with Host. Requests with
// neither header do not come from a browser and pass.
var crossOrigin = http.NewCrossOriginProtection()

// sameOriginOnly refuses, with 403, a state-changing request (not GET, HEAD
// or OPTIONS) that a browser sent from another site, and forbids framing.
func sameOriginOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "frame-ancestors 'none'")
		if crossOrigin.Check(c.Request()) != nil {
			return newProblem(http.StatusForbidden, "the job dashboard accepts changes only from its own pages, not from another site")
		}
		return next(c)
	}
}

// adminOnly guards the job dashboard, which a browser opens: browsers do not
// send Bearer tokens, so it takes an admin key as the password of HTTP Basic
// authentication (any user name), which makes the browser ask for it.
// Refusals are told to obs like the API's; failed attempts spend failures
// (nil: not limited).
func adminOnly(keys KeyChecker, obs Observer, failures *failedLogins) echo.MiddlewareFunc {
	refused := func(reason string) {
		if obs != nil {
			obs.AuthRefused(reason)
		}
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			_, key, ok := c.Request().BasicAuth()
			if !ok {
				refused("missing")
				return adminChallenge("the job dashboard needs an API key with the admin scope, as the password")
			}
			if wait := failures.blockedFor(c.RealIP()); wait > 0 {
				return tooManyFailures(wait, obs)
			}
			k, err := keys.Check(c.Request().Context(), key)
			if err != nil {
				p := unauthorizedBecause(err)
				if p == nil {
					return err // the store's failure, not the key's
				}
				refused(refusalReason(err))
				wait, err := failures.failed(c, c.RealIP())
				if err != nil {
					return err // only a cancelled request gets here
				}
				if wait > 0 {
					return tooManyFailures(wait, obs)
				}
				return adminChallenge(p.Detail)
			}
			if !auth.Allows(k.Scopes, auth.ScopeAdmin) {
				refused("scope")
				return newProblem(http.StatusForbidden, fmt.Sprintf("the job dashboard needs the admin scope; the key %s has %s", k.Prefix, strings.Join(k.Scopes, ", ")))
			}
			setCaller(c, Caller{KeyPrefix: k.Prefix, Scopes: k.Scopes})
			return next(c)
		}
	}
}

func adminChallenge(detail string) error {
	p := newProblem(http.StatusUnauthorized, detail)
	p.header = http.Header{"Www-Authenticate": {`Basic realm="userapi job dashboard", charset="UTF-8"`}}
	return p
}

func tooManyFailures(wait time.Duration, obs Observer) error {
	if obs != nil {
		obs.RateLimited("writes")
	}
	p := newProblem(http.StatusTooManyRequests, fmt.Sprintf("too many failed sign-ins to the job dashboard from this address; retry in %s s", seconds(wait)))
	p.header = http.Header{"Retry-After": {seconds(wait)}}
	return p
}

// maxBlocked bounds the addresses failedLogins remembers.
const maxBlocked = 10000

// failedLogins limits failed dashboard sign-ins per address. Each failure
// spends the address's budget in the shared limiter; once it is spent, the
// address is refused before its key is even checked, until the budget
// refills, so that a correct guess cannot be told from a wrong one then.
type failedLogins struct {
	limiter ratelimit.Limiter
	policy  ratelimit.Policy

	mu      sync.Mutex
	blocked map[string]time.Time // address → refused until
}

// blockedFor is how long addr is still refused; zero when it is not.
func (f *failedLogins) blockedFor(addr string) time.Duration {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	until, ok := f.blocked[addr]
	if !ok {
		return 0
	}
	if wait := time.Until(until); wait > 0 {
		return wait
	}
	delete(f.blocked, addr)
	return 0
}

// failed spends one failure from addr's budget and says how long addr is
// now refused; zero while budget remains.
func (f *failedLogins) failed(c echo.Context, addr string) (time.Duration, error) {
	if f == nil {
		return 0, nil
	}
	d, err := f.limiter.Allow(c.Request().Context(), "admin-auth:ip:"+addr, f.policy)
	if err != nil || d.Allowed {
		return 0, err
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.blocked) >= maxBlocked {
		for a, until := range f.blocked {
			if until.Before(now) {
				delete(f.blocked, a)
			}
		}
	}
	if len(f.blocked) < maxBlocked {
		f.blocked[addr] = now.Add(d.RetryAfter)
	}
	return d.RetryAfter, nil
}
