package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// JobStates are the states River gives a job, so that every one of them is
// reported, zero included, and nothing else is.
var JobStates = []string{"available", "scheduled", "pending", "running", "retryable", "completed", "cancelled", "discarded"}

// jobsCollector counts the jobs by state with one query per scrape.
type jobsCollector struct {
	count   func(context.Context) (map[string]int64, error)
	timeout time.Duration
	desc    *prometheus.Desc
}

// NewJobsCollector registers on reg the number of jobs in each state, as
// count returns it. Each scrape gives count at most timeout; when it fails
// the scrape reports the error and goes on with the other metrics.
func NewJobsCollector(reg prometheus.Registerer, timeout time.Duration, count func(context.Context) (map[string]int64, error)) {
	reg.MustRegister(&jobsCollector{
		count:   count,
		timeout: timeout,
		desc:    prometheus.NewDesc("userapi_jobs", "Background jobs in the queue's table now, by state.", []string{"state"}, nil),
	})
}

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, s := range JobStates {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), s)
	}
}

// Deliveries counts webhook delivery attempts by outcome.
type Deliveries struct {
	total *prometheus.CounterVec
}

// DeliveryOutcomes are the outcomes Deliveries reports, each from zero.
var DeliveryOutcomes = []string{"success", "retry", "failed"}

// NewDeliveries registers the delivery counter on reg.
func NewDeliveries(reg prometheus.Registerer) *Deliveries {
	d := &Deliveries{total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "userapi_webhook_deliveries_total",
		Help: "Webhook delivery attempts by outcome: success (2xx), retry (to be tried again) or failed (given up).",
	}, []string{"outcome"})}
	for _, o := range DeliveryOutcomes {
		d.total.WithLabelValues(o)
	}
	reg.MustRegister(d.total)
	return d
}

// Delivered records one attempt's outcome.
func (d *Deliveries) Delivered(outcome string) {
	d.total.WithLabelValues(outcome).Inc()
}
