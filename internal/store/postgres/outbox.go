package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mailca/mailca/internal/outbox"
	"github.com/mailca/mailca/internal/store"
)

var _ outbox.Store = (*DB)(nil)

const messageColumns = `id, template, template_set, recipient, COALESCE(enrolment_id, 0), data, message_id, state, attempts,
	last_error, created_at, next_attempt_at, COALESCE(sent_at, 0)`

func scanMessage(row pgx.Row) (outbox.Message, error) {
	var (
		m                   outbox.Message
		data                *string
		created, next, sent int64
	)
	if err := row.Scan(&m.ID, &m.Template, &m.TemplateSet, &m.To, &m.EnrolmentID, &data, &m.MessageID, &m.State, &m.Attempts,
		&m.LastError, &created, &next, &sent); err != nil {
		return m, err
	}
	if data != nil {
		if err := json.Unmarshal([]byte(*data), &m.Data); err != nil {
			return m, fmt.Errorf("postgres: message %d data: %w", m.ID, err)
		}
	}
	m.CreatedAt, m.NextAttempt, m.SentAt = unix(created), unix(next), unix(sent)
	return m, nil
}

func collectMessages(rows pgx.Rows, err error) ([]outbox.Message, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []outbox.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// ClaimDue implements outbox.Store. FOR UPDATE SKIP LOCKED lets workers on
// several nodes claim at the same moment without waiting for each other
// or taking the same message.
func (db *DB) ClaimDue(ctx context.Context, now time.Time, n int, lease time.Duration) ([]outbox.Message, error) {
	var out []outbox.Message
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = collectMessages(tx.Query(ctx, `UPDATE outbox SET lease_until = $1
			WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $2 AND lease_until <= $2
				ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
			RETURNING `+messageColumns, now.Add(lease).Unix(), now.Unix(), limit(n)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claiming mail: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].NextAttempt.Equal(out[j].NextAttempt) {
			return out[i].NextAttempt.Before(out[j].NextAttempt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// MarkSent implements outbox.Store.
func (db *DB) MarkSent(ctx context.Context, id int64, now time.Time) error {
	return expectMessage(db.pool.Exec(ctx,
		`UPDATE outbox SET state = 'sent', data = NULL, sent_at = $1, attempts = attempts + 1, lease_until = 0, last_error = '' WHERE id = $2 AND state = 'pending'`, now.Unix(), id))
}

// MarkRetry implements outbox.Store.
func (db *DB) MarkRetry(ctx context.Context, id int64, next time.Time, reason string) error {
	return expectMessage(db.pool.Exec(ctx,
		`UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, lease_until = 0, last_error = $2 WHERE id = $3 AND state = 'pending'`, next.Unix(), reason, id))
}

// MarkFailed implements outbox.Store.
func (db *DB) MarkFailed(ctx context.Context, id int64, reason string) error {
	return expectMessage(db.pool.Exec(ctx,
		`UPDATE outbox SET state = 'failed', data = NULL, attempts = attempts + 1, lease_until = 0, last_error = $1 WHERE id = $2 AND state = 'pending'`, reason, id))
}

func expectMessage(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return store.ErrNoMessage
	}
	return nil
}

// Messages implements outbox.Store.
func (db *DB) Messages(ctx context.Context, f outbox.Filter) ([]outbox.Message, error) {
	q := `SELECT ` + messageColumns + ` FROM outbox WHERE true`
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.State != "" {
		q += ` AND state = ` + arg(f.State)
	}
	if f.To != "" {
		q += ` AND recipient = ` + arg(f.To)
	}
	if f.Before > 0 {
		q += ` AND id < ` + arg(f.Before)
	}
	q += ` ORDER BY id DESC LIMIT ` + arg(store.PageLimit(f.Limit))
	return collectMessages(db.pool.Query(ctx, q, args...))
}

// Message implements outbox.Store.
func (db *DB) Message(ctx context.Context, id int64) (*outbox.Message, error) {
	m, err := scanMessage(db.pool.QueryRow(ctx, `SELECT `+messageColumns+` FROM outbox WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNoMessage
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
