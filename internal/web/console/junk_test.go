package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mailca/mailca/internal/auth"
)

// TestJunkNeverAnInternalError sends every console route, as an
// administrator, path values and form fields no page would send: each is
// answered with a clear refusal (a 4xx page) or the route's work, never
// with a 500.
func TestJunkNeverAnInternalError(t *testing.T) {
	e := newEnv(t)
	e.account("admin@example.org", auth.Administrator)
	session := e.login("admin@example.org")
	junkPaths := []string{"-1", "0", "abc", "9223372036854775808", "%E2%80%AE%00", strings.Repeat("9", 400)}
	junk := strings.Repeat("\u202e=cmd|'/c calc'!A1 ", 40)
	form := url.Values{}
	for _, field := range []string{"policy", "email", "name", "given_name", "surname", "reason", "id", "new_name", "role",
		"base", "q", "state", "before", "after", "to", "subject", "txt", "html", "body", "reset", "url", "scopes", "lifetime",
		"password", "password2", "code", "totp_secret", "next", "everywhere", "actor", "action", "object", "from"} {
		form[field] = []string{junk, "-1", ""}
	}
	for _, rt := range e.con.Routes() {
		method, pattern, _ := strings.Cut(rt.Pattern, " ")
		if !strings.Contains(pattern, "{") && method != http.MethodPost {
			continue
		}
		for _, value := range junkPaths {
			path := wildcard.ReplaceAllString(pattern, value)
			path = strings.TrimSuffix(path, value+"$") // "{$}" is no value
			t.Run(rt.Pattern+" "+value[:min(len(value), 12)], func(t *testing.T) {
				var f url.Values
				if method == http.MethodPost {
					f = form
				}
				res, body := e.do(request{method: method, path: path, session: session, form: f})
				if res.StatusCode >= 500 {
					t.Errorf("%s %s with junk = %d\n%s", method, path, res.StatusCode, excerpt(body))
				}
			})
			if !strings.Contains(pattern, "{") {
				break // one POST of the junk form is enough
			}
		}
	}
}
