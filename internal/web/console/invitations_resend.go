package console

import (
	"net/http"
	"strconv"
)

// enrolmentResend sends a new link for an enrolment waiting on its user
// (enrol.Service.Resend): a new invitation, or a new activation link.
//
// Pattern: POST /console/enrolments/{id}/resend (back).
func (c *Console) enrolmentResend(w http.ResponseWriter, r *http.Request) {
	p, e, ok := c.pathEnrolment(w, r)
	if !ok {
		return
	}
	if err := c.cfg.Enrol.Resend(r.Context(), p.Actor(), e.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	c.redirect(w, r, localBack(r, "/console/enrolments/"+strconv.FormatInt(e.ID, 10)), "A new link went to "+e.Mailbox+".")
}
