package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/webhook"
)

var _ webhook.Store = (*DB)(nil)

// InsertWebhook implements webhook.Store.
func (db *DB) InsertWebhook(ctx context.Context, e *webhook.Endpoint, ev enrol.Event) error {
	return db.stmtTx(ctx, func(ts *txStmts) error {
		// The cursor starts at the end of the chain: only events from now on.
		if err := ts.queryRow(`SELECT COALESCE(MAX(seq), 0) FROM audit_events`).Scan(&e.Cursor); err != nil {
			return fmt.Errorf("sqlite: adding webhook: %w", err)
		}
		err := ts.queryRow(`INSERT INTO webhook_endpoints (policy, url, secret, cursor, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			e.Policy, e.URL, []byte(e.Secret), e.Cursor, e.CreatedBy, e.CreatedAt.Unix()).Scan(&e.ID)
		if err != nil {
			return fmt.Errorf("sqlite: adding webhook: %w", err)
		}
		ev.Object = "webhook:" + strconv.FormatInt(e.ID, 10)
		return (&enrolTx{txStmts: ts, now: db.now}).Audit(ev)
	})
}

// Webhooks implements webhook.Store.
func (db *DB) Webhooks(ctx context.Context) ([]webhook.Endpoint, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, policy, url, secret, cursor, created_by, created_at FROM webhook_endpoints WHERE removed_at = 0 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: webhooks: %w", err)
	}
	defer rows.Close()
	var out []webhook.Endpoint
	for rows.Next() {
		var (
			e       webhook.Endpoint
			secret  []byte
			created int64
		)
		if err := rows.Scan(&e.ID, &e.Policy, &e.URL, &secret, &e.Cursor, &e.CreatedBy, &created); err != nil {
			return nil, fmt.Errorf("sqlite: webhooks: %w", err)
		}
		e.Secret, e.CreatedAt = string(secret), unix(created)
		out = append(out, e)
	}
	return out, rows.Err()
}

// RemoveWebhook implements webhook.Store.
func (db *DB) RemoveWebhook(ctx context.Context, id int64, at time.Time, ev enrol.Event) error {
	return db.stmtTx(ctx, func(ts *txStmts) error {
		res, err := ts.exec(`UPDATE webhook_endpoints SET removed_at = ? WHERE id = ? AND removed_at = 0`, at.Unix(), id)
		if err != nil {
			return fmt.Errorf("sqlite: removing webhook: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return webhook.ErrNotFound
		}
		return (&enrolTx{txStmts: ts, now: db.now}).Audit(ev)
	})
}

// WebhookEvents implements webhook.Store. It reads in one transaction, so
// the end of the chain and the events come from the same snapshot: the
// single writer gives sequence numbers in commit order, so no event below
// the end can appear later.
func (db *DB) WebhookEvents(ctx context.Context, after int64, limit int) ([]webhook.Event, int64, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: webhook events: %w", err)
	}
	defer tx.Rollback()
	var head int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit_events`).Scan(&head); err != nil {
		return nil, 0, fmt.Errorf("sqlite: webhook events: %w", err)
	}
	actions := make([]any, 0, len(webhook.Actions))
	for a := range webhook.Actions {
		actions = append(actions, a)
	}
	// The enrolment of an event: "enrolment:<id>" for transitions and
	// issuance, "certificate:<serial>" for a revocation.
	q := `SELECT seq, at, action, actor, eid FROM (
			SELECT a.seq, a.at, a.action, a.actor,
				CASE WHEN a.object LIKE 'enrolment:%' THEN CAST(substr(a.object, 11) AS INTEGER)
				     ELSE (SELECT e.id FROM enrolments e WHERE e.serial = substr(a.object, 13) AND substr(a.object, 1, 12) = 'certificate:') END AS eid
			FROM audit_events a
			WHERE a.seq > ? AND a.seq <= ? AND a.action IN (?` + strings.Repeat(`, ?`, len(actions)-1) + `))
		WHERE eid IS NOT NULL ORDER BY seq LIMIT ?`
	args := append(append([]any{after, head}, actions...), limit)
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: webhook events: %w", err)
	}
	var (
		out []webhook.Event
		ids []int64
	)
	for rows.Next() {
		var (
			ev webhook.Event
			at int64
			id int64
		)
		if err := rows.Scan(&ev.Seq, &at, &ev.Action, &ev.Actor, &id); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("sqlite: webhook events: %w", err)
		}
		ev.At = time.Unix(0, at).UTC()
		out, ids = append(out, ev), append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: webhook events: %w", err)
	}
	tx.Rollback()
	for i := range out {
		if out[i].Enrolment, err = db.Enrolment(ctx, ids[i]); err != nil {
			return nil, 0, err
		}
	}
	if len(out) == limit {
		head = out[len(out)-1].Seq
	}
	return out, head, nil
}

// QueueDeliveries implements webhook.Store.
func (db *DB) QueueDeliveries(ctx context.Context, id, from, to int64, ds []webhook.Delivery, now time.Time) error {
	return db.stmtTx(ctx, func(ts *txStmts) error {
		res, err := ts.exec(`UPDATE webhook_endpoints SET cursor = ? WHERE id = ? AND cursor = ? AND removed_at = 0`, to, id, from)
		if err != nil {
			return fmt.Errorf("sqlite: queueing webhooks: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return webhook.ErrStale
		}
		for _, d := range ds {
			if _, err := ts.exec(`INSERT INTO webhook_deliveries (endpoint_id, seq, event, body, state, next_attempt_at, created_at)
				VALUES (?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (endpoint_id, seq) DO NOTHING`,
				id, d.Seq, d.Type, string(d.Body), now.Unix(), now.Unix()); err != nil {
				return fmt.Errorf("sqlite: queueing webhooks: %w", err)
			}
		}
		return nil
	})
}

// ClaimWebhookDeliveries implements webhook.Store.
func (db *DB) ClaimWebhookDeliveries(ctx context.Context, now time.Time, n int, lease time.Duration) ([]webhook.Delivery, error) {
	// Most polls find nothing due; a read says so without taking the
	// writer's lock.
	var due int
	err := db.readRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ? AND lease_until <= ? LIMIT 1)`,
		now.Unix(), now.Unix()).Scan(&due)
	if err != nil || due == 0 {
		return nil, err
	}
	var out []webhook.Delivery
	err = db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE webhook_deliveries SET lease_until = ?
			WHERE id IN (SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
				WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND d.lease_until <= ? AND e.removed_at = 0
				ORDER BY d.next_attempt_at, d.id LIMIT ?)
			RETURNING id, endpoint_id, seq, event, body, attempts`, now.Add(lease).Unix(), now.Unix(), now.Unix(), n)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				d    webhook.Delivery
				body string
			)
			if err := rows.Scan(&d.ID, &d.EndpointID, &d.Seq, &d.Type, &body, &d.Attempts); err != nil {
				return err
			}
			d.Body = []byte(body)
			out = append(out, d)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range out {
			var secret []byte
			if err := tx.QueryRowContext(ctx, `SELECT url, secret FROM webhook_endpoints WHERE id = ?`, out[i].EndpointID).Scan(&out[i].URL, &secret); err != nil {
				return err
			}
			out[i].Secret = string(secret)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claiming webhook deliveries: %w", err)
	}
	return out, nil
}

// MarkWebhookDelivered implements webhook.Store.
func (db *DB) MarkWebhookDelivered(ctx context.Context, id int64, now time.Time) error {
	return db.markDelivery(ctx, `UPDATE webhook_deliveries SET state = 'delivered', delivered_at = ?, attempts = attempts + 1, lease_until = 0, last_error = ''
		WHERE id = ? AND state = 'pending'`, now.Unix(), id)
}

// MarkWebhookRetry implements webhook.Store.
func (db *DB) MarkWebhookRetry(ctx context.Context, id int64, next time.Time, reason string) error {
	return db.markDelivery(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?, lease_until = 0, last_error = ?
		WHERE id = ? AND state = 'pending'`, next.Unix(), reason, id)
}

// MarkWebhookFailed implements webhook.Store.
func (db *DB) MarkWebhookFailed(ctx context.Context, id int64, reason string) error {
	return db.markDelivery(ctx, `UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1, lease_until = 0, last_error = ?
		WHERE id = ? AND state = 'pending'`, reason, id)
}

func (db *DB) markDelivery(ctx context.Context, q string, args ...any) error {
	if _, err := db.write.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("sqlite: webhook delivery: %w", err)
	}
	return nil
}

// WebhookDelivery is a delivery's record, for the command line.
type WebhookDelivery = store.WebhookDelivery

// WebhookDeliveries returns the newest deliveries, at most limit.
func (db *DB) WebhookDeliveries(ctx context.Context, limit int) ([]WebhookDelivery, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, endpoint_id, seq, event, state, attempts, last_error FROM webhook_deliveries ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: webhook deliveries: %w", err)
	}
	defer rows.Close()
	var out []WebhookDelivery
	for rows.Next() {
		var d WebhookDelivery
		if err := rows.Scan(&d.ID, &d.EndpointID, &d.Seq, &d.Event, &d.State, &d.Attempts, &d.LastError); err != nil {
			return nil, fmt.Errorf("sqlite: webhook deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
