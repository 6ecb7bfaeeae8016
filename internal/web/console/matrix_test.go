package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailca/mailca/internal/auth"
)

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// concrete returns the method and a path of a route pattern: wildcards
// become values that name nothing ("999999", "nosuch"), so allowed actions
// answer without changing what the next request sees, and "{$}" goes.
func concrete(pattern string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = http.MethodGet, pattern+"no-such-page"
	}
	path = wildcard.ReplaceAllStringFunc(path, func(w string) string {
		switch strings.Trim(w, "{}.") {
		case "$":
			return ""
		case "id":
			return "999999"
		case "file":
			return "console.css"
		case "token":
			return "bm90LWEtdG9rZW4tYXQtYWxsLWJ1dC1iYXNlNjR1cmwtMzI"
		}
		return "nosuch"
	})
	return method, path
}

// loginRedirect reports whether res sends the browser to the login page,
// coming back to path.
func loginRedirect(res *http.Response, path string) bool {
	return res.StatusCode == http.StatusSeeOther && res.Header.Get("Location") == "/console/login?next="+url.QueryEscape(path)
}

// TestAuthorizationMatrix sends every route of the console's route table
// with each role, without a session and with an expired session, and
// checks each answer is the allowed one: the route's work (any status
// but 401, 403, 5xx and the login redirect) when the role has the route's
// permission, 403 when it lacks it, and the login page (GET) or 401
// (other methods) without a live session.
func TestAuthorizationMatrix(t *testing.T) {
	e := newEnv(t)
	e.account("administrator@example.org", auth.Administrator)
	e.account("officer@example.org", auth.Officer)
	e.account("auditor@example.org", auth.Auditor)
	victim := e.account("victim@example.org", auth.Auditor)

	routes := e.con.Routes()
	if len(routes) < 15 {
		t.Fatalf("Routes() has %d routes; the table is not what the console serves", len(routes))
	}
	seen := map[string]bool{}
	for _, rt := range routes {
		if seen[rt.Pattern] {
			t.Errorf("route %q registered twice", rt.Pattern)
		}
		seen[rt.Pattern] = true
	}

	sessions := map[auth.Role]string{}
	for _, r := range []auth.Role{auth.Auditor, auth.Officer, auth.Administrator} {
		sessions[r] = e.login(string(r) + "@example.org")
	}
	// Least powerful first: the administrator's allowed POSTs (removing
	// the victim account) come last.
	for _, role := range []auth.Role{auth.Auditor, auth.Officer, auth.Administrator} {
		for _, rt := range routes {
			if rt.Perm == 0 {
				continue
			}
			method, path := concrete(rt.Pattern)
			path = strings.Replace(path, "/accounts/999999/", "/accounts/"+strconv.FormatInt(victim.ID, 10)+"/", 1)
			t.Run(string(role)+" "+rt.Pattern, func(t *testing.T) {
				res, body := e.do(request{method: method, path: path, session: sessions[role], form: formFor(method)})
				allowed := role.Allows(rt.Perm)
				switch {
				case allowed && (res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden ||
					res.StatusCode >= 500 || strings.HasPrefix(res.Header.Get("Location"), "/console/login")):
					t.Errorf("%s %s as %s = %d %s, want the route's work\n%s", method, path, role, res.StatusCode, res.Header.Get("Location"), excerpt(body))
				case !allowed && res.StatusCode != http.StatusForbidden:
					t.Errorf("%s %s as %s = %d, want 403", method, path, role, res.StatusCode)
				}
			})
		}
	}

	// Without a session, and with a session that was live and is no
	// longer, every route but the public ones sends to the login page.
	expired := e.login("auditor@example.org")
	e.clock.Add(31 * time.Minute) // past the idle timeout
	for _, sess := range []struct{ name, token string }{{"no session", ""}, {"unknown session", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, {"expired session", expired}} {
		for _, rt := range routes {
			if rt.Perm == 0 {
				continue
			}
			method, path := concrete(rt.Pattern)
			t.Run(sess.name+" "+rt.Pattern, func(t *testing.T) {
				res, _ := e.do(request{method: method, path: path, session: sess.token, form: formFor(method)})
				if method == http.MethodGet {
					if !loginRedirect(res, path) {
						t.Errorf("%s %s with %s = %d %q, want 303 to the login page", method, path, sess.name, res.StatusCode, res.Header.Get("Location"))
					}
				} else if res.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s %s with %s = %d, want 401", method, path, sess.name, res.StatusCode)
				}
			})
		}
	}

	// The public routes need no session.
	for _, rt := range routes {
		if rt.Perm != 0 {
			continue
		}
		method, path := concrete(rt.Pattern)
		t.Run("public "+rt.Pattern, func(t *testing.T) {
			res, _ := e.do(request{method: method, path: path, form: formFor(method), remote: "198.51.100.7:1"})
			if res.StatusCode == http.StatusForbidden || res.StatusCode >= 500 || strings.Contains(res.Header.Get("Location"), "next=") {
				t.Errorf("%s %s without a session = %d %q, want an answer without login", method, path, res.StatusCode, res.Header.Get("Location"))
			}
		})
	}
}

// TestCrossOriginPostsRefused sends every POST route a request from
// another site, with an administrator's session: the server's
// cross-origin protection refuses each with 403 before the console sees it.
func TestCrossOriginPostsRefused(t *testing.T) {
	e := newEnv(t)
	e.account("admin@example.org", auth.Administrator)
	victim := e.account("victim@example.org", auth.Auditor)
	session := e.login("admin@example.org")
	n := 0
	for _, rt := range e.con.Routes() {
		method, path := concrete(rt.Pattern)
		if method != http.MethodPost {
			continue
		}
		n++
		path = strings.Replace(path, "/accounts/999999/", "/accounts/"+strconv.FormatInt(victim.ID, 10)+"/", 1)
		for _, h := range []map[string]string{
			{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
			{"Sec-Fetch-Site": "cross-site"},
			{"Origin": "https://evil.example"},
		} {
			res, _ := e.do(request{method: method, path: path, session: session, form: url.Values{"email": {"x@evil.example"}, "role": {"administrator"}}, header: h})
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("cross-origin %s %s (%v) = %d, want 403", method, path, h, res.StatusCode)
			}
		}
	}
	if n < 5 {
		t.Errorf("only %d POST routes; the route table is incomplete", n)
	}
	// Nothing happened: the victim account is still there, and nobody was invited.
	if _, err := e.auth.Account(t.Context(), victim.ID); err != nil {
		t.Errorf("victim account after cross-origin POSTs: %v", err)
	}
	// A same-origin POST with the same session works, so the 403s above
	// are the cross-origin check's.
	res, _ := e.do(request{method: http.MethodPost, path: "/console/accounts/" + strconv.FormatInt(victim.ID, 10) + "/logout", session: session,
		form: url.Values{}, header: map[string]string{"Origin": "http://example.com", "Sec-Fetch-Site": "same-origin"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin POST = %d, want 303", res.StatusCode)
	}
}

// formFor is the body of the matrix's requests: an empty form for a POST.
func formFor(method string) url.Values {
	if method == http.MethodPost {
		return url.Values{}
	}
	return nil
}

// excerpt shortens a body for a failure message.
func excerpt(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}
