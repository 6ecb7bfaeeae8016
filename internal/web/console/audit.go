package console

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/store"
)

// auditStore is what the audit log pages read and write.
type auditStore interface {
	// AuditFilter returns one page of the events q selects, newest first.
	AuditFilter(ctx context.Context, q store.AuditQuery) ([]audit.Record, error)
	// AuditScan calls fn with every event q selects, oldest first.
	AuditScan(ctx context.Context, q store.AuditQuery, fn func(audit.Record) error) error
	// ConsoleAudit appends one audit event.
	ConsoleAudit(ctx context.Context, actor, action, object, detail string) error
}

// auditPageSize is how many events one page of the audit log shows.
const auditPageSize = 50

// auditFilter is the audit log's filter form, as typed.
type auditFilter struct {
	Actor, Action, Object, From, To string
}

// auditPage is the data of the audit view.
type auditPage struct {
	Filter auditFilter
	Errors map[string]string
	Events []audit.Record
	// Next is the URL of the next (older) page; "" on the last.
	Next string
	// Export is the filter the export form posts: every event it selects.
	Export url.Values
}

// auditLog shows the audit log, newest first, filtered by actor, action,
// object (a prefix) and time, a page at a time (keyset: before=<seq>).
//
// Pattern: GET /console/audit.
func (c *Console) auditLog(w http.ResponseWriter, r *http.Request) {
	f, q, problems := parseAuditQuery(r.URL.Query())
	d := auditPage{Filter: f, Errors: problems, Export: f.query()}
	if len(problems) > 0 {
		c.render(w, r, http.StatusBadRequest, "audit", d)
		return
	}
	q.Limit = auditPageSize + 1
	events, err := c.cfg.Store.AuditFilter(r.Context(), q)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if len(events) > auditPageSize {
		events = events[:auditPageSize]
		next := f.query()
		next.Set("before", strconv.FormatInt(events[len(events)-1].Seq, 10))
		d.Next = "/console/audit?" + next.Encode()
	}
	d.Events = events
	c.render(w, r, http.StatusOK, "audit", d)
}

// auditCSV exports every event the filter selects as CSV, oldest first,
// in the columns of `mailca audit export`, with cells a spreadsheet would
// run as formulas neutralised. The export is itself an audit event,
// recorded before any event leaves the database; so the export is a POST
// (a link followed from another site would record exports nobody asked
// for).
//
// Pattern: POST /console/audit.csv (actor, action, object, from, to).
func (c *Console) auditCSV(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, errs.E(errs.Invalid, "the export's filter cannot be read"))
		return
	}
	_, q, problems := parseAuditQuery(r.PostForm)
	for _, field := range []string{"from", "to", "before", "actor", "action", "object"} {
		if m := problems[field]; m != "" {
			c.fail(w, r, errs.E(errs.Invalid, "%s", m))
			return
		}
	}
	q.Before = 0
	p := auth.FromContext(r.Context())
	if err := c.cfg.Store.ConsoleAudit(r.Context(), p.Actor(), "audit.export", "audit", "console export of "+q.Describe()); err != nil {
		c.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="mailca-audit-`+c.now().UTC().Format("20060102-150405")+`.csv"`)
	err := audit.WriteCSV(w, func(fn func(audit.Record) error) error { return c.cfg.Store.AuditScan(r.Context(), q, fn) })
	if err != nil {
		// The response has begun: the download ends short, and the log says why.
		c.log.ErrorContext(r.Context(), "console: audit export", "err", err)
	}
}

// parseAuditQuery reads the filter of the query string; problems by field.
func parseAuditQuery(v url.Values) (auditFilter, store.AuditQuery, map[string]string) {
	f := auditFilter{
		Actor: strings.TrimSpace(v.Get("actor")), Action: strings.TrimSpace(v.Get("action")),
		Object: strings.TrimSpace(v.Get("object")), From: strings.TrimSpace(v.Get("from")), To: strings.TrimSpace(v.Get("to")),
	}
	q := store.AuditQuery{Actor: f.Actor, Action: f.Action, Object: f.Object}
	problems := map[string]string{}
	var err error
	if q.Since, err = parseFilterTime(f.From, false); err != nil {
		problems["from"] = "from: " + err.Error()
	}
	if q.Until, err = parseFilterTime(f.To, true); err != nil {
		problems["to"] = "to: " + err.Error()
	}
	if b := v.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			problems["before"] = "before: not an event number"
		}
		q.Before = n
	}
	for name, s := range map[string]string{"actor": f.Actor, "action": f.Action, "object": f.Object} {
		if len(s) > 500 {
			problems[name] = name + ": at most 500 characters"
		}
	}
	return f, q, problems
}

// parseFilterTime reads a time of the filter form, in UTC: a date
// (2025-01-31), the value of a datetime-local field (2025-01-31T14:30) or
// RFC 3339. A date as the end of a range includes that whole day.
func parseFilterTime(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errs.E(errs.Invalid, "not a date such as 2025-01-31 or a time such as 2025-01-31T14:30")
}

// query returns the filter as a query string, without empty values.
func (f auditFilter) query() url.Values {
	v := url.Values{}
	for _, kv := range [][2]string{{"actor", f.Actor}, {"action", f.Action}, {"object", f.Object}, {"from", f.From}, {"to", f.To}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	return v
}
