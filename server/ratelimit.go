package server

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"userapi/ratelimit"
)

// RateLimit configures the limiter. Reads and Writes are separate budgets;
// each operation spends the one openapi.yaml gives it (see operation.budget).
type RateLimit struct {
	Limiter ratelimit.Limiter
	Reads   ratelimit.Policy
	Writes  ratelimit.Policy
}

// rateLimit spends one request from the client's budget b, sets the
// RateLimit-* headers, and refuses with 429 and Retry-After when the budget
// is spent. The client is its API key once identify has verified it, and
// otherwise its IP address as ipExtractor found it. It runs again after
// verify, where it spends only when verify has just made the client a key:
// the key's budget then counts this request too.
func rateLimit(rl RateLimit, b budget, obs Observer) echo.MiddlewareFunc {
	policy, class := rl.Reads, "r:"
	if b == budgetWrites {
		policy, class = rl.Writes, "w:"
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if policy.Off() {
			return next
		}
		return func(c echo.Context) error {
			req := c.Request()
			client := clientOf(c)
			if c.Get(limitedAsKey) == client {
				return next(c)
			}
			c.Set(limitedAsKey, client)
			d, err := rl.Limiter.Allow(req.Context(), class+client, policy)
			if err != nil {
				// Only a cancelled request gets here: the limiter falls back
				// to memory on its own.
				return err
			}
			h := c.Response().Header()
			h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
			h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
			h.Set("RateLimit-Reset", seconds(d.Reset))
			if !d.Allowed {
				if obs != nil {
					obs.RateLimited(string(b))
				}
				p := newProblem(http.StatusTooManyRequests, fmt.Sprintf(
					"too many requests: the limit is %d per %s; retry in %s s", policy.Limit, policy.Period, seconds(d.RetryAfter)))
				p.header = http.Header{"Retry-After": {seconds(d.RetryAfter)}}
				return p
			}
			return next(c)
		}
	}
}

// clientOf names who sent the request, for what is kept per client (its
// rate budget, its last write): its API key, or its address without one.
func clientOf(c echo.Context) string {
	if who := caller(c); who.KeyPrefix != "" {
		return "key:" + who.KeyPrefix
	}
	return "ip:" + c.RealIP()
}

// limitedAsKey holds the client a request has spent from, so that it
// spends once per client.
const limitedAsKey = "limited_as"

// seconds rounds up to whole seconds, at least 1 for any wait at all.
func seconds(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}

// ipExtractor finds the client's address: the peer's, unless the peer is a
// trusted proxy, in which case X-Forwarded-For (the nearest address that is
// not a trusted proxy) or X-Real-IP. Headers from anyone else are ignored,
// so they cannot be used to dodge the limit or forge the logs.
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	xff := echo.ExtractIPFromXFFHeader(opts...)
	realIP := echo.ExtractIPFromRealIPHeader(opts...)
	return func(req *http.Request) string {
		if req.Header.Get(echo.HeaderXForwardedFor) != "" {
			return xff(req)
		}
		return realIP(req)
	}
}
