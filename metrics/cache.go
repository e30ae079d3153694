package metrics

import "github.com/prometheus/client_golang/prometheus"

// CacheHits counts where the user cache's answers came from. Its fields
// match cache.Stats, which converts to it directly.
type CacheHits struct {
	Memory   uint64
	Redis    uint64
	Database uint64
	Bypassed uint64
}

// cacheCollector reads the cache's own counters at scrape time, so a cache
// hit costs nothing more than it did.
type cacheCollector struct {
	stats func() CacheHits
	desc  *prometheus.Desc
}

// NewCacheCollector registers on reg the cache's answers by tier, as stats
// reports them.
func NewCacheCollector(reg prometheus.Registerer, stats func() CacheHits) {
	reg.MustRegister(&cacheCollector{
		stats: stats,
		desc: prometheus.NewDesc("userapi_cache_reads_total",
			"Single-user reads by where the answer came from: memory (this process), redis, database (after a miss) or bypassed (Redis unavailable).",
			[]string{"tier"}, nil),
	})
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for _, t := range []struct {
		tier string
		n    uint64
	}{{"memory", s.Memory}, {"redis", s.Redis}, {"database", s.Database}, {"bypassed", s.Bypassed}} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(t.n), t.tier)
	}
}
