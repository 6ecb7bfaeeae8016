package postgres

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/webhook"
)

var _ webhook.Store = (*DB)(nil)

// InsertWebhook implements webhook.Store. The cursor is read under the
// audit lock, which the event appended with it takes anyway: no event can
// slip in between the end of the chain and the cursor.
func (db *DB) InsertWebhook(ctx context.Context, e *webhook.Endpoint, ev enrol.Event) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, auditLock); err != nil {
			return fmt.Errorf("postgres: adding webhook: %w", err)
		}
		// The cursor starts at the end of the chain: only events from now on.
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit_events`).Scan(&e.Cursor); err != nil {
			return fmt.Errorf("postgres: adding webhook: %w", err)
		}
		err := tx.QueryRow(ctx, `INSERT INTO webhook_endpoints (policy, url, secret, cursor, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			e.Policy, e.URL, []byte(e.Secret), e.Cursor, e.CreatedBy, e.CreatedAt.Unix()).Scan(&e.ID)
		if err != nil {
			return fmt.Errorf("postgres: adding webhook: %w", err)
		}
		ev.Object = "webhook:" + strconv.FormatInt(e.ID, 10)
		return (&enrolTx{ctx: ctx, tx: tx, now: db.now}).Audit(ev)
	})
}

// Webhooks implements webhook.Store.
func (db *DB) Webhooks(ctx context.Context) ([]webhook.Endpoint, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, policy, url, secret, cursor, created_by, created_at FROM webhook_endpoints WHERE removed_at = 0 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: webhooks: %w", err)
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
			return nil, fmt.Errorf("postgres: webhooks: %w", err)
		}
		e.Secret, e.CreatedAt = string(secret), unix(created)
		out = append(out, e)
	}
	return out, rows.Err()
}

// RemoveWebhook implements webhook.Store.
func (db *DB) RemoveWebhook(ctx context.Context, id int64, at time.Time, ev enrol.Event) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET removed_at = $1 WHERE id = $2 AND removed_at = 0`, at.Unix(), id)
		if err != nil {
			return fmt.Errorf("postgres: removing webhook: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return webhook.ErrNotFound
		}
		return (&enrolTx{ctx: ctx, tx: tx, now: db.now}).Audit(ev)
	})
}

// WebhookEvents implements webhook.Store. It reads in one repeatable-read
// transaction, so the end of the chain and the events come from one
// snapshot; appenders take sequence numbers under the audit lock, which
// they hold until they commit, so no event below the end can appear
// later.
func (db *DB) WebhookEvents(ctx context.Context, after int64, n int) ([]webhook.Event, int64, error) {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: webhook events: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var head int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit_events`).Scan(&head); err != nil {
		return nil, 0, fmt.Errorf("postgres: webhook events: %w", err)
	}
	actions := make([]string, 0, len(webhook.Actions))
	for a := range webhook.Actions {
		actions = append(actions, a)
	}
	sort.Strings(actions)
	// The enrolment of an event: "enrolment:<id>" for transitions and
	// issuance, "certificate:<serial>" for a revocation.
	rows, err := tx.Query(ctx, `SELECT seq, at, action, actor, eid FROM (
			SELECT a.seq, a.at, a.action, a.actor,
				CASE WHEN a.object ~ '^enrolment:[0-9]{1,18}$' THEN substr(a.object, 11)::bigint
				     WHEN a.object LIKE 'certificate:%' THEN (SELECT e.id FROM enrolments e WHERE e.serial = substr(a.object, 13)) END AS eid
			FROM audit_events a
			WHERE a.seq > $1 AND a.seq <= $2 AND a.action = ANY($3)) x
		WHERE eid IS NOT NULL ORDER BY seq LIMIT $4`, after, head, actions, limit(n))
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: webhook events: %w", err)
	}
	var (
		out []webhook.Event
		ids []int64
	)
	for rows.Next() {
		var (
			ev     webhook.Event
			at, id int64
		)
		if err := rows.Scan(&ev.Seq, &at, &ev.Action, &ev.Actor, &id); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("postgres: webhook events: %w", err)
		}
		ev.At = time.Unix(0, at).UTC()
		out, ids = append(out, ev), append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("postgres: webhook events: %w", err)
	}
	tx.Rollback(ctx)
	for i := range out {
		if out[i].Enrolment, err = db.Enrolment(ctx, ids[i]); err != nil {
			return nil, 0, err
		}
	}
	if len(out) == n {
		head = out[len(out)-1].Seq
	}
	return out, head, nil
}

// QueueDeliveries implements webhook.Store.
func (db *DB) QueueDeliveries(ctx context.Context, id, from, to int64, ds []webhook.Delivery, now time.Time) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET cursor = $1 WHERE id = $2 AND cursor = $3 AND removed_at = 0`, to, id, from)
		if err != nil {
			return fmt.Errorf("postgres: queueing webhooks: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return webhook.ErrStale
		}
		for _, d := range ds {
			if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (endpoint_id, seq, event, body, state, next_attempt_at, created_at)
				VALUES ($1, $2, $3, $4, 'pending', $5, $5) ON CONFLICT (endpoint_id, seq) DO NOTHING`,
				id, d.Seq, d.Type, string(d.Body), now.Unix()); err != nil {
				return fmt.Errorf("postgres: queueing webhooks: %w", err)
			}
		}
		return nil
	})
}

// ClaimWebhookDeliveries implements webhook.Store, with FOR UPDATE SKIP
// LOCKED as ClaimDue.
func (db *DB) ClaimWebhookDeliveries(ctx context.Context, now time.Time, n int, lease time.Duration) ([]webhook.Delivery, error) {
	var out []webhook.Delivery
	err := db.tx(ctx, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, `UPDATE webhook_deliveries d SET lease_until = $1
			FROM webhook_endpoints e
			WHERE e.id = d.endpoint_id AND d.id IN (SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
				WHERE d.state = 'pending' AND d.next_attempt_at <= $2 AND d.lease_until <= $2 AND e.removed_at = 0
				ORDER BY d.next_attempt_at, d.id LIMIT $3 FOR UPDATE OF d SKIP LOCKED)
			RETURNING d.id, d.endpoint_id, d.seq, d.event, d.body, d.attempts, e.url, e.secret`, now.Add(lease).Unix(), now.Unix(), limit(n))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				d      webhook.Delivery
				body   string
				secret []byte
			)
			if err := rows.Scan(&d.ID, &d.EndpointID, &d.Seq, &d.Type, &body, &d.Attempts, &d.URL, &secret); err != nil {
				return err
			}
			d.Body, d.Secret = []byte(body), string(secret)
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claiming webhook deliveries: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// MarkWebhookDelivered implements webhook.Store.
func (db *DB) MarkWebhookDelivered(ctx context.Context, id int64, now time.Time) error {
	return db.markDelivery(ctx, `UPDATE webhook_deliveries SET state = 'delivered', delivered_at = $1, attempts = attempts + 1, lease_until = 0, last_error = ''
		WHERE id = $2 AND state = 'pending'`, now.Unix(), id)
}

// MarkWebhookRetry implements webhook.Store.
func (db *DB) MarkWebhookRetry(ctx context.Context, id int64, next time.Time, reason string) error {
	return db.markDelivery(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $1, lease_until = 0, last_error = $2
		WHERE id = $3 AND state = 'pending'`, next.Unix(), reason, id)
}

// MarkWebhookFailed implements webhook.Store.
func (db *DB) MarkWebhookFailed(ctx context.Context, id int64, reason string) error {
	return db.markDelivery(ctx, `UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1, lease_until = 0, last_error = $1
		WHERE id = $2 AND state = 'pending'`, reason, id)
}

func (db *DB) markDelivery(ctx context.Context, q string, args ...any) error {
	if _, err := db.pool.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("postgres: webhook delivery: %w", err)
	}
	return nil
}

// WebhookDeliveries returns the newest deliveries, at most limit.
func (db *DB) WebhookDeliveries(ctx context.Context, n int) ([]store.WebhookDelivery, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, endpoint_id, seq, event, state, attempts, last_error FROM webhook_deliveries ORDER BY id DESC LIMIT $1`, limit(n))
	if err != nil {
		return nil, fmt.Errorf("postgres: webhook deliveries: %w", err)
	}
	defer rows.Close()
	var out []store.WebhookDelivery
	for rows.Next() {
		var d store.WebhookDelivery
		if err := rows.Scan(&d.ID, &d.EndpointID, &d.Seq, &d.Event, &d.State, &d.Attempts, &d.LastError); err != nil {
			return nil, fmt.Errorf("postgres: webhook deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
