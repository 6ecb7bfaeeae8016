package enrolment

import (
	"net/http"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
)

// ShowRevocation shows the page behind a subscriber's revocation link: the
// certificate and the reasons to choose from. It changes nothing.
//
// Pattern: GET /revoke/{token}.
func (h *Handler) ShowRevocation(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	rv, err := h.svc.OpenRevocationLink(r.Context(), token)
	if err != nil {
		h.fail(w, r, "", err, token)
		return
	}
	h.views.render(w, r, http.StatusOK, "revoke", revokeView(rv, token, ""), token)
}

// reasonLabels says each reason a subscriber may choose in their words.
var reasonLabels = map[ca.RevocationReason][2]string{
	ca.ReasonKeyCompromise:        {"My private key may have been disclosed", "The key file, its password or a device holding it was lost, stolen or seen by someone else. The key can never be certified again."},
	ca.ReasonAffiliationChanged:   {"My details have changed", "I left the organisation, or my name or address changed."},
	ca.ReasonCessationOfOperation: {"I no longer use this mailbox", "The address is closed or I have stopped using it."},
	ca.ReasonUnspecified:          {"Another reason", "None of the above."},
}

func revokeView(rv *enrol.SelfRevocation, token, chosen string) *RevokeView {
	v := &RevokeView{Page: Page{Title: "Revoke your certificate"}, Action: "/revoke/" + token,
		Mailbox: rv.Mailbox, Serial: rv.Serial, Revoked: rv.Revoked}
	for _, reason := range enrol.SubscriberReasons {
		l := reasonLabels[reason]
		v.Reasons = append(v.Reasons, ReasonView{Value: reason.String(), Label: l[0], Hint: l[1], Checked: reason.String() == chosen})
	}
	return v
}
