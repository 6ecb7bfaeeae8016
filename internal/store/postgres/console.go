package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store"
)

// The queries of the RA Management Console (internal/web/console): its
// dashboard, audit log and list pages. Each list is a keyset query on one
// index of migration 0010 (or an older one), in the order of the page.

// ConsolePolicyCounts returns how many enrolments each policy has in each
// state: counts[policy][state], from enrolmentCounts.
func (db *DB) ConsolePolicyCounts(ctx context.Context) (map[string]map[string]int, error) {
	out := map[string]map[string]int{}
	err := db.enrolmentCounts(ctx, func(policy, state string, n int) {
		if out[policy] == nil {
			out[policy] = map[string]int{}
		}
		out[policy][state] = n
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// enrolmentCounts calls fn with the number of enrolments of each policy in
// each state (but none with 0). It reads the table enrolment_counts, which
// the triggers of migration 0010 append to, after folding its rows into
// one per policy and state: a few dozen rows, and those appended since the
// last fold, however many enrolments there are. The advisory lock lets
// one fold at a time run, so a second one, which waits, sees the first's
// rows when its statement starts.
func (db *DB) enrolmentCounts(ctx context.Context, fn func(policy, state string, n int)) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, countsLock); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `WITH folded AS (DELETE FROM enrolment_counts RETURNING policy, state, n)
			INSERT INTO enrolment_counts (policy, state, n)
			SELECT policy, state, SUM(n) FROM folded GROUP BY policy, state HAVING SUM(n) <> 0
			RETURNING policy, state, n`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var policy, state string
			var n int
			if err := rows.Scan(&policy, &state, &n); err != nil {
				return err
			}
			fn(policy, state, n)
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("postgres: counting enrolments: %w", err)
	}
	return nil
}

// ConsoleAudit appends one audit event, in a transaction of its own, for
// what the console does outside the enrolment process.
func (db *DB) ConsoleAudit(ctx context.Context, actor, action, object, detail string) error {
	return db.InTx(ctx, func(tx enrol.Tx) error {
		return tx.Audit(enrol.Event{Actor: actor, Action: action, Object: object, Detail: detail})
	})
}

// ConsoleEnqueueTest enqueues the console's test message (template
// outbox.TestTemplate) to to, with its audit event, in one transaction.
func (db *DB) ConsoleEnqueueTest(ctx context.Context, actor, to, messageID string) error {
	return db.InTx(ctx, func(tx enrol.Tx) error {
		if err := tx.Enqueue(enrol.Mail{Template: outbox.TestTemplate, To: to, MessageID: messageID,
			Data: map[string]string{"Actor": actor}}); err != nil {
			return err
		}
		return tx.Audit(enrol.Event{Actor: actor, Action: "mail.test", Object: "mail:" + to, Detail: "test message enqueued"})
	})
}

// sqlArgs numbers the parameters of a statement as it is built.
type sqlArgs []any

func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// prefixConds adds the conditions for "expr starts with p" as a range,
// which an index on a "C"-collated expression serves.
func prefixConds(conds []string, args *sqlArgs, expr, p string) []string {
	if !utf8.ValidString(p) {
		return append(conds, `false`) // text stored is UTF-8: nothing starts with p
	}
	conds = append(conds, expr+` >= `+args.add(p))
	if hi, ok := prefixEnd(p); ok {
		conds = append(conds, expr+` < `+args.add(hi))
	}
	return conds
}

// prefixEnd returns the least string greater than every string that starts
// with p, in the bytewise order of the "C" collation, and false when there
// is none. PostgreSQL refuses text that is not UTF-8, so where SQLite's
// store increments the last byte this increments the last code point
// (UTF-8 orders bytewise as it orders code points). p must be valid UTF-8.
func prefixEnd(p string) (string, bool) {
	r := []rune(p)
	for i := len(r) - 1; i >= 0; i-- {
		next := r[i] + 1
		if next == 0xD800 {
			next = 0xE000 // surrogates are not characters
		}
		if next <= utf8.MaxRune {
			r[i] = next
			return string(r[:i+1]), true
		}
	}
	return "", false
}

// ListEnrolments returns a page of the enrolments q selects: newest first,
// or, when searching by mailbox or surname, in the order of that key.
// q.After is the ID of the previous page's last row.
func (db *DB) ListEnrolments(ctx context.Context, q store.EnrolmentQuery) ([]*enrol.Enrolment, error) {
	limit := store.PageLimit(q.Limit)
	q.Policies = slices.Compact(slices.Sorted(slices.Values(q.Policies)))
	search := q.Mailbox != "" || q.Surname != ""
	if search || len(q.Policies) <= 1 {
		where, args, order := enrolmentWhere(q)
		if len(q.Policies) > 1 {
			where += ` AND policy = ANY(` + args.add(q.Policies) + `)`
		}
		return collectEnrolments(db.pool.Query(ctx, `SELECT `+enrolmentColumns+` FROM enrolments WHERE `+where+` ORDER BY `+order+` LIMIT `+args.add(limit), args...))
	}
	// An officer's several policies: one walk of the (policy, id) index per
	// policy, merged.
	var out []*enrol.Enrolment
	for _, p := range q.Policies {
		one := q
		one.Policies = []string{p}
		where, args, order := enrolmentWhere(one)
		es, err := collectEnrolments(db.pool.Query(ctx, `SELECT `+enrolmentColumns+` FROM enrolments WHERE `+where+` ORDER BY `+order+` LIMIT `+args.add(limit), args...))
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	slices.SortFunc(out, func(a, b *enrol.Enrolment) int { return cmp.Compare(b.ID, a.ID) })
	return out[:min(len(out), limit)], nil
}

// enrolmentWhere returns the condition, arguments and order of q for at
// most one policy.
func enrolmentWhere(q store.EnrolmentQuery) (where string, args sqlArgs, order string) {
	conds := []string{"true"}
	if q.State != "" {
		conds = append(conds, `state = `+args.add(string(q.State)))
	}
	if len(q.Policies) == 1 {
		conds = append(conds, `policy = `+args.add(q.Policies[0]))
	}
	if q.BatchID != 0 {
		conds = append(conds, `batch_id = `+args.add(q.BatchID))
	}
	switch {
	case q.Mailbox != "":
		conds = prefixConds(conds, &args, `mailbox_key`, q.Mailbox)
		if q.After > 0 {
			a := args.add(q.After)
			conds = append(conds, `(mailbox_key, id) > ((SELECT mailbox_key FROM enrolments WHERE id = `+a+`), `+a+`)`)
		}
		order = `mailbox_key, id`
	case q.Surname != "":
		conds = prefixConds(conds, &args, `surname_key`, store.NameKey(q.Surname))
		if q.GivenName != "" {
			conds = prefixConds(conds, &args, `given_name_key`, store.NameKey(q.GivenName))
		}
		if q.After > 0 {
			a := args.add(q.After)
			conds = append(conds, `(surname_key, id) > ((SELECT surname_key FROM enrolments WHERE id = `+a+`), `+a+`)`)
		}
		order = `surname_key, id`
	default:
		after := int64(math.MaxInt64)
		if q.After > 0 {
			after = q.After
		}
		conds = append(conds, `id < `+args.add(after))
		order = `id DESC`
	}
	return strings.Join(conds, ` AND `), args, order
}

// ListApplications returns a page of the applications waiting for
// approval, oldest submission first, with their approvals so far. q.After
// is the ID of the previous page's last row.
func (db *DB) ListApplications(ctx context.Context, q store.QueueQuery) ([]*enrol.Enrolment, error) {
	conds := []string{`state = 'submitted'`}
	var args sqlArgs
	switch len(q.Policies) {
	case 0:
	case 1:
		conds = append(conds, `policy = `+args.add(q.Policies[0]))
	default:
		conds = append(conds, `policy = ANY(`+args.add(q.Policies)+`)`)
	}
	if q.After > 0 {
		a := args.add(q.After)
		conds = append(conds, `(submitted_at, id) > ((SELECT submitted_at FROM enrolments WHERE id = `+a+`), `+a+`)`)
	}
	es, err := collectEnrolments(db.pool.Query(ctx, `SELECT `+enrolmentColumns+` FROM enrolments WHERE `+strings.Join(conds, ` AND `)+
		` ORDER BY submitted_at, id LIMIT `+args.add(store.PageLimit(q.Limit)), args...))
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

const certificateRowColumns = `c.serial, c.issuer_id, c.profile, c.mailbox, c.not_before, c.not_after,
	COALESCE(c.revoked_at, 0), COALESCE(c.revocation_reason, 0),
	COALESCE(e.id, 0), COALESCE(e.policy, ''), COALESCE(e.given_name, ''), COALESCE(e.surname, '')`

// ListCertificates returns a page of the issued certificates q selects:
// newest first, or, when searching, in the order of the key searched.
// q.After is the serial of the previous page's last row.
func (db *DB) ListCertificates(ctx context.Context, q store.CertificateQuery) ([]store.CertificateRow, error) {
	var conds []string
	var args sqlArgs
	from := `certificates c LEFT JOIN enrolments e ON e.serial = c.serial`
	if len(q.Policies) > 0 {
		from = `certificates c JOIN enrolments e ON e.serial = c.serial`
	}
	var order string
	switch {
	case q.Serial != "":
		conds = prefixConds(conds, &args, `c.serial`, q.Serial)
		if q.After != "" {
			conds = append(conds, `c.serial > `+args.add(q.After))
		}
		order = `c.serial`
	case q.Mailbox != "":
		conds = prefixConds(conds, &args, `c.mailbox`, q.Mailbox)
		if q.After != "" {
			conds = append(conds, `(c.mailbox, c.row_id) > (SELECT mailbox, row_id FROM certificates WHERE serial = `+args.add(q.After)+`)`)
		}
		order = `c.mailbox, c.row_id`
	case q.Surname != "":
		// Names are the enrolment's: walk its surname index.
		from = `enrolments e JOIN certificates c ON c.serial = e.serial`
		conds = prefixConds(conds, &args, `e.surname_key`, store.NameKey(q.Surname))
		if q.After != "" {
			conds = append(conds, `(e.surname_key, e.id) > (SELECT surname_key, id FROM enrolments WHERE serial = `+args.add(q.After)+`)`)
		}
		order = `e.surname_key, e.id`
	default:
		if q.After != "" {
			conds = append(conds, `c.row_id < (SELECT row_id FROM certificates WHERE serial = `+args.add(q.After)+`)`)
		}
		order = `c.row_id DESC`
	}
	conds = append(conds, `c.state = 'issued'`)
	if len(q.Policies) > 0 {
		conds = append(conds, `e.policy = ANY(`+args.add(q.Policies)+`)`)
	}
	rows, err := db.pool.Query(ctx, `SELECT `+certificateRowColumns+` FROM `+from+` WHERE `+strings.Join(conds, ` AND `)+
		` ORDER BY `+order+` LIMIT `+args.add(store.PageLimit(q.Limit)), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing certificates: %w", err)
	}
	defer rows.Close()
	var out []store.CertificateRow
	for rows.Next() {
		r, err := scanCertificateRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: listing certificates: %w", err)
	}
	return out, nil
}

func scanCertificateRow(row pgx.Row, extra ...any) (store.CertificateRow, error) {
	var r store.CertificateRow
	var nb, na, rev int64
	var reason int
	dest := append([]any{&r.Serial, &r.IssuerID, &r.Profile, &r.Mailbox, &nb, &na, &rev, &reason,
		&r.EnrolmentID, &r.Policy, &r.GivenName, &r.Surname}, extra...)
	if err := row.Scan(dest...); err != nil {
		return r, fmt.Errorf("postgres: reading certificate: %w", err)
	}
	r.NotBefore, r.NotAfter, r.RevokedAt, r.Reason = unix(nb), unix(na), unix(rev), ca.RevocationReason(reason)
	return r, nil
}

// CertificateRow returns the issued certificate with this serial, with
// its DER and the enrolment it was issued to; enrol.ErrNotFound when there
// is no issued certificate with that serial.
func (db *DB) CertificateRow(ctx context.Context, serial string) (*store.CertificateRow, error) {
	var der []byte
	r, err := scanCertificateRow(db.pool.QueryRow(ctx, `SELECT `+certificateRowColumns+`, c.der FROM certificates c
		LEFT JOIN enrolments e ON e.serial = c.serial WHERE c.serial = $1 AND c.state = 'issued'`, serial), &der)
	if errors.Is(err, pgx.ErrNoRows) {
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
	return db.auditQuery(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE object = $1 ORDER BY seq`, "enrolment:"+strconv.FormatInt(id, 10))
}

// EnrolmentValidations returns how the mailbox of an enrolment was
// validated, oldest first.
func (db *DB) EnrolmentValidations(ctx context.Context, id int64) ([]enrol.Validation, error) {
	rows, err := db.pool.Query(ctx, `SELECT enrolment_id, mailbox, method, br_version, at FROM validations WHERE enrolment_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading validations: %w", err)
	}
	defer rows.Close()
	var out []enrol.Validation
	for rows.Next() {
		var v enrol.Validation
		var at int64
		if err := rows.Scan(&v.EnrolmentID, &v.Mailbox, &v.Method, &v.BRVersion, &at); err != nil {
			return nil, fmt.Errorf("postgres: reading validations: %w", err)
		}
		v.At = unix(at)
		out = append(out, v)
	}
	return out, rows.Err()
}

// BatchRows returns up to limit report rows of a batch after the given
// line, in line order; refusedOnly leaves out the invited rows.
func (db *DB) BatchRows(ctx context.Context, batchID int64, afterLine int, refusedOnly bool, limit int) ([]store.BatchRow, error) {
	q := `SELECT line, email, invited, COALESCE(enrolment_id, 0), reason, detail FROM batch_rows WHERE batch_id = $1 AND line > $2`
	if refusedOnly {
		q += ` AND NOT invited`
	}
	var out []store.BatchRow
	err := db.scanBatchRows(ctx, q+` ORDER BY line LIMIT $3`, []any{batchID, afterLine, store.PageLimit(limit)}, func(r store.BatchRow) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// ScanBatchRows calls fn with every report row of a batch, in line order,
// reading them one at a time; an error from fn stops the scan.
func (db *DB) ScanBatchRows(ctx context.Context, batchID int64, fn func(store.BatchRow) error) error {
	return db.scanBatchRows(ctx, `SELECT line, email, invited, COALESCE(enrolment_id, 0), reason, detail FROM batch_rows WHERE batch_id = $1 ORDER BY line`, []any{batchID}, fn)
}

func (db *DB) scanBatchRows(ctx context.Context, q string, args []any, fn func(store.BatchRow) error) error {
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("postgres: reading batch report: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r store.BatchRow
		if err := rows.Scan(&r.Line, &r.Email, &r.Invited, &r.EnrolmentID, &r.Reason, &r.Detail); err != nil {
			return fmt.Errorf("postgres: reading batch report: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: reading batch report: %w", err)
	}
	return nil
}

// RecentBatches returns the newest batches, newest first.
func (db *DB) RecentBatches(ctx context.Context, limit int) ([]*enrol.Batch, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, policy, filename, actor, state, rows, invited, refused, created_at, COALESCE(done_at, 0), updated_at
		FROM batches ORDER BY id DESC LIMIT $1`, store.PageLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: listing batches: %w", err)
	}
	defer rows.Close()
	var out []*enrol.Batch
	for rows.Next() {
		var b enrol.Batch
		var created, done, updated int64
		if err := rows.Scan(&b.ID, &b.Policy, &b.Filename, &b.Actor, &b.State, &b.Rows, &b.Invited, &b.Refused, &created, &done, &updated); err != nil {
			return nil, fmt.Errorf("postgres: listing batches: %w", err)
		}
		b.CreatedAt, b.DoneAt, b.UpdatedAt = unix(created), unix(done), unix(updated)
		out = append(out, &b)
	}
	return out, rows.Err()
}
