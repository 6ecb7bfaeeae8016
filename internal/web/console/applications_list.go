package console

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
)

// application is one row of the queue.
type application struct {
	*enrol.Enrolment
	Required int // approvals the policy version needs
}

// applicationsPage is the data of the applications view.
type applicationsPage struct {
	Policy   string
	Policies []string
	Rows     []application
	Next     string
	First    string
}

// withRequired pairs each enrolment with the number of approvals its
// policy version needs.
func (c *Console) withRequired(ctx context.Context, es []*enrol.Enrolment) ([]application, error) {
	out := make([]application, len(es))
	for i, e := range es {
		p, err := c.cfg.Enrol.PolicyAt(ctx, e.Policy, e.PolicyVersion)
		if err != nil {
			return nil, err
		}
		out[i] = application{e, p.Approval.Required}
	}
	return out, nil
}

// applicationList is the Authorization Panel's queue: the applications
// waiting for approval, oldest submission first, of the policies the
// principal may act under; approvers can approve a selection at once.
//
// Pattern: GET /console/applications (policy, after).
func (c *Console) applicationList(w http.ResponseWriter, r *http.Request) {
	p := auth.FromContext(r.Context())
	data := applicationsPage{Policy: r.URL.Query().Get("policy")}
	var err error
	if data.Policies, err = c.visiblePolicies(r.Context(), p); err != nil {
		c.fail(w, r, err)
		return
	}
	policies, ok := scope(p, data.Policy)
	after := queryID(r, "after")
	if ok {
		es, err := c.cfg.Store.ListApplications(r.Context(), store.QueueQuery{Policies: policies, After: after, Limit: pageSize + 1})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		if len(es) > pageSize {
			es = es[:pageSize]
			data.Next = pageLink("/console/applications", url.Values{"policy": {data.Policy}, "after": {strconv.FormatInt(es[pageSize-1].ID, 10)}})
		}
		if data.Rows, err = c.withRequired(r.Context(), es); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	if after > 0 {
		data.First = pageLink("/console/applications", url.Values{"policy": {data.Policy}})
	}
	c.render(w, r, http.StatusOK, "applications", data)
}
