package enrolment

import (
	"net/http"

	"github.com/mailca/mailca/internal/enrol"
)

// ShowForm shows the enrolment form behind an invitation or verification
// link, prefilled from the invitation. It changes nothing.
//
// Pattern: GET /e/{token}.
func (h *Handler) ShowForm(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	e, p, err := h.svc.OpenLink(r.Context(), token, enrol.PurposeInvitation)
	if err != nil {
		h.fail(w, r, "", err, token)
		return
	}
	v := formView(p, e.Mailbox, known(e.GivenName, e.Surname, e.Fields), nil, nil)
	v.Action = "/e/" + token
	h.views.render(w, r, http.StatusOK, "form", v, token)
}
