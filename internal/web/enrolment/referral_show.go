package enrolment

import (
	"net/http"
)

// ShowReferral shows the enrolment form for a signed referral link,
// prefilled from its claims; the mailbox is read-only. It changes nothing.
//
// Pattern: GET /r, with the referral JWS in the query parameter "t".
func (h *Handler) ShowReferral(w http.ResponseWriter, r *http.Request) {
	t := r.URL.Query().Get(inputReferral)
	ref, p, err := h.svc.OpenReferral(r.Context(), t)
	if err != nil {
		h.fail(w, r, "", err, t)
		return
	}
	v := formView(p, ref.Email, known(ref.GivenName, ref.Surname, nil), nil, nil)
	v.Action, v.Referral = "/r", t
	h.views.render(w, r, http.StatusOK, "form", v, t)
}
