package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Requests counts HTTP requests and their latency. It implements
// server.Observer.
type Requests struct {
	total        *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	refusals     *prometheus.CounterVec
	authRefusals *prometheus.CounterVec
	statusStr    [600]string // strconv.Itoa without an allocation per request

	// series caches each label set's counter and histogram: the label
	// values are few, and looking them up in the vectors (hashing every
	// value, twice) is most of the cost of observing a request.
	series sync.Map // seriesKey → seriesPair
}

type seriesKey struct {
	route, method string
	status        int
}

type seriesPair struct {
	total    prometheus.Counter
	duration prometheus.Observer
}

// NewRequests registers the HTTP metrics on reg. It panics if they are
// already registered there, as prometheus.MustRegister does.
func NewRequests(reg prometheus.Registerer) *Requests {
	r := &Requests{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "userapi_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "userapi_http_request_duration_seconds",
			Help: "Time from receiving a request to answering it, by route template and method.",
			// From a memory cache hit (well under 1ms) to a slow query.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "userapi_rate_limit_refusals_total",
			Help: "Requests refused with 429 by the rate limiter, by budget (reads or writes).",
		}, []string{"budget"}),
		authRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "userapi_auth_refusals_total",
			Help: "Requests refused for their API key, by reason: missing, invalid, revoked, expired (401) or scope (403).",
		}, []string{"reason"}),
	}
	for i := range r.statusStr {
		r.statusStr[i] = strconv.Itoa(i)
	}
	// Both budgets show from the start, so a rate() over them is defined.
	r.refusals.WithLabelValues("reads")
	r.refusals.WithLabelValues("writes")
	for _, reason := range AuthReasons {
		r.authRefusals.WithLabelValues(reason)
	}
	reg.MustRegister(r.total, r.duration, r.refusals, r.authRefusals)
	return r
}

// ObserveRequest records one answered request. route is the route template
// (never the raw path), so the label values stay few.
func (r *Requests) ObserveRequest(route, method string, status int, d time.Duration) {
	key := seriesKey{route, method, status}
	v, ok := r.series.Load(key)
	if !ok {
		s := "other"
		if status >= 0 && status < len(r.statusStr) {
			s = r.statusStr[status]
		}
		// Two callers may both get here; they store the same children.
		v, _ = r.series.LoadOrStore(key, seriesPair{
			total:    r.total.WithLabelValues(route, method, s),
			duration: r.duration.WithLabelValues(route, method),
		})
	}
	p := v.(seriesPair)
	p.total.Inc()
	p.duration.Observe(d.Seconds())
}

// AuthReasons are the reasons a request is refused for its API key.
var AuthReasons = []string{"missing", "invalid", "revoked", "expired", "scope"}

// AuthRefused records one request refused for its API key; reason is one of
// AuthReasons.
func (r *Requests) AuthRefused(reason string) {
	r.authRefusals.WithLabelValues(reason).Inc()
}

// RateLimited records one refusal from the given budget, "reads" or
// "writes".
func (r *Requests) RateLimited(budget string) {
	r.refusals.WithLabelValues(budget).Inc()
}
