package console

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

// applicationApprove records the principal's approval
// (enrol.Service.Approve). A refusal, such as separation of duties, shows
// the application again with the reason.
//
// Pattern: POST /console/enrolments/{id}/approve (back).
func (c *Console) applicationApprove(w http.ResponseWriter, r *http.Request) {
	p, e, ok := c.pathEnrolment(w, r)
	if !ok {
		return
	}
	e, err := c.cfg.Enrol.Approve(r.Context(), p.Actor(), e.ID)
	if err != nil {
		if errs.KindOf(err) == errs.Internal || errs.KindOf(err) == errs.NotFound {
			c.fail(w, r, err)
			return
		}
		c.showEnrolment(w, r, statusOf(err), errs.Message(err), nil, "")
		return
	}
	c.redirect(w, r, localBack(r, "/console/enrolments/"+strconv.FormatInt(e.ID, 10)), approvedFlash(e))
}

// approvedFlash says what an approval did.
func approvedFlash(e *enrol.Enrolment) string {
	if e.State == enrol.Approved {
		return fmt.Sprintf("Application %d of %s is approved; the activation link went to the applicant.", e.ID, e.Mailbox)
	}
	return fmt.Sprintf("Your approval of application %d is recorded; more approvers must approve it.", e.ID)
}
