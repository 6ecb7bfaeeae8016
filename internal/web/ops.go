package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// ReadyCheck is one dependency that GET /readyz checks.
type ReadyCheck struct {
	// Name is shown to the client as "<Name> unavailable" when Check
	// fails, e.g. "database" or "signer"; the error itself is only logged.
	Name string
	// Check returns nil when the dependency answers. It must honour ctx:
	// /readyz gives all checks together readyTimeout.
	Check func(ctx context.Context) error
}

// readyTimeout bounds a whole /readyz: a probe that hangs is a failure,
// and the orchestrator's own timeout is usually a few seconds.
const readyTimeout = 2 * time.Second

// ops serves the operations endpoints: /healthz, /readyz and /metrics.
type ops struct {
	ready   []ReadyCheck // nil: no /readyz
	metrics http.Handler // nil: no /metrics
	log     *slog.Logger
}

// healthz answers 200 "ok" while the process serves HTTP. It checks no
// dependency, so that an orchestrator restarts the process only when it is
// stuck, never because the database is.
func (o *ops) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// readyz answers 200 "ok" when every check passes within readyTimeout,
// else 503 naming the first dependency that failed and nothing more.
func (o *ops) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, c := range o.ready {
		if err := c.Check(ctx); err != nil {
			o.log.WarnContext(r.Context(), "web: not ready", "check", c.Name, "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, c.Name+" unavailable\n")
			return
		}
	}
	io.WriteString(w, "ok\n")
}

// quiet reports whether requests to route are logged at debug level only
// (unless they fail with 5xx): probes and scrapes come every few seconds.
func quiet(route string) bool {
	switch route {
	case "GET /healthz", "GET /readyz", "GET /metrics":
		return true
	}
	return false
}
