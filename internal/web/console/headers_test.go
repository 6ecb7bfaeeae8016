package console_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/auth"
)

// TestSecurityHeaders checks the console's headers win over the server's
// defaults on every kind of console response, through the whole server.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	e.account("ann@example.org", auth.Administrator)
	session := e.login("ann@example.org")
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "same-origin",
		"Cache-Control":           "no-store",
	}
	for _, path := range []string{"/console/", "/console/login", "/console/no-such-page", "/console/accounts"} {
		res, _ := e.get(path, session)
		for k, v := range want {
			if got := res.Header.Get(k); got != v {
				t.Errorf("GET %s: %s = %q, want %q", path, k, got, v)
			}
		}
		if got := res.Header.Get("Strict-Transport-Security"); got != "" {
			t.Errorf("GET %s over HTTP: Strict-Transport-Security = %q, want none", path, got)
		}
	}
	// A 401 of a POST without a session too.
	res, _ := e.post("/console/accounts", "", nil)
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("Content-Security-Policy") != want["Content-Security-Policy"] {
		t.Errorf("POST without session = %d with CSP %q", res.StatusCode, res.Header.Get("Content-Security-Policy"))
	}
	// The rest of the server keeps its own policy (no data: images).
	res, _ = e.get("/healthz", "")
	if csp := res.Header.Get("Content-Security-Policy"); strings.Contains(csp, "data:") || csp == "" {
		t.Errorf("/healthz CSP = %q, want the server's own", csp)
	}
}

func TestStatic(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct{ path, ctype string }{
		{"/console/static/console.css", "text/css; charset=utf-8"},
		{"/console/static/console.js", "text/javascript; charset=utf-8"},
	} {
		res, body := e.get(tt.path, "")
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != tt.ctype || len(body) < 100 {
			t.Errorf("GET %s = %d %q (%d bytes), want 200 %q", tt.path, res.StatusCode, res.Header.Get("Content-Type"), len(body), tt.ctype)
		}
	}
	for _, path := range []string{"/console/static/nosuch.css", "/console/static/..%2fconsole.go", "/console/static/layout.html"} {
		if res, _ := e.get(path, ""); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, res.StatusCode)
		}
	}
}

// TestTemplatesHaveNoInlineCode checks every page keeps to the CSP: no
// inline script, style element or style attribute, and no event handler
// attribute.
func TestTemplatesHaveNoInlineCode(t *testing.T) {
	e := newEnv(t)
	e.account("ann@example.org", auth.Administrator)
	session := e.login("ann@example.org")
	bad := []string{"<style", " style=", "<script>", " onclick=", " onload=", " onsubmit=", "javascript:"}
	for _, path := range []string{"/console/", "/console/login", "/console/audit", "/console/accounts", "/console/mail", "/console/nosuch"} {
		_, body := e.get(path, session)
		for _, b := range bad {
			if strings.Contains(body, b) {
				t.Errorf("GET %s holds %q", path, b)
			}
		}
	}
}
