package enrolment

import (
	"net/http"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/errs"
)

// SubmitRevocation revokes the certificate behind a subscriber's
// revocation link with the reason chosen. Revoking a revoked certificate
// again changes nothing and says so.
//
// Pattern: POST /revoke/{token}, with "reason".
func (h *Handler) SubmitRevocation(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := r.PathValue("token")
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, "", badRequest(err), token)
		return
	}
	rv, err := h.svc.OpenRevocationLink(ctx, token)
	if err != nil {
		h.fail(w, r, "", err, token)
		return
	}
	chosen := r.PostForm.Get("reason")
	reason, perr := ca.ParseRevocationReason(chosen)
	if chosen == "" || perr != nil {
		v := revokeView(rv, token, "")
		v.HasErrors, v.ReasonError = true, "Choose why the certificate should be revoked."
		v.Problems = []Problem{{ID: "reason-" + ca.ReasonKeyCompromise.String(), Text: v.ReasonError}}
		h.views.render(w, r, http.StatusBadRequest, "revoke", v, token)
		return
	}
	res, err := h.svc.RevokeByLink(ctx, token, reason)
	if errs.KindOf(err) == errs.Invalid {
		v := revokeView(rv, token, chosen)
		v.HasErrors, v.ReasonError = true, sentence(userMessage(err))
		v.Problems = []Problem{{ID: "reason-" + ca.ReasonKeyCompromise.String(), Text: v.ReasonError}}
		h.views.render(w, r, http.StatusBadRequest, "revoke", v, token)
		return
	}
	if err != nil {
		h.fail(w, r, "", err, token)
		return
	}
	h.views.render(w, r, http.StatusOK, "revoke_done", &RevokedView{Page: Page{Title: "Certificate revoked"},
		Mailbox: rv.Mailbox, Serial: rv.Serial, Already: res.AlreadyRevoked}, token)
}
