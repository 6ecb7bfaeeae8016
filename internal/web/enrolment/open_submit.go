package enrolment

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/enrol"
)

// StartOpen starts open self-enrolment for the address entered: if it may
// enrol, a link goes to it. The answer is the same page whether or not the
// address was already invited or enrolled, so it reveals nobody.
//
// Pattern: POST /enrol/{policy}, with "email".
func (h *Handler) StartOpen(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, err := h.openPolicy(ctx, r.PathValue("policy"))
	if err != nil {
		h.fail(w, r, "", err)
		return
	}
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, p.Templates, badRequest(err))
		return
	}
	email := strings.TrimSpace(r.PostForm.Get(inputEmail))
	if email == "" {
		h.openAgain(w, r, p, email, "Enter your email address.")
		return
	}
	if !h.mailing.allow(r) {
		h.openStatus(w, r, p, email, "Too many requests have come from your network. Please try again in a few minutes.", http.StatusTooManyRequests)
		return
	}
	err = h.svc.StartOpen(ctx, p.Name, email)
	var ie *enrol.InviteError
	switch {
	case errors.As(err, &ie):
		h.openAgain(w, r, p, email, sentence(userMessage(err)))
	case err != nil:
		h.fail(w, r, p.Templates, err)
	default:
		v := &OpenSentView{Page: Page{Title: "Check your mailbox", Set: p.Templates, Policy: p.Name}, Email: email,
			// StartOpen caps the verification link at a day.
			LinkLifetime: lifetime(min(time.Duration(p.InvitationLifetime), 24*time.Hour))}
		h.views.render(w, r, http.StatusOK, "open_sent", v)
	}
}

func (h *Handler) openAgain(w http.ResponseWriter, r *http.Request, p *enrol.Policy, email, msg string) {
	h.openStatus(w, r, p, email, msg, http.StatusBadRequest)
}

func (h *Handler) openStatus(w http.ResponseWriter, r *http.Request, p *enrol.Policy, email, msg string, status int) {
	v := openView(p)
	v.HasErrors, v.Email, v.EmailError = true, email, msg
	v.Problems = []Problem{{ID: "email", Text: msg}}
	h.views.render(w, r, status, "open", v)
}
