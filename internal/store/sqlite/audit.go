package sqlite

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/store"
)

// AuditQuery selects audit events; see store.AuditQuery.
type AuditQuery = store.AuditQuery

const auditColumns = `seq, at, actor, action, object, detail, prev_hash, hash`

// AuditEvents calls fn with every audit event in sequence order, oldest
// first, for verifying the chain. The rows are read one at a time from a
// single query, which SQLite answers from one snapshot: events appended
// meanwhile are not seen, and the whole log is never in memory. An error
// from fn stops the iteration and is returned.
func (db *DB) AuditEvents(ctx context.Context, fn func(audit.Record) error) error {
	return db.AuditScan(ctx, AuditQuery{}, fn)
}

// AuditScan calls fn with every audit event that f selects, oldest first,
// reading the rows one at a time as AuditEvents does. f.Limit is ignored.
func (db *DB) AuditScan(ctx context.Context, f AuditQuery, fn func(audit.Record) error) error {
	from, err := db.auditFrom(ctx, f)
	if err != nil {
		return err
	}
	where, args := auditWhere(f)
	rows, err := db.read.QueryContext(ctx, `SELECT `+auditColumns+` FROM `+from+where+` ORDER BY seq`, args...)
	if err != nil {
		return fmt.Errorf("sqlite: reading audit events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanAudit(rows.Scan)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: reading audit events: %w", err)
	}
	return nil
}

// AuditFilter returns the audit events that f selects, newest first, at
// most f.Limit of them. For the next page, pass the Seq of the last event
// returned as f.Before: the cursor is the primary key, so every page costs
// the same however deep it is. Which index serves the filters is
// auditFilterSQL's choice, and auditFrom's.
func (db *DB) AuditFilter(ctx context.Context, f AuditQuery) ([]audit.Record, error) {
	s, err := db.auditFilterSQL(ctx, f)
	if err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, s.q, s.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading audit events: %w", err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		r, err := scanAudit(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: reading audit events: %w", err)
	}
	return out, nil
}

// auditFilterSQL returns AuditFilter's query.
func (db *DB) auditFilterSQL(ctx context.Context, f AuditQuery) (query, error) {
	f.Limit = store.PageLimit(f.Limit)
	if f.Before <= 0 {
		// A bound even on the first page, as for the enrolments.
		f.Before = math.MaxInt64
	}
	// Only an object prefix, or only a time range: its index has all the
	// columns that choose the page (seq is the rowid, in every index), so
	// the sort is of seq alone, without reading the rows, and cheap for ten
	// times as many events.
	var only string
	var onlyConds []string
	var onlyArgs []any
	switch timed := !f.Since.IsZero() || !f.Until.IsZero(); {
	case f.Action != "" || f.Actor != "":
	case f.Object != "" && !timed:
		only = `audit_events_object`
		onlyConds, onlyArgs = prefix(nil, nil, `object`, f.Object)
	case f.Object == "" && timed:
		only = `audit_events_at`
		onlyConds, onlyArgs = timeConds(f)
	}
	if only != "" {
		few, err := db.auditFew(ctx, only, onlyConds, onlyArgs, auditSeqSortMax)
		if err != nil {
			return query{}, err
		}
		where, args := auditWhere(f)
		if few {
			return query{`SELECT ` + auditColumns + ` FROM audit_events WHERE seq IN (SELECT seq FROM audit_events INDEXED BY ` + only +
				where + ` ORDER BY seq DESC LIMIT ?) ORDER BY seq DESC`, append(args, f.Limit)}, nil
		}
		// What auditFrom would choose, without probing again.
		return query{`SELECT ` + auditColumns + ` FROM audit_events NOT INDEXED` + where + ` ORDER BY seq DESC LIMIT ?`, append(args, f.Limit)}, nil
	}
	from, err := db.auditFrom(ctx, f)
	if err != nil {
		return query{}, err
	}
	where, args := auditWhere(f)
	return query{`SELECT ` + auditColumns + ` FROM ` + from + where + ` ORDER BY seq DESC LIMIT ?`, append(args, f.Limit)}, nil
}

// How many events a query of the audit log may sort: auditSortMax when it
// reads them from the table (auditFrom), auditSeqSortMax when their
// sequence numbers alone, from a covering index, choose the page.
const (
	auditSortMax    = 5000
	auditSeqSortMax = 20000
)

// auditFrom returns the FROM clause of a query for the events f selects,
// naming the index that serves it best, since the planner, without
// statistics (mailca never runs ANALYZE), cannot tell a filter that
// selects ten events from one that selects a million:
//
//   - an object prefix or a time range that selects fewer than
//     auditSortMax events reads them from audit_events_object or
//     audit_events_at and sorts them (one probe of the index, counting up to
//     auditSortMax, tells);
//   - otherwise an action, or else an actor, walks audit_events_action or
//     audit_events_actor in sequence order;
//   - otherwise the query walks the table by seq from the newest (or
//     oldest) event, and filters: a wide object prefix such as a bare type
//     ("enrolment:") or a long time range matches most events it reads.
func (db *DB) auditFrom(ctx context.Context, f AuditQuery) (string, error) {
	if f.Object != "" {
		conds, args := prefix(nil, nil, `object`, f.Object)
		if few, err := db.auditFew(ctx, `audit_events_object`, conds, args, auditSortMax); err != nil || few {
			return `audit_events INDEXED BY audit_events_object`, err
		}
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		conds, args := timeConds(f)
		if few, err := db.auditFew(ctx, `audit_events_at`, conds, args, auditSortMax); err != nil || few {
			return `audit_events INDEXED BY audit_events_at`, err
		}
	}
	switch {
	case f.Action != "":
		return `audit_events INDEXED BY audit_events_action`, nil
	case f.Actor != "":
		return `audit_events INDEXED BY audit_events_actor`, nil
	}
	return `audit_events NOT INDEXED`, nil
}

// timeConds returns the conditions of f's time range.
func timeConds(f AuditQuery) (conds []string, args []any) {
	if !f.Since.IsZero() {
		conds, args = append(conds, `at >= ?`), append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		conds, args = append(conds, `at < ?`), append(args, f.Until.UnixNano())
	}
	return conds, args
}

// auditFew reports whether fewer than max events meet conds, counting them
// on index, which conds must all be ranges of.
func (db *DB) auditFew(ctx context.Context, index string, conds []string, args []any, max int) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM audit_events INDEXED BY `+index+
		` WHERE `+strings.Join(conds, ` AND `)+` LIMIT ?)`, append(args, max)...).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sqlite: reading audit events: %w", err)
	}
	return n < max, nil
}

func auditWhere(f AuditQuery) (string, []any) {
	var conds []string
	var args []any
	if f.Actor != "" {
		conds = append(conds, `actor = ?`)
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		conds = append(conds, `action = ?`)
		args = append(args, f.Action)
	}
	if f.Object != "" {
		// A range rather than LIKE, which would treat % and _ in the
		// prefix as wildcards and fold ASCII case.
		conds = append(conds, `object >= ?`)
		args = append(args, f.Object)
		if hi, ok := prefixEnd(f.Object); ok {
			conds = append(conds, `object < ?`)
			args = append(args, hi)
		}
	}
	if !f.Since.IsZero() {
		conds = append(conds, `at >= ?`)
		args = append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		conds = append(conds, `at < ?`)
		args = append(args, f.Until.UnixNano())
	}
	if f.Before > 0 {
		conds = append(conds, `seq < ?`)
		args = append(args, f.Before)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return ` WHERE ` + strings.Join(conds, ` AND `), args
}

// prefixEnd returns the least string greater than every string that starts
// with p, in SQLite's bytewise text order, and false when there is none (p
// is all 0xFF octets).
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xFF {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

func scanAudit(scan func(...any) error) (audit.Record, error) {
	var r audit.Record
	var at int64
	if err := scan(&r.Seq, &at, &r.Actor, &r.Action, &r.Object, &r.Detail, &r.Prev, &r.Hash); err != nil {
		return r, fmt.Errorf("sqlite: reading audit events: %w", err)
	}
	r.At = time.Unix(0, at).UTC()
	return r, nil
}
