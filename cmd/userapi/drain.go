package main

import (
	"log/slog"
	"net/http"
	"time"

	"userapi/server"
)

// drain runs between the stop signal and the listener's close. /readyz
// answers 503 and every response carries Connection: close, while requests
// are served as before: load balancers see the 503 and stop routing here,
// keep-alive clients reconnect elsewhere, and no connection is refused while
// anyone still sends to this instance. This is what a Kubernetes preStop
// sleep would otherwise do.
func drain(ready *server.Readiness, srv *http.Server, delay time.Duration, logger *slog.Logger) {
	ready.Drain()
	srv.SetKeepAlivesEnabled(false) // net/http then answers with Connection: close
	logger.Info("draining", "delay", delay.String())
	time.Sleep(delay)
}
