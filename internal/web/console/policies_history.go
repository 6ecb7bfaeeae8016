package console

import (
	"net/http"
	"strconv"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
)

// maxVersionsShown bounds the version list of the history page.
const maxVersionsShown = 200

// policyHistoryPage is the data of the policy_history view.
type policyHistoryPage struct {
	Name     string
	Current  int
	Versions []int // newest first
	Shown    *enrol.Policy
	Body     string
}

// policyHistory lists a policy's versions and shows one of them (the
// current one unless version= names another).
//
// Pattern: GET /console/policies/{name}/history (version).
func (c *Console) policyHistory(w http.ResponseWriter, r *http.Request) {
	cur, err := c.cfg.Enrol.Policy(r.Context(), r.PathValue("name"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	data := policyHistoryPage{Name: cur.Name, Current: cur.Version, Shown: cur}
	for v := cur.Version; v >= 1 && len(data.Versions) < maxVersionsShown; v-- {
		data.Versions = append(data.Versions, v)
	}
	if s := r.URL.Query().Get("version"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > cur.Version {
			c.fail(w, r, errs.E(errs.NotFound, "policy %s has no version %s", cur.Name, s))
			return
		}
		if data.Shown, err = c.cfg.Enrol.PolicyAt(r.Context(), cur.Name, v); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	if data.Body, err = encodePolicy(data.Shown); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "policy_history", data)
}
