package enrolment

import (
	"errors"
	"net/http"

	"github.com/mailca/mailca/internal/enrol"
)

// SubmitForm takes the enrolment form behind an invitation or verification
// link. Problems with the form show next to their fields; on success the
// page says what happens next.
//
// Pattern: POST /e/{token}.
func (h *Handler) SubmitForm(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := r.PathValue("token")
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, "", badRequest(err), token)
		return
	}
	e, err := h.svc.Submit(ctx, token, readApplication(r.PostForm))
	var fe *enrol.FormError
	switch {
	case errors.As(err, &fe):
		// The refused submission spent nothing: the link still opens.
		e, p, err := h.svc.OpenLink(ctx, token, enrol.PurposeInvitation)
		if err != nil {
			h.fail(w, r, "", err, token)
			return
		}
		v := formView(p, e.Mailbox, known(e.GivenName, e.Surname, e.Fields), r.PostForm, fe)
		v.Action = "/e/" + token
		h.views.render(w, r, http.StatusBadRequest, "form", v, token)
	case err != nil:
		h.fail(w, r, "", err, token)
	default:
		p, _ := h.svc.PolicyAt(ctx, e.Policy, e.PolicyVersion) // for the template set only
		h.views.render(w, r, http.StatusOK, "submitted", submittedView(e, p), token)
	}
}
