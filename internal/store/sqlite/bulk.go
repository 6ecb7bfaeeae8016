package sqlite

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
)

// Rows written at once go in one multi-row INSERT: SQLite runs one
// statement for many rows several times faster than one statement per row,
// which is most of the cost of importing a large invitation batch.

// bulkInsert returns "INSERT INTO table (cols) VALUES (?,..),(?,..)..." for
// n rows, with suffix appended.
func bulkInsert(table, cols string, n int, suffix string) string {
	ncols := strings.Count(cols, ",") + 1
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", ncols), ",") + ")"
	var b strings.Builder
	b.Grow(len(table) + len(cols) + n*(len(row)+1) + len(suffix) + 32)
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, cols)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	b.WriteString(suffix)
	return b.String()
}

// bulkRows is the most rows one statement takes: 17 columns × 1,000 rows
// stays well below SQLite's limit of 32,766 bound parameters.
const bulkRows = 1000

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
// NOTHING), and RETURNING tells which rows went in.
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
			args = append(args, e.Policy, e.PolicyVersion, e.State, e.Channel, e.Mailbox, e.MailboxKey, e.GivenName, e.Surname, string(fields),
				batch, e.InvitedBy, e.TermsVersion, e.CreatedAt.Unix(), e.UpdatedAt.Unix(), nullUnix(e.SubmittedAt), nullUnix(e.ExpiresAt), nullString(e.RenewalOf),
				store.NameKey(e.Surname), store.NameKey(e.GivenName))
			byKey[e.Policy+"\x00"+e.MailboxKey] = start + i
		}
		if len(byKey) != len(part) {
			return nil, fmt.Errorf("sqlite: one bulk insert holds the same mailbox twice")
		}
		s, err := t.stmt(bulkInsert("enrolments", enrolmentInsertCols, len(part), " ON CONFLICT DO NOTHING RETURNING id, policy, mailbox_key"))
		if err != nil {
			return nil, err
		}
		rows, err := s.QueryContext(t.ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: inserting enrolments: %w", err)
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
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
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
			args = append(args, l.Hash, l.Purpose, l.EnrolmentID, l.ExpiresAt.Unix())
		}
		if _, err := t.exec(bulkInsert("links", "hash, purpose, enrolment_id, expires_at", len(part), ""), args...); err != nil {
			return fmt.Errorf("sqlite: inserting links: %w", err)
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
		if _, err := t.exec(q, args...); err != nil {
			return fmt.Errorf("sqlite: enqueueing mail: %w", err)
		}
	}
	return nil
}

func (t *enrolTx) Audit(e enrol.Event) error { return t.AuditAll([]enrol.Event{e}) }

// AuditAll implements enrol.Tx: it appends es to the hash chain in order.
// The single writer connection serialises transactions, so reading the
// head and appending cannot interleave with another writer.
func (t *enrolTx) AuditAll(es []enrol.Event) error {
	if t.headHash == nil {
		err := t.queryRow(`SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`).Scan(&t.headSeq, &t.headHash)
		if isNoRows(err) {
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
		if _, err := t.exec(bulkInsert("audit_events", "seq, at, actor, action, object, detail, prev_hash, hash", len(part), ""), args...); err != nil {
			return fmt.Errorf("sqlite: appending audit events: %w", err)
		}
		t.headSeq, t.headHash = seq, prev
	}
	return nil
}
