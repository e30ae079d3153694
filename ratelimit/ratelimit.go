// Package ratelimit decides whether a client may make another request, with
// the generic cell rate algorithm (GCRA): a budget of Limit requests per
// Period that refills smoothly, one request every Period/Limit, and allows a
// burst of up to Limit at once. Unlike a fixed window it never lets a client
// send twice the limit across a window's edge.
//
// The state lives in Redis, so every instance spends from one budget per
// client, and each decision is part of one atomic script call: concurrent
// requests of one client share a call, and a spent budget is refused from
// memory until it refills. When Redis is unreachable, decisions fall back to
// this process's memory with the same policy.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Policy is a budget: Limit requests per Period, with bursts up to Limit.
type Policy struct {
	Limit  int
	Period time.Duration
}

// ParsePolicy reads "100/1m" (100 requests a minute); "off" gives the zero
// Policy, which Off reports.
func ParsePolicy(s string) (Policy, error) {
	if s == "off" {
		return Policy{}, nil
	}
	n, period, ok := strings.Cut(s, "/")
	limit, err := strconv.Atoi(n)
	if !ok || err != nil || limit < 1 {
		return Policy{}, errors.New(`must be "off" or N/DURATION, such as 100/1m`)
	}
	d, err := time.ParseDuration(period)
	if err != nil || d <= 0 {
		return Policy{}, errors.New(`must be "off" or N/DURATION, such as 100/1m`)
	}
	return Policy{Limit: limit, Period: d}, nil
}

// Off reports whether the policy limits nothing.
func (p Policy) Off() bool { return p.Limit == 0 }

func (p Policy) String() string {
	if p.Off() {
		return "off"
	}
	return fmt.Sprintf("%d/%s", p.Limit, p.Period)
}

// interval is the time one request's cost takes to refill: at least a
// nanosecond, for a budget of more than a billion a second.
func (p Policy) interval() time.Duration { return max(p.Period/time.Duration(p.Limit), 1) }

// Decision is the answer for one request.
type Decision struct {
	Allowed bool
	// Limit is the policy's limit, for the RateLimit-Limit header.
	Limit int
	// Remaining is how many more requests would be allowed right now.
	Remaining int
	// Reset is how long until the budget is full again.
	Reset time.Duration
	// RetryAfter is how long to wait before the next request can pass; zero
	// when this one was allowed.
	RetryAfter time.Duration
}

// gcra is the algorithm, given the client's theoretical arrival time (tat:
// when its budget would be full again), now, and the policy. It returns the
// decision and the new tat to store.
func gcra(tat, now time.Time, p Policy) (Decision, time.Time) {
	interval := p.interval()
	burst := time.Duration(p.Limit) * interval
	if tat.Before(now) {
		tat = now
	}
	newTAT := tat.Add(interval)
	allowAt := newTAT.Add(-burst)
	if now.Before(allowAt) {
		return Decision{
			Limit:      p.Limit,
			Remaining:  0,
			Reset:      tat.Sub(now),
			RetryAfter: allowAt.Sub(now),
		}, tat
	}
	return Decision{
		Allowed:   true,
		Limit:     p.Limit,
		Remaining: int(now.Sub(allowAt) / interval),
		Reset:     newTAT.Sub(now),
	}, newTAT
}

// Limiter decides for one client key under one policy.
type Limiter interface {
	Allow(ctx context.Context, key string, p Policy) (Decision, error)
}
