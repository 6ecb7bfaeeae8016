package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
)

// invitationsPage is the data of the invitations view.
type invitationsPage struct {
	Q, State, Policy string
	Batch            int64 // only this batch's enrolments; 0 for all
	States           []enrol.State
	Policies         []string
	Rows             []*enrol.Enrolment
	Search           bool   // the rows are in the order of the key searched, not newest first
	Next             string // the next page, "" on the last
	First            string // the first page, "" on the first
}

// searchQuery fills q's search from what was typed (see parseSearch): a
// mailbox is searched by its key, so in lower case.
func searchQuery(q *store.EnrolmentQuery, typed string) {
	s := parseSearch(typed)
	q.Mailbox = strings.ToLower(s.Mailbox)
	q.Surname, q.GivenName = s.Surname, s.GivenName
}

// invitationList lists enrolments, newest first, filtered by search, state
// and policy; an officer limited to policies sees only those. The next page
// starts after the last row of this one (before=<id> when newest first,
// after=<id> in a search).
//
// Pattern: GET /console/invitations (q, state, policy, batch, before, after).
func (c *Console) invitationList(w http.ResponseWriter, r *http.Request) {
	p := auth.FromContext(r.Context())
	qv := r.URL.Query()
	data := invitationsPage{Q: qv.Get("q"), State: qv.Get("state"), Policy: qv.Get("policy"), States: enrol.States}
	var err error
	if data.Policies, err = c.visiblePolicies(r.Context(), p); err != nil {
		c.fail(w, r, err)
		return
	}
	policies, ok := scope(p, data.Policy)
	data.Batch = queryID(r, "batch")
	q := store.EnrolmentQuery{Policies: policies, BatchID: data.Batch, Limit: pageSize + 1}
	for _, s := range enrol.States {
		if string(s) == data.State {
			q.State = s
		}
	}
	searchQuery(&q, data.Q)
	data.Search = q.Mailbox != "" || q.Surname != ""
	cursor := "before"
	if data.Search {
		cursor = "after"
	}
	q.After = queryID(r, cursor)
	if ok {
		if data.Rows, err = c.cfg.Store.ListEnrolments(r.Context(), q); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	link := url.Values{"q": {data.Q}, "state": {string(q.State)}, "policy": {data.Policy}}
	if data.Batch != 0 {
		link.Set("batch", strconv.FormatInt(data.Batch, 10))
	}
	if len(data.Rows) > pageSize {
		data.Rows = data.Rows[:pageSize]
		next := url.Values{cursor: {strconv.FormatInt(data.Rows[pageSize-1].ID, 10)}}
		for k, v := range link {
			next[k] = v
		}
		data.Next = pageLink("/console/invitations", next)
	}
	if q.After > 0 {
		data.First = pageLink("/console/invitations", link)
	}
	c.render(w, r, http.StatusOK, "invitations", data)
}
