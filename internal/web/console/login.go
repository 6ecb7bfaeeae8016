package console

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/mailca/mailca/internal/auth"
)

// loginPage is the data of the login view.
type loginPage struct {
	Email string
	Next  string
	Error string
	Setup bool // no account exists yet: the page explains the setup link
}

// showLogin shows the login form.
//
// Pattern: GET /console/login.
func (c *Console) showLogin(w http.ResponseWriter, r *http.Request) {
	if p := auth.FromContext(r.Context()); p != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	setup, err := c.cfg.Auth.NeedsSetup(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "login", loginPage{Next: localNext(r.URL.Query().Get("next")), Setup: setup})
}

// submitLogin checks email, password and code and starts a session. Every
// failure shows the one message of auth.ErrLoginFailed; a throttled client
// address is told to wait.
//
// Pattern: POST /console/login.
func (c *Console) submitLogin(w http.ResponseWriter, r *http.Request) {
	email := r.PostFormValue("email")
	next := localNext(r.PostFormValue("next"))
	token, _, err := c.cfg.Auth.Login(r.Context(), email, r.PostFormValue("password"), r.PostFormValue("code"), c.clientAddr(r))
	switch {
	case err == nil:
	case errors.Is(err, auth.ErrLoginFailed):
		c.render(w, r, http.StatusUnauthorized, "login", loginPage{Email: email, Next: next, Error: errorText(auth.ErrLoginFailed)})
		return
	case errors.Is(err, auth.ErrThrottled):
		c.render(w, r, http.StatusTooManyRequests, "login", loginPage{Email: email, Next: next, Error: errorText(auth.ErrThrottled)})
		return
	default:
		c.fail(w, r, err)
		return
	}
	// The browser's previous session, if any, ends: one browser holds
	// one session, and a session token planted or left behind before the
	// login is dead after it.
	if old := c.sessionToken(r); old != "" {
		if err := c.cfg.Auth.Logout(r.Context(), old); err != nil {
			c.log.WarnContext(r.Context(), "console: ending the previous session at login", "err", err)
		}
	}
	// A new token on every login: a session cookie planted before the
	// login never becomes a logged-in one.
	c.setSession(w, token)
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

// errorText is an auth error's message for people: without the package
// prefix, with a capital letter and a full stop.
func errorText(err error) string {
	s := strings.TrimPrefix(err.Error(), "auth: ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// localNext returns next when it is a path of the console, else "".
func localNext(next string) string {
	if next == "" || len(next) > 2000 || strings.ContainsAny(next, "\\\r\n\t") || strings.HasPrefix(next, "//") {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.User != nil {
		return ""
	}
	if u.Path != "/console/" && !strings.HasPrefix(u.Path, "/console/") {
		return ""
	}
	if clean := path.Clean(u.Path); clean != u.Path && clean+"/" != u.Path {
		return ""
	}
	switch u.Path {
	case "/console/login", "/console/logout":
		return ""
	}
	return next
}

// safeNext is where a login leads: next when it is a console path, else
// the dashboard.
func safeNext(next string) string {
	if n := localNext(next); n != "" {
		return n
	}
	return "/console/"
}
