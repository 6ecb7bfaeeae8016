package console

import (
	"net/http"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/errs"
)

// certificateRevoke revokes a certificate for one of the RFC 5280 reasons
// the S/MIME BR allow (enrol.Service.Revoke, which also blocks the key for
// keyCompromise).
//
// Pattern: POST /console/certificates/{serial}/revoke (reason).
func (c *Console) certificateRevoke(w http.ResponseWriter, r *http.Request) {
	p := auth.FromContext(r.Context())
	row, _, err := c.certificateFor(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	typed := r.PostFormValue("reason")
	reason, err := ca.ParseRevocationReason(typed)
	if err != nil {
		c.showCertificate(w, r, http.StatusBadRequest, "", map[string]string{"reason": "choose one of the reasons listed"}, typed)
		return
	}
	res, err := c.cfg.Enrol.Revoke(r.Context(), p.Actor(), row.Serial, reason)
	if err != nil {
		if errs.KindOf(err) == errs.Internal {
			c.fail(w, r, err)
			return
		}
		c.showCertificate(w, r, statusOf(err), errs.Message(err), nil, typed)
		return
	}
	msg := "The certificate is revoked (" + reason.String() + ")."
	if res.AlreadyRevoked {
		msg = "The certificate was already revoked (" + res.Reason.String() + ")."
	} else if res.KeyBlocked {
		msg += " Its key can never be certified again."
	}
	c.redirect(w, r, "/console/certificates/"+row.Serial, msg)
}
