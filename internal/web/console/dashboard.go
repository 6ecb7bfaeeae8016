package console

import (
	"context"
	"net/http"
	"slices"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store"
)

// dashboardStore is what the dashboard reads.
type dashboardStore interface {
	// CountEnrolments returns how many enrolments are in each state.
	CountEnrolments(ctx context.Context) (map[enrol.State]int, error)
	// ConsolePolicyCounts returns counts[policy][state].
	ConsolePolicyCounts(ctx context.Context) (map[string]map[string]int, error)
	// AuditFilter returns one page of audit events, newest first.
	AuditFilter(ctx context.Context, q store.AuditQuery) ([]audit.Record, error)
	// Counts returns how many outbox messages are in each state.
	Counts(ctx context.Context) (map[string]int, error)
	// Messages returns outbox messages, newest first.
	Messages(ctx context.Context, f outbox.Filter) ([]outbox.Message, error)
	mailStore
	accountsStore
}

// states are the enrolment states in the order of the process.
var states = []enrol.State{enrol.Invited, enrol.Submitted, enrol.Approved, enrol.Issued,
	enrol.Expired, enrol.Cancelled, enrol.Rejected, enrol.Revoked}

// How much of the lists the dashboard shows.
const (
	dashboardEvents   = 10
	dashboardProblems = 10
)

// stateCount is one state's count.
type stateCount struct {
	State string
	Count int
}

// policyRow is one policy's counts, in the order of states.
type policyRow struct {
	Policy string
	Counts []int
	Total  int
}

// dashboardPage is the data of the dashboard view.
type dashboardPage struct {
	States   []stateCount
	Total    int
	Columns  []string // the states, for the per-policy table's head
	Policies []policyRow
	// Limited is true for an officer who sees only some policies: States
	// then count those policies only.
	Limited bool
	// Events is the latest activity; nil unless the principal may read
	// the audit log.
	Events     []audit.Record
	ShowEvents bool
	// Mail delivery: how many messages wait or failed, and the latest
	// failures.
	Pending, Failed int
	Problems        []outbox.Message
}

// dashboard shows counts per state and per policy, the latest activity and
// email that could not be delivered.
//
// Pattern: GET /console/{$}.
func (c *Console) dashboard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := auth.FromContext(ctx)
	byPolicy, err := c.cfg.Store.ConsolePolicyCounts(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	_, limited := p.Scope()
	d := dashboardPage{Limited: limited}
	for _, s := range states {
		d.Columns = append(d.Columns, string(s))
	}
	totals := map[string]int{}
	names := make([]string, 0, len(byPolicy))
	for name := range byPolicy {
		if p.CanPolicy(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		row := policyRow{Policy: name}
		for _, s := range states {
			n := byPolicy[name][string(s)]
			row.Counts = append(row.Counts, n)
			row.Total += n
			totals[string(s)] += n
		}
		d.Policies = append(d.Policies, row)
	}
	if !d.Limited {
		// The state counts of the whole table, from the query the CLI's
		// status uses.
		all, err := c.cfg.Store.CountEnrolments(ctx)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		clear(totals)
		for s, n := range all {
			totals[string(s)] = n
		}
	}
	for _, s := range states {
		d.States = append(d.States, stateCount{State: string(s), Count: totals[string(s)]})
		d.Total += totals[string(s)]
	}
	if p.Can(auth.ViewAudit) {
		d.ShowEvents = true
		if d.Events, err = c.cfg.Store.AuditFilter(ctx, store.AuditQuery{Limit: dashboardEvents}); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	counts, err := c.cfg.Store.Counts(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d.Pending, d.Failed = counts["pending"], counts["failed"]
	if d.Failed > 0 && !d.Limited {
		if d.Problems, err = c.cfg.Store.Messages(ctx, outbox.Filter{State: "failed", Limit: dashboardProblems}); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	c.render(w, r, http.StatusOK, "dashboard", d)
}
