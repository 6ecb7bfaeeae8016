package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
)

var _ enrol.Store = (*DB)(nil)

// SavePolicy implements enrol.Store. Nodes saving the same policy take
// turns, by a transaction-level advisory lock on its name, so that each
// reads the version the one before it wrote.
func (db *DB) SavePolicy(ctx context.Context, name, body, actor string) (int, error) {
	var v int
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('mailca.policy:' || $1, 0))`, name); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions WHERE name = $1`, name).Scan(&v); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO policy_versions (name, version, body, actor, created_at) VALUES ($1, $2, $3, $4, $5)`,
			name, v, body, actor, db.now().Unix())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: saving policy: %w", err)
	}
	return v, nil
}

// Policy implements enrol.Store.
func (db *DB) Policy(ctx context.Context, name string) (string, int, error) {
	var body string
	var v int
	err := db.pool.QueryRow(ctx, `SELECT body, version FROM policy_versions WHERE name = $1 ORDER BY version DESC LIMIT 1`, name).Scan(&body, &v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, enrol.ErrNotFound
	}
	return body, v, err
}

// PolicyAt implements enrol.Store.
func (db *DB) PolicyAt(ctx context.Context, name string, version int) (string, error) {
	var body string
	err := db.pool.QueryRow(ctx, `SELECT body FROM policy_versions WHERE name = $1 AND version = $2`, name, version).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", enrol.ErrNotFound
	}
	return body, err
}

// PolicyNames implements enrol.Store.
func (db *DB) PolicyNames(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT name FROM policy_versions ORDER BY name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

const enrolmentColumns = `id, policy, policy_version, state, rev, channel, mailbox, mailbox_key, given_name, surname, fields,
	COALESCE(batch_id, 0), invited_by, terms_version, COALESCE(serial, ''), reason, created_at, updated_at,
	COALESCE(submitted_at, 0), COALESCE(decided_at, 0), COALESCE(issued_at, 0), COALESCE(expires_at, 0),
	COALESCE(renewal_of, '')`

func scanEnrolment(row pgx.Row) (*enrol.Enrolment, error) {
	var (
		e                                  enrol.Enrolment
		state, channel, fields             string
		created, updated, sub, dec, is, ex int64
	)
	if err := row.Scan(&e.ID, &e.Policy, &e.PolicyVersion, &state, &e.Rev, &channel, &e.Mailbox, &e.MailboxKey, &e.GivenName, &e.Surname, &fields,
		&e.BatchID, &e.InvitedBy, &e.TermsVersion, &e.Serial, &e.Reason, &created, &updated, &sub, &dec, &is, &ex, &e.RenewalOf); err != nil {
		return nil, err
	}
	e.State, e.Channel = enrol.State(state), enrol.Channel(channel)
	if fields != "{}" && fields != "" {
		if err := json.Unmarshal([]byte(fields), &e.Fields); err != nil {
			return nil, fmt.Errorf("postgres: enrolment %d fields: %w", e.ID, err)
		}
	}
	e.CreatedAt, e.UpdatedAt = unix(created), unix(updated)
	e.SubmittedAt, e.DecidedAt, e.IssuedAt, e.ExpiresAt = unix(sub), unix(dec), unix(is), unix(ex)
	return &e, nil
}

func collectEnrolments(rows pgx.Rows, err error) ([]*enrol.Enrolment, error) {
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer rows.Close()
	var out []*enrol.Enrolment
	for rows.Next() {
		e, err := scanEnrolment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Enrolment implements enrol.Store.
func (db *DB) Enrolment(ctx context.Context, id int64) (*enrol.Enrolment, error) {
	e, err := scanEnrolment(db.pool.QueryRow(ctx, `SELECT `+enrolmentColumns+` FROM enrolments WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return e, db.loadApprovers(ctx, e)
}

// Enrolment implements enrol.Tx.
func (t *enrolTx) Enrolment(id int64) (*enrol.Enrolment, error) {
	e, err := scanEnrolment(t.tx.QueryRow(t.ctx, `SELECT `+enrolmentColumns+` FROM enrolments WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if e.State != enrol.Submitted && e.State != enrol.Approved {
		return e, nil
	}
	rows, err := t.tx.Query(t.ctx, `SELECT approver FROM approvals WHERE enrolment_id = $1 ORDER BY at, approver`, e.ID)
	if err != nil {
		return nil, err
	}
	e.Approvers, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return e, err
}

// Policy implements enrol.Tx.
func (t *enrolTx) Policy(name string) (string, int, error) {
	var body string
	var v int
	err := t.tx.QueryRow(t.ctx, `SELECT body, version FROM policy_versions WHERE name = $1 ORDER BY version DESC LIMIT 1`, name).Scan(&body, &v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, enrol.ErrNotFound
	}
	return body, v, err
}

// PolicyAt implements enrol.Tx.
func (t *enrolTx) PolicyAt(name string, version int) (string, error) {
	var body string
	err := t.tx.QueryRow(t.ctx, `SELECT body FROM policy_versions WHERE name = $1 AND version = $2`, name, version).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
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
	rows, err := db.pool.Query(ctx, `SELECT approver FROM approvals WHERE enrolment_id = $1 ORDER BY at, approver`, e.ID)
	if err != nil {
		return err
	}
	e.Approvers, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return err
}

// Enrolments implements enrol.Store. Results are newest first; Filter.Before
// is a keyset cursor, so a page costs the same at row ten and row a million.
func (db *DB) Enrolments(ctx context.Context, f enrol.Filter) ([]*enrol.Enrolment, error) {
	q := `SELECT ` + enrolmentColumns + ` FROM enrolments WHERE true`
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.State != "" {
		q += ` AND state = ` + arg(string(f.State))
	}
	if f.Policy != "" {
		q += ` AND policy = ` + arg(f.Policy)
	}
	if f.Mailbox != "" {
		q += ` AND mailbox >= ` + arg(f.Mailbox) + ` AND mailbox < ` + arg(f.Mailbox+"\U0010FFFF")
	}
	if f.BatchID != 0 {
		q += ` AND batch_id = ` + arg(f.BatchID)
	}
	if f.Before > 0 {
		q += ` AND id < ` + arg(f.Before)
	}
	q += ` ORDER BY id DESC LIMIT ` + arg(limit(f.Limit))
	return collectEnrolments(db.pool.Query(ctx, q, args...))
}

// Link implements enrol.Store.
func (db *DB) Link(ctx context.Context, hash []byte) (*enrol.Link, error) {
	var l enrol.Link
	var purpose string
	var exp int64
	var used *int64
	err := db.pool.QueryRow(ctx, `SELECT hash, purpose, enrolment_id, expires_at, used_at FROM links WHERE hash = $1`, hash).
		Scan(&l.Hash, &purpose, &l.EnrolmentID, &exp, &used)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	l.Purpose, l.ExpiresAt, l.UsedAt = enrol.Purpose(purpose), unix(exp), unixPtr(used)
	return &l, nil
}

// Batch implements enrol.Store.
func (db *DB) Batch(ctx context.Context, id int64) (*enrol.Batch, error) {
	var b enrol.Batch
	var created, updated int64
	var done *int64
	err := db.pool.QueryRow(ctx, `SELECT id, policy, filename, actor, state, rows, invited, refused, created_at, done_at, updated_at, error FROM batches WHERE id = $1`, id).
		Scan(&b.ID, &b.Policy, &b.Filename, &b.Actor, &b.State, &b.Rows, &b.Invited, &b.Refused, &created, &done, &updated, &b.Error)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	b.CreatedAt, b.DoneAt, b.UpdatedAt = unix(created), unixPtr(done), unix(updated)
	return &b, nil
}

// InTx implements enrol.Store. The transaction is read committed, and is
// run again (fn with it) when PostgreSQL aborts it for a deadlock or a
// serialization failure.
func (db *DB) InTx(ctx context.Context, fn func(enrol.Tx) error) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		return fn(&enrolTx{ctx: ctx, tx: tx, now: db.now})
	})
}

// enrolTx implements enrol.Tx on one PostgreSQL transaction.
type enrolTx struct {
	ctx context.Context
	tx  pgx.Tx
	now func() time.Time

	// head caches the audit chain's last record within the transaction,
	// which holds the audit lock from the first read of it to the end.
	headSeq  int64
	headHash []byte
}

// LiveEnrolment implements enrol.Tx.
func (t *enrolTx) LiveEnrolment(policy, key string) (*enrol.Enrolment, error) {
	e, err := scanEnrolment(t.tx.QueryRow(t.ctx, `SELECT `+enrolmentColumns+` FROM enrolments
		WHERE policy = $1 AND mailbox_key = $2 AND state IN ('invited', 'submitted', 'approved', 'issued') AND renewal_of IS NULL`, policy, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	return e, err
}

// Transition implements enrol.Tx. Under read committed, a racing update
// of the same row makes this one wait, then re-check its WHERE against the
// row the other committed: the loser updates nothing and gets ErrStale.
func (t *enrolTx) Transition(id int64, from enrol.State, rev int, e *enrol.Enrolment) error {
	fields, err := json.Marshal(e.Fields)
	if err != nil {
		return err
	}
	if e.Fields == nil {
		fields = []byte("{}")
	}
	q := `UPDATE enrolments SET state = $1, rev = rev + 1, given_name = $2, surname = $3, fields = $4, terms_version = $5,
		serial = $6, reason = $7, updated_at = $8, submitted_at = $9, decided_at = $10, issued_at = $11, expires_at = $12,
		given_name_key = $16, surname_key = $17
		WHERE id = $13 AND state = $14 AND rev = $15`
	args := []any{string(e.State), e.GivenName, e.Surname, string(fields), e.TermsVersion, nullString(e.Serial), e.Reason, e.UpdatedAt.Unix(),
		nullUnix(e.SubmittedAt), nullUnix(e.DecidedAt), nullUnix(e.IssuedAt), nullUnix(e.ExpiresAt), id, string(from), rev,
		store.NameKey(e.GivenName), store.NameKey(e.Surname)}
	// Only a move into a live state from another can violate the one live
	// enrolment rule. A failed statement aborts a PostgreSQL transaction,
	// where SQLite's carries on; a savepoint keeps the caller's transaction
	// usable after ErrDuplicate, as it is with SQLite.
	exec := t.tx.Exec
	var sp pgx.Tx
	if e.State.Live() && !from.Live() {
		if sp, err = t.tx.Begin(t.ctx); err != nil {
			return fmt.Errorf("postgres: transition: %w", err)
		}
		exec = sp.Exec
	}
	tag, err := exec(t.ctx, q, args...)
	if sp != nil {
		if err != nil {
			sp.Rollback(t.ctx)
		} else if err = sp.Commit(t.ctx); err != nil {
			return fmt.Errorf("postgres: transition: %w", err)
		}
	}
	if uniqueViolation(err) != "" {
		return enrol.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("postgres: transition: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return enrol.ErrStale
	}
	return nil
}

func (t *enrolTx) AddApprover(id int64, approver string, at time.Time) (int, error) {
	if _, err := t.tx.Exec(t.ctx, `INSERT INTO approvals (enrolment_id, approver, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, id, approver, at.Unix()); err != nil {
		return 0, err
	}
	var n int
	err := t.tx.QueryRow(t.ctx, `SELECT COUNT(*) FROM approvals WHERE enrolment_id = $1`, id).Scan(&n)
	return n, err
}

func (t *enrolTx) UseLink(hash []byte, purpose enrol.Purpose, now time.Time) (*enrol.Link, error) {
	var l enrol.Link
	var p string
	var exp int64
	err := t.tx.QueryRow(t.ctx, `UPDATE links SET used_at = $1 WHERE hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1
		RETURNING hash, purpose, enrolment_id, expires_at`, now.Unix(), hash, string(purpose)).Scan(&l.Hash, &p, &l.EnrolmentID, &exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	l.Purpose, l.ExpiresAt, l.UsedAt = enrol.Purpose(p), unix(exp), now
	return &l, nil
}

func (t *enrolTx) ReleaseLink(hash []byte) error {
	_, err := t.tx.Exec(t.ctx, `UPDATE links SET used_at = NULL WHERE hash = $1 AND used_at IS NOT NULL
		AND enrolment_id IN (SELECT id FROM enrolments WHERE state = 'approved')`, hash)
	return err
}

func (t *enrolTx) RetireLinks(id int64, purpose enrol.Purpose, now time.Time) error {
	_, err := t.tx.Exec(t.ctx, `UPDATE links SET used_at = $1 WHERE enrolment_id = $2 AND purpose = $3 AND used_at IS NULL`, now.Unix(), id, string(purpose))
	return err
}

func (t *enrolTx) RecordValidation(v enrol.Validation) error {
	_, err := t.tx.Exec(t.ctx, `INSERT INTO validations (enrolment_id, mailbox, method, br_version, at) VALUES ($1, $2, $3, $4, $5)`,
		v.EnrolmentID, v.Mailbox, v.Method, v.BRVersion, v.At.Unix())
	return err
}

func (t *enrolTx) InsertBatch(b *enrol.Batch) error {
	return t.tx.QueryRow(t.ctx, `INSERT INTO batches (policy, filename, actor, state, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		b.Policy, b.Filename, b.Actor, b.State, b.CreatedAt.Unix()).Scan(&b.ID)
}

// UpdateBatch implements enrol.Tx. Only a batch still importing changes:
// one that FailStalledBatches marked failed meanwhile gives ErrStale.
func (t *enrolTx) UpdateBatch(b *enrol.Batch) error {
	tag, err := t.tx.Exec(t.ctx, `UPDATE batches SET state = $1, rows = $2, invited = $3, refused = $4, done_at = $5, updated_at = $6, error = $7 WHERE id = $8 AND state = 'importing'`,
		b.State, b.Rows, b.Invited, b.Refused, nullUnix(b.DoneAt), b.UpdatedAt.Unix(), b.Error, b.ID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return enrol.ErrStale
	}
	return nil
}

// UseReferral implements enrol.Tx. ON CONFLICT DO NOTHING, rather than a
// failed insert, leaves the transaction usable after ErrDuplicate.
func (t *enrolTx) UseReferral(jti string, expires time.Time) error {
	tag, err := t.tx.Exec(t.ctx, `INSERT INTO referrals_used (jti, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`, jti, expires.Unix())
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return enrol.ErrDuplicate
	}
	return nil
}

// SavePolicy implements enrol.Tx. The advisory lock is the one
// DB.SavePolicy takes, so two nodes never number the same version.
func (t *enrolTx) SavePolicy(name, body, actor string, base int) (int, error) {
	if _, err := t.tx.Exec(t.ctx, `SELECT pg_advisory_xact_lock(hashtextextended('mailca.policy:' || $1, 0))`, name); err != nil {
		return 0, err
	}
	var v int
	if err := t.tx.QueryRow(t.ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions WHERE name = $1`, name).Scan(&v); err != nil {
		return 0, err
	}
	if base >= 0 && v-1 != base {
		return 0, enrol.ErrStale
	}
	_, err := t.tx.Exec(t.ctx, `INSERT INTO policy_versions (name, version, body, actor, created_at) VALUES ($1, $2, $3, $4, $5)`,
		name, v, body, actor, t.now().Unix())
	return v, err
}

// CountEnrolments returns how many enrolments are in each state, from
// the counts the triggers of migration 0010 keep (enrolmentCounts).
func (db *DB) CountEnrolments(ctx context.Context) (map[enrol.State]int, error) {
	out := map[enrol.State]int{}
	err := db.enrolmentCounts(ctx, func(_, state string, n int) { out[enrol.State(state)] += n })
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (t *enrolTx) InsertEnrolment(e *enrol.Enrolment) error {
	stored, err := t.InsertEnrolments([]*enrol.Enrolment{e})
	if err != nil {
		return err
	}
	if !stored[0] {
		return enrol.ErrDuplicate
	}
	return nil
}

const enrolmentInsertCols = `policy, policy_version, state, channel, mailbox, mailbox_key, given_name, surname, fields,
	batch_id, invited_by, terms_version, created_at, updated_at, submitted_at, expires_at, renewal_of, surname_key, given_name_key`

// InsertEnrolments implements enrol.Tx. A row that would make a second
// live enrolment for its policy and mailbox is skipped (ON CONFLICT DO
// NOTHING, which covers the partial unique indexes too), and RETURNING
// tells which rows went in.
func (t *enrolTx) InsertEnrolments(es []*enrol.Enrolment) ([]bool, error) {
	stored := make([]bool, len(es))
	for start := 0; start < len(es); start += bulkRows {
		part := es[start:min(start+bulkRows, len(es))]
		args := make([]any, 0, len(part)*19)
		byKey := make(map[string]int, len(part))
		for i, e := range part {
			fields := []byte("{}")
			if len(e.Fields) > 0 {
				var err error
				if fields, err = json.Marshal(e.Fields); err != nil {
					return nil, err
				}
			}
			var batch any
			if e.BatchID != 0 {
				batch = e.BatchID
			}
			args = append(args, e.Policy, e.PolicyVersion, string(e.State), string(e.Channel), e.Mailbox, e.MailboxKey, e.GivenName, e.Surname, string(fields),
				batch, e.InvitedBy, e.TermsVersion, e.CreatedAt.Unix(), e.UpdatedAt.Unix(), nullUnix(e.SubmittedAt), nullUnix(e.ExpiresAt), nullString(e.RenewalOf),
				store.NameKey(e.Surname), store.NameKey(e.GivenName))
			byKey[e.Policy+"\x00"+e.MailboxKey] = start + i
		}
		if len(byKey) != len(part) {
			return nil, fmt.Errorf("postgres: one bulk insert holds the same mailbox twice")
		}
		rows, err := t.tx.Query(t.ctx, bulkInsert("enrolments", enrolmentInsertCols, len(part), " ON CONFLICT DO NOTHING RETURNING id, policy, mailbox_key"), args...)
		if err != nil {
			return nil, fmt.Errorf("postgres: inserting enrolments: %w", err)
		}
		for rows.Next() {
			var id int64
			var policy, key string
			if err := rows.Scan(&id, &policy, &key); err != nil {
				rows.Close()
				return nil, err
			}
			i := byKey[policy+"\x00"+key]
			es[i].ID, stored[i] = id, true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("postgres: inserting enrolments: %w", err)
		}
	}
	return stored, nil
}

func (t *enrolTx) InsertLink(l enrol.Link) error { return t.InsertLinks([]enrol.Link{l}) }

// InsertLinks implements enrol.Tx.
func (t *enrolTx) InsertLinks(ls []enrol.Link) error {
	for start := 0; start < len(ls); start += bulkRows {
		part := ls[start:min(start+bulkRows, len(ls))]
		args := make([]any, 0, len(part)*4)
		for _, l := range part {
			args = append(args, l.Hash, string(l.Purpose), l.EnrolmentID, l.ExpiresAt.Unix())
		}
		if _, err := t.tx.Exec(t.ctx, bulkInsert("links", "hash, purpose, enrolment_id, expires_at", len(part), ""), args...); err != nil {
			return fmt.Errorf("postgres: inserting links: %w", err)
		}
	}
	return nil
}

func (t *enrolTx) Enqueue(m enrol.Mail) error { return t.EnqueueAll([]enrol.Mail{m}) }

// EnqueueAll implements enrol.Tx.
func (t *enrolTx) EnqueueAll(ms []enrol.Mail) error {
	now := t.now().Unix()
	for start := 0; start < len(ms); start += bulkRows {
		part := ms[start:min(start+bulkRows, len(ms))]
		args := make([]any, 0, len(part)*9)
		for _, m := range part {
			data, err := json.Marshal(m.Data)
			if err != nil {
				return err
			}
			var enr any
			if m.EnrolmentID != 0 {
				enr = m.EnrolmentID
			}
			args = append(args, m.Template, m.TemplateSet, m.To, enr, string(data), m.MessageID, "pending", now, now)
		}
		q := bulkInsert("outbox", "template, template_set, recipient, enrolment_id, data, message_id, state, next_attempt_at, created_at", len(part), "")
		if _, err := t.tx.Exec(t.ctx, q, args...); err != nil {
			return fmt.Errorf("postgres: enqueueing mail: %w", err)
		}
	}
	return nil
}

func (t *enrolTx) Audit(e enrol.Event) error { return t.AuditAll([]enrol.Event{e}) }

// AuditAll implements enrol.Tx: it appends es to the hash chain in order.
// Several nodes append to one chain, so before it reads the chain's head
// the transaction takes an advisory lock that it holds until it ends:
// appenders take turns, as SQLite's single writer makes them.
func (t *enrolTx) AuditAll(es []enrol.Event) error {
	if t.headHash == nil {
		if _, err := t.tx.Exec(t.ctx, `SELECT pg_advisory_xact_lock($1)`, auditLock); err != nil {
			return fmt.Errorf("postgres: locking the audit chain: %w", err)
		}
		err := t.tx.QueryRow(t.ctx, `SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`).Scan(&t.headSeq, &t.headHash)
		if errors.Is(err, pgx.ErrNoRows) {
			t.headSeq, t.headHash = 0, audit.Genesis
		} else if err != nil {
			return err
		}
	}
	now := t.now()
	for start := 0; start < len(es); start += bulkRows {
		part := es[start:min(start+bulkRows, len(es))]
		args := make([]any, 0, len(part)*8)
		seq, prev := t.headSeq, t.headHash
		for _, e := range part {
			r := audit.Record{Seq: seq + 1, At: now, Actor: e.Actor, Action: e.Action, Object: e.Object, Detail: audit.DetailFrom(t.ctx, e.Detail), Prev: prev}
			r.Hash = audit.Hash(prev, r)
			args = append(args, r.Seq, r.At.UnixNano(), r.Actor, r.Action, r.Object, r.Detail, r.Prev, r.Hash)
			seq, prev = r.Seq, r.Hash
		}
		if _, err := t.tx.Exec(t.ctx, bulkInsert("audit_events", "seq, at, actor, action, object, detail, prev_hash, hash", len(part), ""), args...); err != nil {
			return fmt.Errorf("postgres: appending audit events: %w", err)
		}
		t.headSeq, t.headHash = seq, prev
	}
	return nil
}
