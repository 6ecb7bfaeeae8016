package console

import (
	"net/http"
	"strconv"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

// maxBulk bounds one bulk approval.
const maxBulk = 500

// bulkOutcome is one application of a bulk approval.
type bulkOutcome struct {
	ID       int64
	Mailbox  string
	Approved bool   // the last approval needed: the activation link went out
	Recorded bool   // an approval recorded, more needed
	Problem  string // why it was not approved
}

// bulkResult is the data of the bulk_result view.
type bulkResult struct {
	Outcomes []bulkOutcome
	Approved int
	Failed   int
}

// applicationBulkApprove approves each selected application on its own,
// through enrol.Service.Approve, so every rule applies to each (policy
// scope, state, separation of duties, N of M), and shows what happened to
// each one.
//
// Pattern: POST /console/applications/approve (id, repeated).
func (c *Console) applicationBulkApprove(w http.ResponseWriter, r *http.Request) {
	p := auth.FromContext(r.Context())
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, errs.Wrap(errs.Invalid, err, "the form could not be read"))
		return
	}
	ids := r.PostForm["id"]
	if len(ids) == 0 {
		c.redirect(w, r, "/console/applications", "Select the applications to approve first.")
		return
	}
	if len(ids) > maxBulk {
		c.fail(w, r, errs.E(errs.Invalid, "select at most %d applications at once", maxBulk))
		return
	}
	var res bulkResult
	seen := map[int64]bool{}
	for _, s := range ids {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 || seen[id] {
			continue
		}
		seen[id] = true
		o := bulkOutcome{ID: id}
		e, err := c.enrolmentFor(r.Context(), p, id)
		if err == nil {
			o.Mailbox = e.Mailbox
			e, err = c.cfg.Enrol.Approve(r.Context(), p.Actor(), id)
		}
		switch {
		case err != nil:
			o.Problem = errs.Message(err)
			if errs.KindOf(err) == errs.Internal {
				c.log.ErrorContext(r.Context(), "console: bulk approval", "enrolment", id, "err", err)
			}
			res.Failed++
		case e.State == enrol.Approved:
			o.Approved = true
			res.Approved++
		default:
			o.Recorded = true
			res.Approved++
		}
		res.Outcomes = append(res.Outcomes, o)
	}
	c.render(w, r, http.StatusOK, "bulk_result", res)
}
