package web

import (
	"net/http"
	"strings"
	"time"
)

// RequestObserver is told of every request once it is answered, for
// latency metrics (see internal/metrics). It must not block.
type RequestObserver interface {
	// ObserveRequest receives the request's method (one of the standard
	// methods or "other"), its route pattern without the method ("/e/{token}",
	// or "(none)"), the status code and the time taken. Never the path:
	// paths carry link tokens.
	ObserveRequest(method, route string, status int, d time.Duration)
}

// observeRequests tells obs of every request; a nil obs leaves next as is.
func observeRequests(next http.Handler, mux *http.ServeMux, obs RequestObserver) http.Handler {
	if obs == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		pattern := routeOf(mux, r)
		rec := &recorder{ResponseWriter: w}
		defer func() {
			// Also on a panic, which recoverPanics (inside) answers with 500
			// unless the response had begun.
			code := rec.status
			if code == 0 {
				code = http.StatusOK
			}
			obs.ObserveRequest(methodLabel(r.Method), routeLabel(pattern), code, time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

// routeLabel returns the path part of a route pattern: "GET /e/{token}"
// becomes "/e/{token}".
func routeLabel(pattern string) string {
	if pattern == "" {
		return "(none)"
	}
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = strings.TrimLeft(pattern[i+1:], " \t")
	}
	return pattern
}

// methodLabel keeps the label's values few: a client can send any method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}
