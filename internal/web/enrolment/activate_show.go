package enrolment

import (
	"net/http"

	"github.com/mailca/mailca/internal/enrol"
)

// ShowActivation shows the activation page behind an activation link: the
// ways of getting a key that the policy offers. It changes nothing.
//
// Pattern: GET /a/{token}.
func (h *Handler) ShowActivation(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	e, p, err := h.svc.OpenLink(r.Context(), token, enrol.PurposeActivation)
	if err != nil {
		h.fail(w, r, "", err, token)
		return
	}
	h.views.render(w, r, http.StatusOK, "activate", activateView(e, p, token, ""), token)
}
