package enrolment

import "net/http"

// ShowOpen shows the start of open self-enrolment: a field for the email
// address. Policies without the open channel answer 404.
//
// Pattern: GET /enrol/{policy}.
func (h *Handler) ShowOpen(w http.ResponseWriter, r *http.Request) {
	p, err := h.openPolicy(r.Context(), r.PathValue("policy"))
	if err != nil {
		h.fail(w, r, "", err)
		return
	}
	h.views.render(w, r, http.StatusOK, "open", openView(p))
}
