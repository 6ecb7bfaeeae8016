package console

import (
	"net/http"
	"strconv"

	"github.com/mailca/mailca/internal/auth"
)

// enrolmentResend sends a new link for an enrolment waiting on its user
// (enrol.Service.Resend): a new invitation, or a new activation link.
//
// Pattern: POST /console/enrolments/{id}/resend (back).
func (c *Console) enrolmentResend(w http.ResponseWriter, r *http.Request) {
	p := auth.FromContext(r.Context())
	id, err := pathID(r, "id")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	e, err := c.enrolmentFor(r.Context(), p, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.cfg.Enrol.Resend(r.Context(), p.Actor(), e.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	c.redirect(w, r, localBack(r, "/console/enrolments/"+strconv.FormatInt(e.ID, 10)), "A new link went to "+e.Mailbox+".")
}
