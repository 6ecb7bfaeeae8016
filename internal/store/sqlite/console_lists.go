package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
)

// The list queries of the RA console's pages. Each walks one index of
// migration 0010 (or an older one) in the order of the page, with the
// cursor as the lower bound, so no query sorts and none reads rows it does
// not return beyond what its filters skip; console_lists_test.go checks
// the plans.

// ListEnrolments returns a page of the enrolments q selects: newest first,
// or, when searching by mailbox or surname, in the order of that key.
// q.After is the ID of the previous page's last row.
//
// An officer's several policies are one query per policy, merged: a single
// query with "policy IN (...)" could not both use the index and keep the
// order without sorting.
func (db *DB) ListEnrolments(ctx context.Context, q store.EnrolmentQuery) ([]*enrol.Enrolment, error) {
	limit := store.PageLimit(q.Limit)
	stmts := listEnrolmentsSQL(q)
	var out []*enrol.Enrolment
	for _, s := range stmts {
		es, err := db.queryEnrolments(ctx, s.q, s.args...)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	if len(stmts) > 1 {
		slices.SortFunc(out, func(a, b *enrol.Enrolment) int { return cmp.Compare(b.ID, a.ID) })
		out = out[:min(len(out), limit)]
	}
	return out, nil
}

// query is one SQL statement with its arguments.
type query struct {
	q    string
	args []any
}

// listEnrolmentsSQL returns the statements of ListEnrolments.
func listEnrolmentsSQL(q store.EnrolmentQuery) []query {
	limit := store.PageLimit(q.Limit)
	q.Policies = slices.Compact(slices.Sorted(slices.Values(q.Policies)))
	search := q.Mailbox != "" || q.Surname != ""
	if search || len(q.Policies) <= 1 {
		from, where, args, order := enrolmentWhere(q)
		if len(q.Policies) > 1 {
			// The search key's range is narrow: a filter on it.
			where += ` AND policy IN (` + placeholders(len(q.Policies)) + `)`
			for _, p := range q.Policies {
				args = append(args, p)
			}
		}
		return []query{{`SELECT ` + enrolmentColumns + ` FROM ` + from + ` WHERE ` + where + ` ORDER BY ` + order + ` LIMIT ?`, append(args, limit)}}
	}
	var out []query
	for _, p := range q.Policies {
		one := q
		one.Policies = []string{p}
		from, where, args, order := enrolmentWhere(one)
		out = append(out, query{`SELECT ` + enrolmentColumns + ` FROM ` + from + ` WHERE ` + where + ` ORDER BY ` + order + ` LIMIT ?`, append(args, limit)})
	}
	return out
}

// enrolmentWhere returns the condition, arguments and order of q for at
// most one policy.
func enrolmentWhere(q store.EnrolmentQuery) (from, where string, args []any, order string) {
	conds := []string{"1=1"}
	if q.State != "" {
		conds = append(conds, `state = ?`)
		args = append(args, q.State)
	}
	if len(q.Policies) == 1 {
		conds = append(conds, `policy = ?`)
		args = append(args, q.Policies[0])
	}
	if q.BatchID != 0 {
		conds = append(conds, `batch_id = ?`)
		args = append(args, q.BatchID)
	}
	switch {
	case q.Mailbox != "":
		conds, args = prefix(conds, args, `mailbox_key`, q.Mailbox)
		if q.After > 0 {
			conds = append(conds, `(mailbox_key, id) > ((SELECT mailbox_key FROM enrolments WHERE id = ?), ?)`)
			args = append(args, q.After, q.After)
		}
		from, order = `enrolments INDEXED BY enrolments_mailbox_key`, `mailbox_key, id`
	case q.Surname != "":
		conds, args = prefix(conds, args, `surname_key`, store.NameKey(q.Surname))
		if q.GivenName != "" {
			// Not in the index: a filter on the rows the surname finds.
			conds, args = prefix(conds, args, `given_name_key`, store.NameKey(q.GivenName))
		}
		if q.After > 0 {
			conds = append(conds, `(surname_key, id) > ((SELECT surname_key FROM enrolments WHERE id = ?), ?)`)
			args = append(args, q.After, q.After)
		}
		from, order = `enrolments INDEXED BY enrolments_surname`, `surname_key, id`
	default:
		// A bound even on the first page, so that the plan is the same
		// walk down the rowid (or an index's ids) for every page.
		conds = append(conds, `id < ?`)
		args = append(args, cursor(q.After))
		from, order = `enrolments`, `id DESC`
	}
	return from, strings.Join(conds, ` AND `), args, order
}

// prefix adds the conditions for "expr starts with p" as a range, which an
// index serves; LIKE would not (and treats % and _ as wildcards).
func prefix(conds []string, args []any, expr, p string) ([]string, []any) {
	conds = append(conds, expr+` >= ?`)
	args = append(args, p)
	if hi, ok := prefixEnd(p); ok {
		conds = append(conds, expr+` < ?`)
		args = append(args, hi)
	}
	return conds, args
}

// cursor returns the upper bound of a newest-first page.
func cursor(after int64) int64 {
	if after > 0 {
		return after
	}
	return math.MaxInt64
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func (db *DB) queryEnrolments(ctx context.Context, q string, args ...any) ([]*enrol.Enrolment, error) {
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing enrolments: %w", err)
	}
	defer rows.Close()
	var out []*enrol.Enrolment
	for rows.Next() {
		e, err := scanEnrolment(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: listing enrolments: %w", err)
	}
	return out, nil
}

// ListApplications returns a page of the applications waiting for
// approval, oldest submission first, with their approvals so far. q.After
// is the ID of the previous page's last row.
func (db *DB) ListApplications(ctx context.Context, q store.QueueQuery) ([]*enrol.Enrolment, error) {
	s := listApplicationsSQL(q)
	es, err := db.queryEnrolments(ctx, s.q, s.args...)
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		if err := db.loadApprovers(ctx, e); err != nil {
			return nil, err
		}
	}
	return es, nil
}

func listApplicationsSQL(q store.QueueQuery) query {
	conds := []string{`state = 'submitted'`}
	var args []any
	from := `enrolments INDEXED BY enrolments_queue`
	switch len(q.Policies) {
	case 0:
	case 1:
		from = `enrolments INDEXED BY enrolments_policy_queue`
		conds = append(conds, `policy = ?`)
		args = append(args, q.Policies[0])
	default:
		// Applications are few: a filter on the queue's index.
		conds = append(conds, `policy IN (`+placeholders(len(q.Policies))+`)`)
		for _, p := range q.Policies {
			args = append(args, p)
		}
	}
	if q.After > 0 {
		conds = append(conds, `(submitted_at, id) > ((SELECT submitted_at FROM enrolments WHERE id = ?), ?)`)
		args = append(args, q.After, q.After)
	}
	return query{`SELECT ` + enrolmentColumns + ` FROM ` + from + ` WHERE ` + strings.Join(conds, ` AND `) +
		` ORDER BY submitted_at, id LIMIT ?`, append(args, store.PageLimit(q.Limit))}
}

const certificateRowColumns = `c.serial, c.issuer_id, c.profile, c.mailbox, c.not_before, c.not_after,
	COALESCE(c.revoked_at, 0), COALESCE(c.revocation_reason, 0),
	COALESCE(e.id, 0), COALESCE(e.policy, ''), COALESCE(e.given_name, ''), COALESCE(e.surname, '')`

// ListCertificates returns a page of the issued certificates q selects:
// newest first, or, when searching, in the order of the key searched.
// q.After is the serial of the previous page's last row.
func (db *DB) ListCertificates(ctx context.Context, q store.CertificateQuery) ([]store.CertificateRow, error) {
	s := listCertificatesSQL(q)
	rows, err := db.read.QueryContext(ctx, s.q, s.args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing certificates: %w", err)
	}
	defer rows.Close()
	var out []store.CertificateRow
	for rows.Next() {
		r, err := scanCertificateRow(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: listing certificates: %w", err)
	}
	return out, nil
}

func listCertificatesSQL(q store.CertificateQuery) query {
	var conds []string
	var args []any
	// Certificates lead, in the order of the page; with policies to match
	// the join is an inner one, and CROSS JOIN keeps SQLite from leading
	// with the enrolments of those policies and sorting.
	from := `certificates c LEFT JOIN enrolments e ON e.serial = c.serial`
	if len(q.Policies) > 0 {
		from = `certificates c CROSS JOIN enrolments e ON e.serial = c.serial`
	}
	var order string
	switch {
	case q.Serial != "":
		conds, args = prefix(conds, args, `c.serial`, q.Serial)
		if q.After != "" {
			conds = append(conds, `c.serial > ?`)
			args = append(args, q.After)
		}
		order = `c.serial`
	case q.Mailbox != "":
		conds, args = prefix(conds, args, `c.mailbox`, q.Mailbox)
		if q.After != "" {
			conds = append(conds, `(c.mailbox, c.rowid) > (SELECT mailbox, rowid FROM certificates WHERE serial = ?)`)
			args = append(args, q.After)
		}
		from = strings.Replace(from, `certificates c`, `certificates c INDEXED BY certificates_mailbox`, 1)
		order = `c.mailbox, c.rowid`
	case q.Surname != "":
		// Names are the enrolment's: walk its surname index.
		from = `enrolments e INDEXED BY enrolments_surname CROSS JOIN certificates c ON c.serial = e.serial`
		conds, args = prefix(conds, args, `e.surname_key`, store.NameKey(q.Surname))
		if q.After != "" {
			conds = append(conds, `(e.surname_key, e.id) > (SELECT surname_key, id FROM enrolments WHERE serial = ?)`)
			args = append(args, q.After)
		}
		order = `e.surname_key, e.id`
	default:
		if q.After != "" {
			conds = append(conds, `c.rowid < (SELECT rowid FROM certificates WHERE serial = ?)`)
			args = append(args, q.After)
		} else {
			conds = append(conds, `c.rowid < ?`)
			args = append(args, int64(math.MaxInt64))
		}
		order = `c.rowid DESC`
	}
	conds = append(conds, `c.state = 'issued'`)
	if len(q.Policies) > 0 {
		conds = append(conds, `e.policy IN (`+placeholders(len(q.Policies))+`)`)
		for _, p := range q.Policies {
			args = append(args, p)
		}
	}
	return query{`SELECT ` + certificateRowColumns + ` FROM ` + from + ` WHERE ` + strings.Join(conds, ` AND `) +
		` ORDER BY ` + order + ` LIMIT ?`, append(args, store.PageLimit(q.Limit))}
}

func scanCertificateRow(scan func(...any) error, extra ...any) (store.CertificateRow, error) {
	var r store.CertificateRow
	var nb, na, rev int64
	var reason int
	dest := append([]any{&r.Serial, &r.IssuerID, &r.Profile, &r.Mailbox, &nb, &na, &rev, &reason,
		&r.EnrolmentID, &r.Policy, &r.GivenName, &r.Surname}, extra...)
	if err := scan(dest...); err != nil {
		return r, fmt.Errorf("sqlite: reading certificate: %w", err)
	}
	r.NotBefore, r.NotAfter, r.RevokedAt, r.Reason = unix(nb), unix(na), unix(rev), ca.RevocationReason(reason)
	return r, nil
}

// CertificateRow returns the issued certificate with this serial, with
// its DER and the enrolment it was issued to; enrol.ErrNotFound when there
// is no issued certificate with that serial.
func (db *DB) CertificateRow(ctx context.Context, serial string) (*store.CertificateRow, error) {
	var der []byte
	r, err := scanCertificateRow(db.readRow(ctx, `SELECT `+certificateRowColumns+`, c.der FROM certificates c
		LEFT JOIN enrolments e ON e.serial = c.serial WHERE c.serial = ? AND c.state = 'issued'`, serial).Scan, &der)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.DER = der
	return &r, nil
}

// EnrolmentHistory returns the audit events of an enrolment, oldest first.
func (db *DB) EnrolmentHistory(ctx context.Context, id int64) ([]audit.Record, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE object = ? ORDER BY seq`, "enrolment:"+strconv.FormatInt(id, 10))
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

// EnrolmentValidations returns how the mailbox of an enrolment was
// validated, oldest first.
func (db *DB) EnrolmentValidations(ctx context.Context, id int64) ([]enrol.Validation, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT enrolment_id, mailbox, method, br_version, at FROM validations WHERE enrolment_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading validations: %w", err)
	}
	defer rows.Close()
	var out []enrol.Validation
	for rows.Next() {
		var v enrol.Validation
		var at int64
		if err := rows.Scan(&v.EnrolmentID, &v.Mailbox, &v.Method, &v.BRVersion, &at); err != nil {
			return nil, fmt.Errorf("sqlite: reading validations: %w", err)
		}
		v.At = unix(at)
		out = append(out, v)
	}
	return out, rows.Err()
}

// BatchRows returns up to limit report rows of a batch after the given
// line, in line order; refusedOnly leaves out the invited rows.
func (db *DB) BatchRows(ctx context.Context, batchID int64, afterLine int, refusedOnly bool, limit int) ([]store.BatchRow, error) {
	q := `SELECT line, email, invited, COALESCE(enrolment_id, 0), reason, detail FROM batch_rows WHERE batch_id = ? AND line > ?`
	if refusedOnly {
		q += ` AND invited = 0`
	}
	var out []store.BatchRow
	err := db.scanBatchRows(ctx, q+` ORDER BY line LIMIT ?`, []any{batchID, afterLine, store.PageLimit(limit)}, func(r store.BatchRow) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// ScanBatchRows calls fn with every report row of a batch, in line order,
// reading them one at a time; an error from fn stops the scan.
func (db *DB) ScanBatchRows(ctx context.Context, batchID int64, fn func(store.BatchRow) error) error {
	return db.scanBatchRows(ctx, `SELECT line, email, invited, COALESCE(enrolment_id, 0), reason, detail FROM batch_rows WHERE batch_id = ? ORDER BY line`, []any{batchID}, fn)
}

func (db *DB) scanBatchRows(ctx context.Context, q string, args []any, fn func(store.BatchRow) error) error {
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("sqlite: reading batch report: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r store.BatchRow
		if err := rows.Scan(&r.Line, &r.Email, &r.Invited, &r.EnrolmentID, &r.Reason, &r.Detail); err != nil {
			return fmt.Errorf("sqlite: reading batch report: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: reading batch report: %w", err)
	}
	return nil
}

// RecentBatches returns the newest batches, newest first.
func (db *DB) RecentBatches(ctx context.Context, limit int) ([]*enrol.Batch, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, policy, filename, actor, state, rows, invited, refused, created_at, COALESCE(done_at, 0), updated_at
		FROM batches ORDER BY id DESC LIMIT ?`, store.PageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing batches: %w", err)
	}
	defer rows.Close()
	var out []*enrol.Batch
	for rows.Next() {
		var b enrol.Batch
		var created, done, updated int64
		if err := rows.Scan(&b.ID, &b.Policy, &b.Filename, &b.Actor, &b.State, &b.Rows, &b.Invited, &b.Refused, &created, &done, &updated); err != nil {
			return nil, fmt.Errorf("sqlite: listing batches: %w", err)
		}
		b.CreatedAt, b.DoneAt, b.UpdatedAt = unix(created), unix(done), unix(updated)
		out = append(out, &b)
	}
	return out, rows.Err()
}
