package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
)

var _ enrol.Store = (*DB)(nil)

// SavePolicy implements enrol.Store.
func (db *DB) SavePolicy(ctx context.Context, name, body, actor string) (int, error) {
	var v int
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions WHERE name = ?`, name).Scan(&v); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO policy_versions (name, version, body, actor, created_at) VALUES (?, ?, ?, ?, ?)`,
			name, v, body, actor, db.now().Unix())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: saving policy: %w", err)
	}
	return v, nil
}

// Policy implements enrol.Store.
func (db *DB) Policy(ctx context.Context, name string) (string, int, error) {
	var body string
	var v int
	err := db.readRow(ctx, `SELECT body, version FROM policy_versions WHERE name = ? ORDER BY version DESC LIMIT 1`, name).Scan(&body, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, enrol.ErrNotFound
	}
	return body, v, err
}

// PolicyAt implements enrol.Store.
func (db *DB) PolicyAt(ctx context.Context, name string, version int) (string, error) {
	var body string
	err := db.readRow(ctx, `SELECT body FROM policy_versions WHERE name = ? AND version = ?`, name, version).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return "", enrol.ErrNotFound
	}
	return body, err
}

// PolicyNames implements enrol.Store.
func (db *DB) PolicyNames(ctx context.Context) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT DISTINCT name FROM policy_versions ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

const enrolmentColumns = `id, policy, policy_version, state, rev, channel, mailbox, mailbox_key, given_name, surname, fields,
	COALESCE(batch_id, 0), invited_by, terms_version, COALESCE(serial, ''), reason, created_at, updated_at,
	COALESCE(submitted_at, 0), COALESCE(decided_at, 0), COALESCE(issued_at, 0), COALESCE(expires_at, 0),
	COALESCE(renewal_of, '')`

func scanEnrolment(scan func(...any) error) (*enrol.Enrolment, error) {
	var (
		e                                  enrol.Enrolment
		fields                             string
		created, updated, sub, dec, is, ex int64
	)
	if err := scan(&e.ID, &e.Policy, &e.PolicyVersion, &e.State, &e.Rev, &e.Channel, &e.Mailbox, &e.MailboxKey, &e.GivenName, &e.Surname, &fields,
		&e.BatchID, &e.InvitedBy, &e.TermsVersion, &e.Serial, &e.Reason, &created, &updated, &sub, &dec, &is, &ex, &e.RenewalOf); err != nil {
		return nil, err
	}
	if fields != "{}" && fields != "" {
		if err := json.Unmarshal([]byte(fields), &e.Fields); err != nil {
			return nil, fmt.Errorf("sqlite: enrolment %d fields: %w", e.ID, err)
		}
	}
	e.CreatedAt, e.UpdatedAt = unix(created), unix(updated)
	e.SubmittedAt, e.DecidedAt, e.IssuedAt, e.ExpiresAt = unix(sub), unix(dec), unix(is), unix(ex)
	return &e, nil
}

func unix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

func nullUnix(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

// Enrolment implements enrol.Store.
func (db *DB) Enrolment(ctx context.Context, id int64) (*enrol.Enrolment, error) {
	e, err := scanEnrolment(db.readRow(ctx, `SELECT `+enrolmentColumns+` FROM enrolments WHERE id = ?`, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return e, db.loadApprovers(ctx, e)
}

// Enrolment implements enrol.Tx.
func (t *enrolTx) Enrolment(id int64) (*enrol.Enrolment, error) {
	e, err := scanEnrolment(t.queryRow(`SELECT `+enrolmentColumns+` FROM enrolments WHERE id = ?`, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if e.State != enrol.Submitted && e.State != enrol.Approved {
		return e, nil
	}
	st, err := t.stmt(`SELECT approver FROM approvals WHERE enrolment_id = ? ORDER BY at`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(t.ctx, e.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		e.Approvers = append(e.Approvers, a)
	}
	return e, rows.Err()
}

// Policy implements enrol.Tx.
func (t *enrolTx) Policy(name string) (string, int, error) {
	var body string
	var v int
	err := t.queryRow(`SELECT body, version FROM policy_versions WHERE name = ? ORDER BY version DESC LIMIT 1`, name).Scan(&body, &v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, enrol.ErrNotFound
	}
	return body, v, err
}

// PolicyAt implements enrol.Tx.
func (t *enrolTx) PolicyAt(name string, version int) (string, error) {
	var body string
	err := t.queryRow(`SELECT body FROM policy_versions WHERE name = ? AND version = ?`, name, version).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return "", enrol.ErrNotFound
	}
	return body, err
}

// loadApprovers fills e.Approvers; only a submitted application can have
// approvals in progress, and most enrolments never have any.
func (db *DB) loadApprovers(ctx context.Context, e *enrol.Enrolment) error {
	if e.State != enrol.Submitted && e.State != enrol.Approved {
		return nil
	}
	s, err := db.readStmt(ctx, `SELECT approver FROM approvals WHERE enrolment_id = ? ORDER BY at`)
	if err != nil {
		return err
	}
	rows, err := s.QueryContext(ctx, e.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return err
		}
		e.Approvers = append(e.Approvers, a)
	}
	return rows.Err()
}

// Enrolments implements enrol.Store. Results are newest first; Filter.Before
// is a keyset cursor, so a page costs the same at row ten and row a million.
func (db *DB) Enrolments(ctx context.Context, f enrol.Filter) ([]*enrol.Enrolment, error) {
	q := `SELECT ` + enrolmentColumns + ` FROM enrolments WHERE 1=1`
	var args []any
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, f.State)
	}
	if f.Policy != "" {
		q += ` AND policy = ?`
		args = append(args, f.Policy)
	}
	if f.Mailbox != "" {
		q += ` AND mailbox >= ? AND mailbox < ?`
		args = append(args, f.Mailbox, f.Mailbox+"\U0010FFFF")
	}
	if f.BatchID != 0 {
		q += ` AND batch_id = ?`
		args = append(args, f.BatchID)
	}
	if f.Before > 0 {
		q += ` AND id < ?`
		args = append(args, f.Before)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
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
	return out, rows.Err()
}

// Link implements enrol.Store.
func (db *DB) Link(ctx context.Context, hash []byte) (*enrol.Link, error) {
	var l enrol.Link
	var exp int64
	var used sql.NullInt64
	err := db.readRow(ctx, `SELECT hash, purpose, enrolment_id, expires_at, used_at FROM links WHERE hash = ?`, hash).
		Scan(&l.Hash, &l.Purpose, &l.EnrolmentID, &exp, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	l.ExpiresAt, l.UsedAt = unix(exp), unix(used.Int64)
	return &l, nil
}

// Batch implements enrol.Store.
func (db *DB) Batch(ctx context.Context, id int64) (*enrol.Batch, error) {
	var b enrol.Batch
	var created, updated int64
	var done sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT id, policy, filename, actor, state, rows, invited, refused, created_at, done_at, updated_at, error FROM batches WHERE id = ?`, id).
		Scan(&b.ID, &b.Policy, &b.Filename, &b.Actor, &b.State, &b.Rows, &b.Invited, &b.Refused, &created, &done, &updated, &b.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	b.CreatedAt, b.DoneAt, b.UpdatedAt = unix(created), unix(done.Int64), unix(updated)
	return &b, err
}

// InTx implements enrol.Store.
func (db *DB) InTx(ctx context.Context, fn func(enrol.Tx) error) error {
	return db.stmtTx(ctx, func(ts *txStmts) error {
		return fn(&enrolTx{txStmts: ts, now: db.now})
	})
}

// enrolTx implements enrol.Tx on one SQLite transaction.
type enrolTx struct {
	*txStmts
	now func() time.Time

	// head caches the audit chain's last record within the transaction, so
	// a batch of invitations reads it once rather than once per row.
	headSeq  int64
	headHash []byte
}

// LiveEnrolment implements enrol.Tx.
func (t *enrolTx) LiveEnrolment(policy, key string) (*enrol.Enrolment, error) {
	e, err := scanEnrolment(t.queryRow(`SELECT `+enrolmentColumns+` FROM enrolments
		WHERE policy = ? AND mailbox_key = ? AND state IN ('invited', 'submitted', 'approved', 'issued') AND renewal_of IS NULL`, policy, key).Scan)
	if isNoRows(err) {
		return nil, enrol.ErrNotFound
	}
	return e, err
}

func (t *enrolTx) Transition(id int64, from enrol.State, rev int, e *enrol.Enrolment) error {
	fields, err := json.Marshal(e.Fields)
	if err != nil {
		return err
	}
	if e.Fields == nil {
		fields = []byte("{}")
	}
	var serial any
	if e.Serial != "" {
		serial = e.Serial
	}
	res, err := t.exec(`UPDATE enrolments SET state = ?, rev = rev + 1, given_name = ?, surname = ?, given_name_key = ?, surname_key = ?, fields = ?, terms_version = ?,
		serial = ?, reason = ?, updated_at = ?, submitted_at = ?, decided_at = ?, issued_at = ?, expires_at = ?
		WHERE id = ? AND state = ? AND rev = ?`,
		e.State, e.GivenName, e.Surname, store.NameKey(e.GivenName), store.NameKey(e.Surname), string(fields), e.TermsVersion, serial, e.Reason, e.UpdatedAt.Unix(),
		nullUnix(e.SubmittedAt), nullUnix(e.DecidedAt), nullUnix(e.IssuedAt), nullUnix(e.ExpiresAt), id, from, rev)
	if constraint(err) == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
		return enrol.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("sqlite: transition: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return enrol.ErrStale
	}
	return nil
}

func (t *enrolTx) AddApprover(id int64, approver string, at time.Time) (int, error) {
	if _, err := t.exec(`INSERT INTO approvals (enrolment_id, approver, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, id, approver, at.Unix()); err != nil {
		return 0, err
	}
	var n int
	err := t.queryRow(`SELECT COUNT(*) FROM approvals WHERE enrolment_id = ?`, id).Scan(&n)
	return n, err
}

func (t *enrolTx) UseLink(hash []byte, purpose enrol.Purpose, now time.Time) (*enrol.Link, error) {
	var l enrol.Link
	var exp int64
	err := t.queryRow(`UPDATE links SET used_at = ? WHERE hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?
		RETURNING hash, purpose, enrolment_id, expires_at`, now.Unix(), hash, purpose, now.Unix()).Scan(&l.Hash, &l.Purpose, &l.EnrolmentID, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	l.ExpiresAt, l.UsedAt = unix(exp), now
	return &l, nil
}

func (t *enrolTx) ReleaseLink(hash []byte) error {
	_, err := t.exec(`UPDATE links SET used_at = NULL WHERE hash = ? AND used_at IS NOT NULL
		AND enrolment_id IN (SELECT id FROM enrolments WHERE state = 'approved')`, hash)
	return err
}

func (t *enrolTx) RetireLinks(id int64, purpose enrol.Purpose, now time.Time) error {
	_, err := t.exec(`UPDATE links SET used_at = ? WHERE enrolment_id = ? AND purpose = ? AND used_at IS NULL`, now.Unix(), id, purpose)
	return err
}

func (t *enrolTx) RecordValidation(v enrol.Validation) error {
	_, err := t.exec(`INSERT INTO validations (enrolment_id, mailbox, method, br_version, at) VALUES (?, ?, ?, ?, ?)`,
		v.EnrolmentID, v.Mailbox, v.Method, v.BRVersion, v.At.Unix())
	return err
}

func (t *enrolTx) InsertBatch(b *enrol.Batch) error {
	res, err := t.exec(`INSERT INTO batches (policy, filename, actor, state, created_at) VALUES (?, ?, ?, ?, ?)`,
		b.Policy, b.Filename, b.Actor, b.State, b.CreatedAt.Unix())
	if err != nil {
		return err
	}
	b.ID, err = res.LastInsertId()
	return err
}

// UpdateBatch implements enrol.Tx. Only a batch still importing changes:
// one that FailStalledBatches marked failed meanwhile gives ErrStale.
func (t *enrolTx) UpdateBatch(b *enrol.Batch) error {
	res, err := t.exec(`UPDATE batches SET state = ?, rows = ?, invited = ?, refused = ?, done_at = ?, updated_at = ?, error = ? WHERE id = ? AND state = 'importing'`,
		b.State, b.Rows, b.Invited, b.Refused, nullUnix(b.DoneAt), b.UpdatedAt.Unix(), b.Error, b.ID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return enrol.ErrStale
	}
	return nil
}

func (t *enrolTx) UseReferral(jti string, expires time.Time) error {
	_, err := t.exec(`INSERT INTO referrals_used (jti, expires_at) VALUES (?, ?)`, jti, expires.Unix())
	if constraint(err) != 0 {
		return enrol.ErrDuplicate
	}
	return err
}

// SavePolicy implements enrol.Tx.
func (t *enrolTx) SavePolicy(name, body, actor string, base int) (int, error) {
	var v int
	if err := t.queryRow(`SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions WHERE name = ?`, name).Scan(&v); err != nil {
		return 0, err
	}
	if base >= 0 && v-1 != base {
		return 0, enrol.ErrStale
	}
	_, err := t.exec(`INSERT INTO policy_versions (name, version, body, actor, created_at) VALUES (?, ?, ?, ?, ?)`,
		name, v, body, actor, t.now().Unix())
	return v, err
}

// CountEnrolments returns how many enrolments are in each state, from the
// counts the triggers of migration 0010 keep (console_dashboard.go).
func (db *DB) CountEnrolments(ctx context.Context) (map[enrol.State]int, error) {
	counts, err := db.enrolmentStateCounts(ctx)
	out := make(map[enrol.State]int, len(counts))
	for s, n := range counts {
		out[enrol.State(s)] = n
	}
	return out, err
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
