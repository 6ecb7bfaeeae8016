package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store"
)

var _ outbox.Store = (*DB)(nil)

// ErrNoMessage is returned for an outbox message that does not exist; it
// is store.ErrNoMessage.
var ErrNoMessage = store.ErrNoMessage

const messageColumns = `id, template, template_set, recipient, COALESCE(enrolment_id, 0), data, message_id, state, attempts,
	last_error, created_at, next_attempt_at, COALESCE(sent_at, 0)`

func scanMessage(scan func(...any) error) (outbox.Message, error) {
	var (
		m                   outbox.Message
		data                sql.NullString
		created, next, sent int64
	)
	if err := scan(&m.ID, &m.Template, &m.TemplateSet, &m.To, &m.EnrolmentID, &data, &m.MessageID, &m.State, &m.Attempts,
		&m.LastError, &created, &next, &sent); err != nil {
		return m, err
	}
	if data.Valid {
		if err := json.Unmarshal([]byte(data.String), &m.Data); err != nil {
			return m, fmt.Errorf("sqlite: message %d data: %w", m.ID, err)
		}
	}
	m.CreatedAt, m.NextAttempt, m.SentAt = unix(created), unix(next), unix(sent)
	return m, nil
}

// ClaimDue implements outbox.Store.
func (db *DB) ClaimDue(ctx context.Context, now time.Time, n int, lease time.Duration) ([]outbox.Message, error) {
	var out []outbox.Message
	err := db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE outbox SET lease_until = ?
			WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? AND lease_until <= ? ORDER BY next_attempt_at, id LIMIT ?)
			RETURNING `+messageColumns, now.Add(lease).Unix(), now.Unix(), now.Unix(), n)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMessage(rows.Scan)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	return out, err
}

// MarkSent implements outbox.Store.
func (db *DB) MarkSent(ctx context.Context, id int64, now time.Time) error {
	return db.expectMessage(db.write.ExecContext(ctx,
		`UPDATE outbox SET state = 'sent', data = NULL, sent_at = ?, attempts = attempts + 1, lease_until = 0, last_error = '' WHERE id = ? AND state = 'pending'`, now.Unix(), id))
}

// MarkRetry implements outbox.Store.
func (db *DB) MarkRetry(ctx context.Context, id int64, next time.Time, reason string) error {
	return db.expectMessage(db.write.ExecContext(ctx,
		`UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, lease_until = 0, last_error = ? WHERE id = ? AND state = 'pending'`, next.Unix(), reason, id))
}

// MarkFailed implements outbox.Store.
func (db *DB) MarkFailed(ctx context.Context, id int64, reason string) error {
	return db.expectMessage(db.write.ExecContext(ctx,
		`UPDATE outbox SET state = 'failed', data = NULL, attempts = attempts + 1, lease_until = 0, last_error = ? WHERE id = ? AND state = 'pending'`, reason, id))
}

func (db *DB) expectMessage(res sql.Result, err error) error {
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrNoMessage
	}
	return nil
}

// Messages implements outbox.Store.
func (db *DB) Messages(ctx context.Context, f outbox.Filter) ([]outbox.Message, error) {
	q := `SELECT ` + messageColumns + ` FROM outbox WHERE 1=1`
	var args []any
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, f.State)
	}
	if f.To != "" {
		q += ` AND recipient = ?`
		args = append(args, f.To)
	}
	if f.Before > 0 {
		q += ` AND id < ?`
		args = append(args, f.Before)
	}
	// No limit means a page of 100; more than 1,000 means 1,000, not a
	// silent 100.
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []outbox.Message
	for rows.Next() {
		m, err := scanMessage(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Message implements outbox.Store.
func (db *DB) Message(ctx context.Context, id int64) (*outbox.Message, error) {
	m, err := scanMessage(db.read.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM outbox WHERE id = ?`, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoMessage
	}
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// Counts implements outbox.Store.
func (db *DB) Counts(ctx context.Context) (map[string]int, error) {
	return db.countByState(ctx, "outbox")
}
