package metrics

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector reads pgxpool's statistics at scrape time, so the request
// path pays nothing for them.
type poolCollector struct {
	stat func() *pgxpool.Stat

	acquired, idle, total, max *prometheus.Desc
	acquires, emptyAcquires    *prometheus.Desc
	acquireWait                *prometheus.Desc
}

// NewPoolCollector registers on reg the statistics of the connection pool
// that stat describes (pgxpool.Pool.Stat).
func NewPoolCollector(reg prometheus.Registerer, stat func() *pgxpool.Stat) {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("userapi_db_pool_"+name, help, nil, nil)
	}
	reg.MustRegister(&poolCollector{
		stat:          stat,
		acquired:      d("acquired_conns", "Connections in use by the service now."),
		idle:          d("idle_conns", "Open connections nobody is using now."),
		total:         d("total_conns", "Open connections now, acquired, idle or being opened."),
		max:           d("max_conns", "Most connections the pool will open (USERAPI_DB_MAX_CONNS)."),
		acquires:      d("acquires_total", "Connections handed out by the pool."),
		emptyAcquires: d("empty_acquires_total", "Acquires that had to wait because no idle connection was free."),
		acquireWait:   d("acquire_wait_seconds_total", "Time spent waiting for a connection, summed over every acquire."),
	})
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.total, c.max, c.acquires, c.emptyAcquires, c.acquireWait} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stat()
	ch <- prometheus.MustNewConstMetric(c.acquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.emptyAcquires, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.acquireWait, prometheus.CounterValue, s.AcquireDuration().Seconds())
}
