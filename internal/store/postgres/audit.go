package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/store"
)

const auditColumns = `seq, at, actor, action, object, detail, prev_hash, hash`

// AuditEvents calls fn with every audit event in sequence order, oldest
// first, for verifying the chain. The rows come from one query, so from one
// snapshot, and are read one at a time: the whole log is never in memory.
func (db *DB) AuditEvents(ctx context.Context, fn func(audit.Record) error) error {
	return db.AuditScan(ctx, store.AuditQuery{}, fn)
}

// AuditScan calls fn with every audit event that f selects, oldest first,
// reading the rows one at a time as AuditEvents does. f.Limit is ignored.
func (db *DB) AuditScan(ctx context.Context, f store.AuditQuery, fn func(audit.Record) error) error {
	where, args := auditWhere(f)
	rows, err := db.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit_events`+where+` ORDER BY seq`, args...)
	if err != nil {
		return fmt.Errorf("postgres: reading audit events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: reading audit events: %w", err)
	}
	return nil
}

// AuditFilter returns the audit events that f selects, newest first, at
// most f.Limit of them. For the next page, pass the Seq of the last event
// returned as f.Before.
//
// The planner's statistics cannot tell where in the log the events of an
// object prefix or a time range lie: for "enrolment:12" it expects to
// find 51 of its ten thousand events soon walking the primary key from the
// newest, and reads most of the log when they are old. So when the prefix
// or the range selects fewer than auditSortMax events (a probe of its
// index, counting up to that, tells), the query orders by seq + 0, which
// no index gives: the planner then reads those events from the index of
// the filter and sorts them.
func (db *DB) AuditFilter(ctx context.Context, f store.AuditQuery) ([]audit.Record, error) {
	where, args := auditWhere(f)
	args = append(args, store.PageLimit(f.Limit))
	q := `SELECT ` + auditColumns + ` FROM audit_events` + where + fmt.Sprintf(` ORDER BY seq DESC LIMIT $%d`, len(args))
	switch onlyObject := f.Object != "" && f.Action == "" && f.Actor == "" && f.Since.IsZero() && f.Until.IsZero(); {
	case onlyObject:
		// The object index has both columns that choose the page: an
		// index-only scan and a sort of seq alone, cheap for ten times as
		// many events.
		few, err := db.auditFew(ctx, f, auditSeqSortMax)
		if err != nil {
			return nil, err
		}
		if few {
			q = `SELECT ` + auditColumns + ` FROM audit_events WHERE seq IN (SELECT seq FROM audit_events` + where +
				fmt.Sprintf(` ORDER BY seq + 0 DESC LIMIT $%d) ORDER BY seq DESC`, len(args))
		}
	default:
		few, err := db.auditFew(ctx, f, auditSortMax)
		if err != nil {
			return nil, err
		}
		if few {
			q = `SELECT ` + auditColumns + ` FROM audit_events` + where + fmt.Sprintf(` ORDER BY seq + 0 DESC LIMIT $%d`, len(args))
		}
	}
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading audit events: %w", err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: reading audit events: %w", err)
	}
	return out, nil
}

// How many events AuditFilter lets a query sort: auditSortMax when it
// reads them from the table, auditSeqSortMax when their sequence numbers
// alone, from the object index, choose the page.
const (
	auditSortMax    = 5000
	auditSeqSortMax = 20000
)

// auditFew reports whether f's object prefix, or else its time range,
// selects fewer than max events; false when f has neither.
func (db *DB) auditFew(ctx context.Context, f store.AuditQuery, max int) (bool, error) {
	var probes []store.AuditQuery
	if f.Object != "" {
		probes = append(probes, store.AuditQuery{Object: f.Object})
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		probes = append(probes, store.AuditQuery{Since: f.Since, Until: f.Until})
	}
	for _, p := range probes {
		where, args := auditWhere(p)
		var n int
		err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM audit_events`+where+
			fmt.Sprintf(` LIMIT $%d) few`, len(args)+1), append(args, max)...).Scan(&n)
		if err != nil {
			return false, fmt.Errorf("postgres: reading audit events: %w", err)
		}
		if n < max {
			return true, nil
		}
	}
	return false, nil
}

func auditWhere(f store.AuditQuery) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Actor != "" {
		conds = append(conds, `actor = `+arg(f.Actor))
	}
	if f.Action != "" {
		conds = append(conds, `action = `+arg(f.Action))
	}
	if f.Object != "" {
		// starts_with rather than LIKE, which would treat % and _ in the
		// prefix as wildcards; the range lets the planner use an index on
		// object (collation "C": bytewise, as SQLite compares).
		p := arg(f.Object)
		conds = append(conds, `object >= `+p+` AND starts_with(object, `+p+`)`)
		if utf8.ValidString(f.Object) {
			if hi, ok := prefixEnd(f.Object); ok {
				// The range's end too, so that an index scan stops there.
				conds = append(conds, `object < `+arg(hi))
			}
		}
	}
	if !f.Since.IsZero() {
		conds = append(conds, `at >= `+arg(f.Since.UnixNano()))
	}
	if !f.Until.IsZero() {
		conds = append(conds, `at < `+arg(f.Until.UnixNano()))
	}
	if f.Before > 0 {
		conds = append(conds, `seq < `+arg(f.Before))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return ` WHERE ` + strings.Join(conds, ` AND `), args
}

func scanAudit(row pgx.Row) (audit.Record, error) {
	var r audit.Record
	var at int64
	if err := row.Scan(&r.Seq, &at, &r.Actor, &r.Action, &r.Object, &r.Detail, &r.Prev, &r.Hash); err != nil {
		return r, fmt.Errorf("postgres: reading audit events: %w", err)
	}
	r.At = time.Unix(0, at).UTC()
	return r, nil
}
