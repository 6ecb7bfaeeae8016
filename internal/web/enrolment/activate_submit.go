package enrolment

import (
	"errors"
	"net/http"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

// Activate redeems an activation link: the certificate is issued and the
// page that follows is the only copy of a server-generated key and its
// password. A refused request (a bad CSR, a reused key) shows the activation
// page again with the reason; the link stays usable.
//
// Pattern: POST /a/{token}, multipart/form-data or URL-encoded, with
// "mode" (server or csr) and, for csr, "csr" (pasted PEM) or "csr_file".
func (h *Handler) Activate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := r.PathValue("token")
	f, err := readActivation(r)
	if err != nil {
		h.fail(w, r, "", badRequest(err), token)
		return
	}
	if f.modeErr != "" || f.csrErr != "" {
		h.activationAgain(w, r, token, f, nil)
		return
	}
	a, err := h.svc.Activate(ctx, token, f.mode, f.csr)
	switch {
	case errors.Is(err, enrol.ErrLinkInvalid), err != nil && errs.KindOf(err) == errs.Internal:
		h.fail(w, r, "", err, token)
	case err != nil:
		h.activationAgain(w, r, token, f, err)
	default:
		p, perr := h.svc.PolicyAt(ctx, a.Enrolment.Policy, a.Enrolment.PolicyVersion)
		if perr != nil {
			// The certificate is issued and the key is only here: show it
			// with the default templates rather than fail.
			h.log.ErrorContext(ctx, "enrolment: policy of an activation", "err", perr)
			p = nil
		}
		h.views.render(w, r, http.StatusOK, "activated", activatedView(a, p), token, a.Password)
	}
}

// activationAgain shows the activation page again with the problems of f
// and the refusal err (nil when only f has problems).
func (h *Handler) activationAgain(w http.ResponseWriter, r *http.Request, token string, f *activationForm, err error) {
	e, p, lerr := h.svc.OpenLink(r.Context(), token, enrol.PurposeActivation)
	if lerr != nil {
		if err == nil {
			err = lerr
		}
		h.fail(w, r, "", err, token)
		return
	}
	v := activateView(e, p, token, f.mode)
	v.HasErrors = true
	v.ModeError, v.CSRError = f.modeErr, f.csrErr
	code := http.StatusBadRequest
	if err != nil {
		code = status(err)
		msg := sentence(userMessage(err))
		var re *ca.RequestError
		if f.mode == enrol.KeyCSR && errors.As(err, &re) {
			v.CSRError = msg
		} else {
			v.Error = msg
		}
	}
	if f.mode == enrol.KeyCSR {
		v.CSR = f.csrText
	}
	if v.ModeError != "" && len(v.Modes) > 0 {
		v.Problems = append(v.Problems, Problem{ID: v.Modes[0].ID, Text: v.ModeError})
	}
	if v.CSRError != "" {
		v.Problems = append(v.Problems, Problem{ID: "csr", Text: v.CSRError})
	}
	if v.Error != "" {
		v.Problems = append(v.Problems, Problem{ID: "main", Text: v.Error})
	}
	h.views.render(w, r, code, "activate", v, token)
}
