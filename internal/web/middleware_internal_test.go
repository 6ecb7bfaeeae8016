package web

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRecoverPanics(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom/{token}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Disposition", "attachment")
		panic("kaboom")
	})
	h := logRequests(securityHeaders(recoverPanics(mux, mux, log)), mux, log)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boom/SECRETTOKEN", nil))
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 500 || strings.TrimSpace(string(body)) != "internal error" {
		t.Errorf("panic: %d %q, want 500 \"internal error\"", res.StatusCode, body)
	}
	if res.Header.Get("Content-Disposition") != "" || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("panic response headers: %v", res.Header)
	}
	out := logs.String()
	if !strings.Contains(out, "kaboom") || !strings.Contains(out, "GET /boom/{token}") || !strings.Contains(out, "status=500") {
		t.Errorf("log lacks the panic, the route or the status:\n%s", out)
	}
	if strings.Contains(out, "SECRETTOKEN") {
		t.Errorf("log holds the path:\n%s", out)
	}
}

func TestLimitBody(t *testing.T) {
	h := limitBody(10, func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err == nil {
			t.Errorf("reading 11 bytes under a limit of 10 did not fail")
		}
	})
	h(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader("01234567890")))
}
