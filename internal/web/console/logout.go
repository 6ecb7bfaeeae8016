package console

import (
	"net/http"

	"github.com/mailca/mailca/internal/auth"
)

// logout ends the request's session, or with everywhere=1 every session of
// its account, and sends the browser to the login page. Without a session
// it only does the latter.
//
// Pattern: POST /console/logout.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if p := auth.FromContext(r.Context()); p != nil {
		var err error
		if r.PostFormValue("everywhere") == "1" {
			err = c.cfg.Auth.LogoutEverywhere(r.Context(), p.Actor(), p.ID)
		} else {
			err = c.cfg.Auth.Logout(r.Context(), c.sessionToken(r))
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
	}
	c.setSession(w, "")
	c.redirect(w, r, "/console/login", "You are logged out.")
}
