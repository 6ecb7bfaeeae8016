package enrolment

import (
	"errors"
	"net/http"

	"github.com/mailca/mailca/internal/enrol"
)

// SubmitReferral takes the enrolment form of a referral; the referral
// token comes back in the hidden input "t" and is spent on success.
//
// Pattern: POST /r.
func (h *Handler) SubmitReferral(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, "", badRequest(err))
		return
	}
	t := r.PostForm.Get(inputReferral)
	e, err := h.svc.SubmitReferral(ctx, t, readApplication(r.PostForm))
	var fe *enrol.FormError
	switch {
	case errors.As(err, &fe):
		ref, p, err := h.svc.OpenReferral(ctx, t)
		if err != nil {
			h.fail(w, r, "", err, t)
			return
		}
		v := formView(p, ref.Email, known(ref.GivenName, ref.Surname, nil), r.PostForm, fe)
		v.Action, v.Referral = "/r", t
		h.views.render(w, r, http.StatusBadRequest, "form", v, t)
	case err != nil:
		h.fail(w, r, "", err, t)
	default:
		p, _ := h.svc.PolicyAt(ctx, e.Policy, e.PolicyVersion)
		h.views.render(w, r, http.StatusOK, "submitted", submittedView(e, p), t)
	}
}
