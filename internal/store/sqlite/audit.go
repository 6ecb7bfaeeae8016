package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/audit"
)

// AuditQuery selects audit events. Its zero value selects every event.
type AuditQuery struct {
	Actor  string    // only events by this actor, exactly ("cli", "admin:ann@example.com")
	Action string    // only events with this action, exactly ("enrolment.invite")
	Object string    // only events whose object starts with this ("enrolment:42", "batch:")
	Since  time.Time // only events at or after this time
	Until  time.Time // only events before this time
	Before int64     // only events with a sequence number below this; the keyset cursor of AuditFilter
	Limit  int       // AuditFilter returns at most this many; 0 means 100, more than 1000 means 1000
}

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
	where, args := auditWhere(f)
	rows, err := db.read.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_events`+where+` ORDER BY seq`, args...)
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
// the same however deep it is.
func (db *DB) AuditFilter(ctx context.Context, f AuditQuery) ([]audit.Record, error) {
	// No limit means a page of 100; more than 1,000 means 1,000, not a
	// silent 100.
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	where, args := auditWhere(f)
	rows, err := db.read.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_events`+where+` ORDER BY seq DESC LIMIT ?`, append(args, f.Limit)...)
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
