package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/web/console"
)

func TestLogin(t *testing.T) {
	e := newEnv(t)
	e.account("ann@example.org", auth.Administrator)
	secret := e.secrets["ann@example.org"]

	// The form.
	res, body := e.get("/console/login?next=/console/audit", "")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `name="next" value="/console/audit"`) {
		t.Fatalf("GET /console/login = %d, want the form carrying next:\n%s", res.StatusCode, excerpt(body))
	}

	// Every failure shows the one message, and sets no session.
	e.clock.Add(30e9)
	good := e.code(secret)
	fails := []struct {
		name string
		form url.Values
	}{
		{"wrong password", url.Values{"email": {"ann@example.org"}, "password": {"wrong password, long"}, "code": {good}}},
		{"wrong code", url.Values{"email": {"ann@example.org"}, "password": {password}, "code": {"000000"}}},
		{"unknown account", url.Values{"email": {"nobody@example.org"}, "password": {password}, "code": {good}}},
	}
	for _, tt := range fails {
		t.Run(tt.name, func(t *testing.T) {
			res, body := e.do(request{method: http.MethodPost, path: "/console/login", form: tt.form, remote: "203.0.113.1:1"})
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", res.StatusCode)
			}
			if !strings.Contains(body, "Wrong email address, password or code.") {
				t.Errorf("body lacks the one failure message:\n%s", excerpt(body))
			}
			if _, ok := cookie(res, "mailca_session"); ok {
				t.Errorf("a failed login set a session cookie")
			}
		})
	}

	// Success: a session cookie, and the way to next.
	e.clock.Add(30e9)
	res, _ = e.do(request{method: http.MethodPost, path: "/console/login", remote: "203.0.113.2:1",
		form: url.Values{"email": {"Ann@Example.org"}, "password": {password}, "code": {e.code(secret)}, "next": {"/console/audit?actor=x"}}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/audit?actor=x" {
		t.Fatalf("login = %d to %q, want 303 to /console/audit?actor=x", res.StatusCode, res.Header.Get("Location"))
	}
	c, ok := cookie(res, "mailca_session")
	if !ok || c.Value == "" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
		t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Lax, Path=/, not Secure over HTTP", c)
	}
	res, body = e.get("/console/", c.Value)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "ann@example.org") {
		t.Errorf("dashboard with the new session = %d, want 200 naming the account", res.StatusCode)
	}

	// The same code again is refused: it was used.
	res, _ = e.do(request{method: http.MethodPost, path: "/console/login", remote: "203.0.113.2:1",
		form: url.Values{"email": {"ann@example.org"}, "password": {password}, "code": {e.code(secret)}}})
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("login replaying a code = %d, want 401", res.StatusCode)
	}

	// Nothing secret in the log.
	if logs := e.logs.String(); strings.Contains(logs, password) || strings.Contains(logs, c.Value) {
		t.Errorf("the log holds the password or the session token:\n%s", logs)
	}
}

func TestLoginThrottled(t *testing.T) {
	e := newEnv(t)
	e.account("ann@example.org", auth.Administrator)
	var last *http.Response
	var body string
	for range 15 {
		last, body = e.do(request{method: http.MethodPost, path: "/console/login", remote: "203.0.113.9:1",
			form: url.Values{"email": {"ann@example.org"}, "password": {"guess guess guess"}, "code": {"123456"}}})
	}
	if last.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many attempts; wait a few minutes.") {
		t.Errorf("16th attempt = %d, want 429 with the throttle message:\n%s", last.StatusCode, excerpt(body))
	}
}

func TestLoginNextIsLocal(t *testing.T) {
	e := newEnv(t)
	e.account("ann@example.org", auth.Administrator)
	tests := []struct{ next, want string }{
		{"/console/audit", "/console/audit"},
		{"/console/certificates?q=ann", "/console/certificates?q=ann"},
		{"https://evil.example/console/", "/console/"},
		{"//evil.example/console/", "/console/"},
		{"/\\evil.example", "/console/"},
		{"/console/../evil", "/console/"},
		{"/dev/mailbox", "/console/"},
		{"javascript:alert(1)", "/console/"},
		{"/console/login", "/console/"},
		{"", "/console/"},
	}
	for _, tt := range tests {
		e.clock.Add(30e9)
		res, _ := e.do(request{method: http.MethodPost, path: "/console/login", remote: "203.0.113.3:1",
			form: url.Values{"email": {"ann@example.org"}, "password": {password}, "code": {e.code(e.secrets["ann@example.org"])}, "next": {tt.next}}})
		if got := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || got != tt.want {
			t.Errorf("login with next=%q = %d to %q, want 303 to %q", tt.next, res.StatusCode, got, tt.want)
		}
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	e.account("ann@example.org", auth.Administrator)
	s1 := e.login("ann@example.org")
	s2 := e.login("ann@example.org")

	res, _ := e.post("/console/logout", s1, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/login" {
		t.Fatalf("logout = %d to %q, want 303 to /console/login", res.StatusCode, res.Header.Get("Location"))
	}
	if c, ok := cookie(res, "mailca_session"); !ok || c.MaxAge >= 0 {
		t.Errorf("logout does not delete the cookie: %+v", c)
	}
	if res, _ := e.get("/console/", s1); res.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout, the session still works: %d", res.StatusCode)
	}
	if res, _ := e.get("/console/", s2); res.StatusCode != http.StatusOK {
		t.Errorf("logout ended another session too: %d", res.StatusCode)
	}

	// Everywhere: every session of the account ends.
	s3 := e.login("ann@example.org")
	if res, _ := e.post("/console/logout", s3, url.Values{"everywhere": {"1"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout everywhere = %d", res.StatusCode)
	}
	for _, s := range []string{s2, s3} {
		if res, _ := e.get("/console/", s); res.StatusCode != http.StatusSeeOther {
			t.Errorf("after logout everywhere, a session still works: %d", res.StatusCode)
		}
	}
}

func TestSecureCookie(t *testing.T) {
	e := newEnv(t, func(c *console.Config) { c.Secure = true })
	e.account("ann@example.org", auth.Administrator)
	e.clock.Add(30e9)
	res, _ := e.do(request{method: http.MethodPost, path: "/console/login",
		form: url.Values{"email": {"ann@example.org"}, "password": {password}, "code": {e.code(e.secrets["ann@example.org"])}}})
	c, ok := cookie(res, "__Host-mailca_session")
	if !ok || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" {
		t.Fatalf("Secure console: cookie = %+v, want __Host-mailca_session, Secure, HttpOnly, Path=/, no Domain", c)
	}
	if got := res.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
		t.Errorf("Strict-Transport-Security = %q, want max-age", got)
	}
	// The plain cookie name means nothing to a Secure console.
	token := e.login("ann@example.org")
	if res, _ := e.get("/console/", token); res.StatusCode != http.StatusSeeOther {
		t.Errorf("Secure console accepted the non-__Host- cookie: %d", res.StatusCode)
	}
}
