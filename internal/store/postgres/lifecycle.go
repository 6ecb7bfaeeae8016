package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/schedule"
)

var (
	_ enrol.LifecycleStore = (*DB)(nil)
	_ enrol.LifecycleTx    = (*enrolTx)(nil)
	_ schedule.Store       = (*DB)(nil)
)

// ClaimJob implements schedule.Store. The row is locked with FOR UPDATE
// SKIP LOCKED, so a node never waits behind another's claim: it finds the
// row locked, or its lease in force, and reports false.
func (db *DB) ClaimJob(ctx context.Context, name, holder string, now time.Time, lease time.Duration) (bool, error) {
	claimed := false
	err := db.tx(ctx, func(tx pgx.Tx) error {
		claimed = false
		if _, err := tx.Exec(ctx, `INSERT INTO jobs (name) VALUES ($1) ON CONFLICT DO NOTHING`, name); err != nil {
			return err
		}
		var got string
		err := tx.QueryRow(ctx, `UPDATE jobs SET holder = $1, lease_until = $2
			WHERE name = (SELECT name FROM jobs WHERE name = $3 AND lease_until < $4 AND next_run <= $4 FOR UPDATE SKIP LOCKED)
			RETURNING name`, holder, now.Add(lease).Unix(), name, now.Unix()).Scan(&got)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		claimed = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: claiming job %s: %w", name, err)
	}
	return claimed, nil
}

// FinishJob implements schedule.Store.
func (db *DB) FinishJob(ctx context.Context, name, holder string, now, next time.Time, ok bool) error {
	q := `UPDATE jobs SET holder = '', lease_until = 0, last_run = $1, next_run = $2 WHERE name = $3 AND holder = $4`
	args := []any{now.Unix(), next.Unix(), name, holder}
	if !ok {
		q = `UPDATE jobs SET holder = '', lease_until = 0, next_run = $1 WHERE name = $2 AND holder = $3`
		args = []any{next.Unix(), name, holder}
	}
	if _, err := db.pool.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("postgres: finishing job %s: %w", name, err)
	}
	return nil
}

// Jobs implements schedule.Store.
func (db *DB) Jobs(ctx context.Context) ([]schedule.JobState, error) {
	rows, err := db.pool.Query(ctx, `SELECT name, holder, lease_until, last_run, next_run FROM jobs ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []schedule.JobState
	for rows.Next() {
		var j schedule.JobState
		var lease, last, next int64
		if err := rows.Scan(&j.Name, &j.Holder, &lease, &last, &next); err != nil {
			return nil, err
		}
		j.LeaseUntil, j.LastRun, j.NextRun = unix(lease), unix(last), unix(next)
		out = append(out, j)
	}
	return out, rows.Err()
}

// LapsedInvitations implements enrol.LifecycleStore.
func (db *DB) LapsedInvitations(ctx context.Context, now time.Time, n int) ([]*enrol.Enrolment, error) {
	return collectEnrolments(db.pool.Query(ctx, `SELECT `+enrolmentColumns+` FROM enrolments
		WHERE state = 'invited' AND expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2`, now.Unix(), limit(n)))
}

// LapsedCertificates implements enrol.LifecycleStore.
func (db *DB) LapsedCertificates(ctx context.Context, now time.Time, n int) ([]*enrol.Enrolment, error) {
	return collectEnrolments(db.pool.Query(ctx, `SELECT `+enrolmentColumns+` FROM enrolments WHERE id IN (
		SELECT e.id FROM enrolments e JOIN certificates c ON c.serial = e.serial
		WHERE e.state = 'issued' AND c.state = 'issued' AND c.not_after <= $1 ORDER BY c.not_after, e.id LIMIT $2) ORDER BY id`, now.Unix(), limit(n)))
}

// ExpiringCertificates implements enrol.LifecycleStore.
func (db *DB) ExpiringCertificates(ctx context.Context, now, until time.Time) ([]enrol.Expiring, error) {
	rows, err := db.pool.Query(ctx, `SELECT c.serial, c.mailbox, c.profile, c.not_before, c.not_after, COALESCE(e.id, 0),
			COALESCE((SELECT MIN(days) FROM reminders_sent s WHERE s.serial = c.serial), 0)
		FROM certificates c LEFT JOIN enrolments e ON e.serial = c.serial
		WHERE c.state = 'issued' AND c.revoked_at IS NULL AND c.not_after > $1 AND c.not_after <= $2
			AND (e.id IS NULL OR e.state = 'issued')
			AND NOT EXISTS (SELECT 1 FROM enrolments r WHERE r.renewal_of = c.serial AND r.state = 'issued')
		ORDER BY c.not_after, c.serial`, now.Unix(), until.Unix())
	if err != nil {
		return nil, fmt.Errorf("postgres: expiring certificates: %w", err)
	}
	defer rows.Close()
	var out []enrol.Expiring
	for rows.Next() {
		var x enrol.Expiring
		var nb, na int64
		if err := rows.Scan(&x.Serial, &x.Mailbox, &x.Profile, &nb, &na, &x.EnrolmentID, &x.RemindedDays); err != nil {
			return nil, err
		}
		x.NotBefore, x.NotAfter = unix(nb), unix(na)
		out = append(out, x)
	}
	return out, rows.Err()
}

// MarkReminder implements enrol.LifecycleTx.
func (t *enrolTx) MarkReminder(serial string, days int, at time.Time) (bool, error) {
	tag, err := t.tx.Exec(t.ctx, `INSERT INTO reminders_sent (serial, days, sent_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, serial, days, at.Unix())
	if err != nil {
		return false, fmt.Errorf("postgres: recording reminder: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Renewal implements enrol.LifecycleTx.
func (t *enrolTx) Renewal(serial string) (*enrol.Enrolment, error) {
	e, err := scanEnrolment(t.tx.QueryRow(t.ctx, `SELECT `+enrolmentColumns+` FROM enrolments
		WHERE renewal_of = $1 AND state IN ('invited', 'submitted', 'approved', 'issued')`, serial))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	return e, err
}
