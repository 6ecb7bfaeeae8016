package console

import (
	"net/http"
	"strconv"
)

// enrolmentCancel withdraws an enrolment that is not issued
// (enrol.Service.Cancel); its links stop working.
//
// Pattern: POST /console/enrolments/{id}/cancel (reason, back).
func (c *Console) enrolmentCancel(w http.ResponseWriter, r *http.Request) {
	p, e, ok := c.pathEnrolment(w, r)
	if !ok {
		return
	}
	if err := c.cfg.Enrol.Cancel(r.Context(), p.Actor(), e.ID, r.PostFormValue("reason")); err != nil {
		c.fail(w, r, err)
		return
	}
	c.redirect(w, r, localBack(r, "/console/enrolments/"+strconv.FormatInt(e.ID, 10)), "Enrolment "+strconv.FormatInt(e.ID, 10)+" was cancelled.")
}
