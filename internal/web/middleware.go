package web

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/web/clientip"
)

// contentSecurityPolicy allows only our own stylesheets, images, scripts
// and form targets: no inline script or style, no framing.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// securityHeaders sets the headers every response carries. Pages default
// to no-store, as most are behind a link or show a key; static files
// override Cache-Control.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// recorder notes the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// Flush and Hijack keep the interfaces older code checks for.
func (rec *recorder) Flush() {
	if f, ok := rec.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := rec.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("web: response does not support hijacking")
}

// logRequests logs one line per request. It logs the route pattern
// ("GET /e/{token}"), never the path or query, which carry link tokens and
// referral tokens, and never form values.
func logRequests(next http.Handler, mux *http.ServeMux, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		route := routeOf(mux, r)
		if route == "" {
			route = "(none)"
		}
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		code := rec.status
		if code == 0 {
			code = http.StatusOK
		}
		level := slog.LevelInfo
		if code >= 500 {
			level = slog.LevelError
		} else if quiet(route) {
			level = slog.LevelDebug
		}
		method := r.Method
		if len(method) > 16 {
			method = method[:16]
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		log.LogAttrs(r.Context(), level, "http request",
			slog.String("method", method), slog.String("route", route), slog.Int("status", code),
			slog.Int64("bytes", rec.bytes), slog.Duration("duration", time.Since(start)), slog.String("remote", host))
	})
}

// router is a handler with routes of its own (the console): routeOf asks
// it for the pattern of the route a request matches, "" for none.
type router interface {
	Route(r *http.Request) string
}

// routeOf returns the pattern of the route r matches, asking a handler
// with routes of its own for its pattern ("GET /console/join/{token}"
// rather than "/console/").
func routeOf(mux *http.ServeMux, r *http.Request) string {
	h, route := mux.Handler(r)
	if sub, ok := h.(router); ok {
		if p := sub.Route(r); p != "" {
			return p
		}
	}
	return route
}

// recoverPanics answers a panicking request with 500 "internal error" and
// logs the panic with its stack.
func recoverPanics(next http.Handler, mux *http.ServeMux, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			route := routeOf(mux, r)
			log.ErrorContext(r.Context(), "web: panic serving request", "route", route, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if rec, ok := w.(*recorder); ok && rec.status != 0 {
				return // the response has begun; the client sees it cut short
			}
			h := w.Header()
			for _, k := range []string{"Content-Disposition", "Content-Encoding", "ETag", "Last-Modified"} {
				h.Del(k)
			}
			http.Error(w, "internal error", http.StatusInternalServerError)
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody caps the request body at n bytes; reading more fails with an
// *http.MaxBytesError, which the handlers answer with 413.
func limitBody(n int64, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next(w, r)
	}
}

// recordOrigin puts the client's address in the request's context, so the
// audit events its transactions append say from where (audit.WithOrigin).
// It is the address of the connection, or behind a trusted proxy the one
// it forwarded (clientip.Addr): forwarding headers from anyone else are
// ignored, since anyone who reaches mailca directly can forge them.
func recordOrigin(next http.Handler, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(audit.WithOrigin(r.Context(), clientip.Addr(r, trusted))))
	})
}
