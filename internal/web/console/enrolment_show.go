package console

import (
	"net/http"
	"slices"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
)

// enrolmentPage is the data of the enrolment view.
type enrolmentPage struct {
	E           *enrol.Enrolment
	Policy      *enrol.Policy // the version the enrolment runs under
	Fields      []fieldValue  // what the user entered, or the invitation said
	Validations []enrol.Validation
	History     []audit.Record
	Required    int // approvals needed
	CanResend   bool
	CanCancel   bool
	Waiting     bool // submitted: approve and reject apply
	Message     string
	Errors      map[string]string
	Reason      string // the reject or cancel reason typed, when shown again
}

// fieldValue is one form field with its value.
type fieldValue struct {
	Name, Label, Value string
}

// enrolmentShow shows one enrolment: what the user entered, how the
// mailbox was validated, the approvals so far of those required, its
// history from the audit log, and the actions its state allows.
//
// Pattern: GET /console/enrolments/{id}.
func (c *Console) enrolmentShow(w http.ResponseWriter, r *http.Request) {
	c.showEnrolment(w, r, http.StatusOK, "", nil, "")
}

// showEnrolment renders the enrolment of the path's {id} with status, a
// message and field errors from a form posted to it.
func (c *Console) showEnrolment(w http.ResponseWriter, r *http.Request, status int, msg string, fieldErrs map[string]string, reason string) {
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
	pol, err := c.cfg.Enrol.PolicyAt(r.Context(), e.Policy, e.PolicyVersion)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := enrolmentPage{E: e, Policy: pol, Required: pol.Approval.Required, Message: msg, Errors: fieldErrs, Reason: reason,
		CanResend: e.State == enrol.Invited || e.State == enrol.Approved || (e.State == enrol.Expired && e.SubmittedAt.IsZero()),
		CanCancel: slices.Contains([]enrol.State{enrol.Invited, enrol.Submitted, enrol.Approved, enrol.Expired}, e.State),
		Waiting:   e.State == enrol.Submitted,
	}
	for _, f := range pol.Fields {
		v := e.Fields[f.Name]
		switch f.Name {
		case enrol.FieldGivenName:
			v = e.GivenName
		case enrol.FieldSurname:
			v = e.Surname
		}
		data.Fields = append(data.Fields, fieldValue{f.Name, f.Label, v})
	}
	if data.Validations, err = c.cfg.Store.EnrolmentValidations(r.Context(), e.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	if data.History, err = c.cfg.Store.EnrolmentHistory(r.Context(), e.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, status, "enrolment", data)
}
