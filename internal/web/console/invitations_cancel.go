package console

import (
	"net/http"
	"strconv"

	"github.com/mailca/mailca/internal/auth"
)

// enrolmentCancel withdraws an enrolment that is not issued
// (enrol.Service.Cancel); its links stop working.
//
// Pattern: POST /console/enrolments/{id}/cancel (reason, back).
func (c *Console) enrolmentCancel(w http.ResponseWriter, r *http.Request) {
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
	if err := c.cfg.Enrol.Cancel(r.Context(), p.Actor(), e.ID, r.PostFormValue("reason")); err != nil {
		c.fail(w, r, err)
		return
	}
	c.redirect(w, r, localBack(r, "/console/enrolments/"+strconv.FormatInt(e.ID, 10)), "Enrolment "+strconv.FormatInt(e.ID, 10)+" was cancelled.")
}
