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
// rate-limit headers, and refuses with 429 and Retry-After when the budget
// is spent. The client is its API key or token subject once identified,
// and otherwise its IP address as ipExtractor found it; a key with a rate
// of its own spends under that policy instead of the default. It runs
// again after verify, where it spends only when verify has just made the
// client a key: the key's budget then counts this request too.
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
			who := caller(c)
			client, p := clientOf(c, who), policy
			if !who.Rate.Off() {
				p = who.Rate
			}
			if c.Get(limitedAsKey) == client {
				return next(c)
			}
			c.Set(limitedAsKey, client)
			d, err := rl.Limiter.Allow(req.Context(), class+client, p)
			if err != nil {
				// Only a cancelled request gets here: the limiter falls back
				// to memory on its own.
				return err
			}
			setRateHeaders(c.Response().Header(), string(b), p, d)
			if !d.Allowed {
				if obs != nil {
					obs.RateLimited(string(b))
				}
				pr := newProblem(http.StatusTooManyRequests, fmt.Sprintf(
					"too many requests: the limit is %d per %s; retry in %s s", p.Limit, p.Period, seconds(d.RetryAfter)))
				pr.header = http.Header{"Retry-After": {seconds(d.RetryAfter)}}
				return pr
			}
			return next(c)
		}
	}
}

// setRateHeaders describes decision d under policy p, named name (the
// budget), in two vocabularies: the structured fields of the IETF httpapi
// draft (draft-ietf-httpapi-ratelimit-headers-10),
//
//	RateLimit-Policy: "reads";q=100;w=60
//	RateLimit: "reads";r=42;t=17
//
// and the older RateLimit-Limit, -Remaining and -Reset, kept for the
// clients that read them.
func setRateHeaders(h http.Header, name string, p ratelimit.Policy, d ratelimit.Decision) {
	h.Set("RateLimit-Policy", fmt.Sprintf("%q;q=%d;w=%s", name, p.Limit, seconds(p.Period)))
	h.Set("RateLimit", fmt.Sprintf("%q;r=%d;t=%s", name, d.Remaining, seconds(d.Reset)))
	h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("RateLimit-Reset", seconds(d.Reset))
}

// clientOf names who sent the request, for what is kept per client (its
// rate budget, its last write): its API key, its token's subject, or its
// address without either.
func clientOf(c echo.Context, who Caller) string {
	switch {
	case who.KeyPrefix != "":
		return "key:" + who.KeyPrefix
	case who.Subject != "":
		return who.ID()
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
