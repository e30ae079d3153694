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
			key, p := clientKey(class, c, who), policy
			if !who.Rate.Off() {
				p = who.Rate
			}
			if c.Get(limitedAsKey) == key {
				return next(c)
			}
			c.Set(limitedAsKey, key)
			d, err := rl.Limiter.Allow(req.Context(), key, p)
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
// clients that read them. It runs on every limited request: the five
// values are cut from one string, and set under their canonical names.
func setRateHeaders(h http.Header, name string, p ratelimit.Policy, d ratelimit.Decision) {
	var buf [160]byte
	b := buf[:0]
	var ends [5]int
	b = strconv.AppendQuote(b, name)
	b = append(b, ";q="...)
	b = strconv.AppendInt(b, int64(p.Limit), 10)
	b = append(b, ";w="...)
	b = appendSeconds(b, p.Period)
	ends[0] = len(b)
	b = strconv.AppendQuote(b, name)
	b = append(b, ";r="...)
	b = strconv.AppendInt(b, int64(d.Remaining), 10)
	b = append(b, ";t="...)
	b = appendSeconds(b, d.Reset)
	ends[1] = len(b)
	b = strconv.AppendInt(b, int64(d.Limit), 10)
	ends[2] = len(b)
	b = strconv.AppendInt(b, int64(d.Remaining), 10)
	ends[3] = len(b)
	b = appendSeconds(b, d.Reset)
	ends[4] = len(b)
	all := string(b)
	vals := make([]string, 5)
	for i, key := range [5]string{"Ratelimit-Policy", "Ratelimit", "Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset"} {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		vals[i] = all[start:ends[i]]
		h[key] = vals[i : i+1 : i+1]
	}
}

// clientOf names who sent the request, for what is kept per client (its
// rate budget, its last write): its API key, its token's subject, or its
// address without either.
func clientOf(c echo.Context, who Caller) string {
	return clientKey("", c, who)
}

// clientKey is clientOf after prefix, made in one allocation.
func clientKey(prefix string, c echo.Context, who Caller) string {
	switch {
	case who.KeyPrefix != "":
		return prefix + "key:" + who.KeyPrefix
	case who.Subject != "":
		return prefix + "sub:" + who.Subject
	}
	return prefix + "ip:" + c.RealIP()
}

// limitedAsKey holds the budget key a request has spent from, so that it
// spends once per client.
const limitedAsKey = "limited_as"

// seconds rounds up to whole seconds, at least 1 for any wait at all.
func seconds(d time.Duration) string {
	return string(appendSeconds(nil, d))
}

func appendSeconds(b []byte, d time.Duration) []byte {
	return strconv.AppendInt(b, int64(math.Ceil(d.Seconds())), 10)
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
