package console

import (
	"net/http"

	"github.com/mailca/mailca/internal/enrol"
)

// policiesPage is the data of the policies view.
type policiesPage struct {
	Policies []*enrol.Policy
}

// policyList lists the policies with their current version.
//
// Pattern: GET /console/policies.
func (c *Console) policyList(w http.ResponseWriter, r *http.Request) {
	names, err := c.cfg.Enrol.PolicyNames(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var data policiesPage
	for _, n := range names {
		p, err := c.cfg.Enrol.Policy(r.Context(), n)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		data.Policies = append(data.Policies, p)
	}
	c.render(w, r, http.StatusOK, "policies", data)
}
