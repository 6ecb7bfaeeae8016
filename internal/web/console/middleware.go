package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/web/clientip"
)

// contentSecurityPolicy is the console's: the server's own, plus data:
// images for the TOTP QR code and requests to itself for the upload's
// progress bar (upload.js).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// headers sets the security headers of every console response. They
// replace the server's defaults (internal/web sets its own first).
func (c *Console) headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if c.cfg.Secure {
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	}
}

// cookieName is the session cookie's name: with the __Host- prefix over
// TLS, which browsers accept only from a secure origin, for Path=/ and
// without a Domain, so no sibling host can set or shadow it.
func (c *Console) cookieName() string {
	if c.cfg.Secure {
		return "__Host-mailca_session"
	}
	return "mailca_session"
}

// setSession sets the session cookie; an empty token deletes it.
func (c *Console) setSession(w http.ResponseWriter, token string) {
	ck := &http.Cookie{Name: c.cookieName(), Value: token, Path: "/", HttpOnly: true, Secure: c.cfg.Secure, SameSite: http.SameSiteLaxMode}
	if token == "" {
		ck.MaxAge = -1
		ck.Expires = time.Unix(1, 0)
	}
	http.SetCookie(w, ck)
}

// sessionToken returns the session cookie's token, "" when there is none.
func (c *Console) sessionToken(r *http.Request) string {
	ck, err := r.Cookie(c.cookieName())
	if err != nil {
		return ""
	}
	return ck.Value
}

// principal returns the principal of the request's session; nil when
// there is none or it ended.
func (c *Console) principal(r *http.Request) (*auth.Principal, error) {
	tok := c.sessionToken(r)
	if tok == "" {
		return nil, nil
	}
	p, err := c.cfg.Auth.Session(r.Context(), tok)
	if errors.Is(err, auth.ErrNoSession) {
		return nil, nil
	}
	return p, err
}

// handle wraps h for a route that needs perm: without a session a GET is
// sent to the login page (coming back afterwards) and anything else gets
// 401; a principal without perm gets 403. h finds the principal with
// auth.FromContext.
func (c *Console) handle(perm auth.Permission, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := c.principal(r)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		if p == nil {
			if c.sessionToken(r) != "" {
				c.setSession(w, "") // ended: the browser may forget it
			}
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/console/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.failStatus(w, r, http.StatusUnauthorized, "Logged out", "your session has ended; log in again and repeat what you were doing")
			return
		}
		r = r.WithContext(auth.NewContext(r.Context(), p))
		if !p.Can(perm) {
			c.failStatus(w, r, http.StatusForbidden, "Not allowed", "your role does not allow this")
			return
		}
		if r.Method == http.MethodPost {
			limit := int64(formLimit)
			if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
				limit = uploadLimit
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		h(w, r)
	})
}

// public wraps h for a route without a session requirement; the principal,
// if there is a session, is still in the context (the layout shows it).
func (c *Console) public(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, err := c.principal(r); err == nil && p != nil {
			r = r.WithContext(auth.NewContext(r.Context(), p))
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, formLimit)
		}
		h(w, r)
	})
}

// clientAddr is the client's address for the audit log and the login
// throttle: the connection's address, or what a trusted proxy forwarded
// (clientip.Addr), never a forwarding header a client can forge.
func (c *Console) clientAddr(r *http.Request) string {
	return clientip.Addr(r, c.cfg.TrustedProxies)
}
