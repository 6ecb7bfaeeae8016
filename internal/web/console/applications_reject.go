package console

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/mailca/mailca/internal/errs"
)

// applicationReject refuses an application with a reason, which is
// required and sent to the applicant (enrol.Service.Reject).
//
// Pattern: POST /console/enrolments/{id}/reject (reason, back).
func (c *Console) applicationReject(w http.ResponseWriter, r *http.Request) {
	p, e, ok := c.pathEnrolment(w, r)
	if !ok {
		return
	}
	reason := r.PostFormValue("reason")
	if strings.TrimSpace(reason) == "" {
		c.showEnrolment(w, r, http.StatusBadRequest, "", map[string]string{"reason": "give the reason for rejecting; the applicant reads it"}, reason)
		return
	}
	if err := c.cfg.Enrol.Reject(r.Context(), p.Actor(), e.ID, reason); err != nil {
		switch errs.KindOf(err) {
		case errs.Invalid:
			c.showEnrolment(w, r, http.StatusBadRequest, "", map[string]string{"reason": errs.Message(err)}, reason)
		case errs.Conflict, errs.Forbidden:
			c.showEnrolment(w, r, statusOf(err), errs.Message(err), nil, reason)
		default:
			c.fail(w, r, err)
		}
		return
	}
	c.redirect(w, r, localBack(r, "/console/applications"), "Application "+strconv.FormatInt(e.ID, 10)+" of "+e.Mailbox+" is rejected.")
}
