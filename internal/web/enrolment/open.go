package enrolment

import (
	"context"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

const inputEmail = "email"

// errNoOpen is the answer for a policy without open self-enrolment, the
// same whether or not the policy exists.
var errNoOpen = errs.E(errs.NotFound, "self-enrolment is not available here")

// openPolicy returns the named policy if it allows open self-enrolment.
func (h *Handler) openPolicy(ctx context.Context, name string) (*enrol.Policy, error) {
	p, err := h.svc.Policy(ctx, name)
	if errs.KindOf(err) == errs.NotFound || (err == nil && !p.Channels.Open) {
		return nil, errNoOpen
	}
	return p, err
}

func openView(p *enrol.Policy) *OpenView {
	return &OpenView{
		Page:        Page{Title: "Get an email certificate", Set: p.Templates, Policy: p.Name},
		Action:      "/enrol/" + p.Name,
		Description: p.Description,
	}
}
