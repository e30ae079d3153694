// Package metrics defines the service's Prometheus metrics: HTTP requests,
// the database pool, the user cache, rate-limit refusals, background jobs and
// webhook deliveries. Everything registers on a registry it is given, never
// the global default one, so that one process (a test, say) can hold several
// instances. The other packages do not import Prometheus: they report through
// small interfaces and functions this package implements.
package metrics
