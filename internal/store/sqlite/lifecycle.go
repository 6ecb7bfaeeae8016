package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/schedule"
)

var (
	_ enrol.LifecycleStore = (*DB)(nil)
	_ enrol.LifecycleTx    = (*enrolTx)(nil)
	_ schedule.Store       = (*DB)(nil)
)

// ClaimJob implements schedule.Store: one conditional update, so of
// several claimants only one gets the lease.
func (db *DB) ClaimJob(ctx context.Context, name, holder string, now time.Time, lease time.Duration) (bool, error) {
	claimed := false
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO jobs (name) VALUES (?) ON CONFLICT DO NOTHING`, name); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `UPDATE jobs SET holder = ?, lease_until = ?
			WHERE name = ? AND lease_until < ? AND next_run <= ? RETURNING name`,
			holder, now.Add(lease).Unix(), name, now.Unix(), now.Unix()).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		claimed = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: claiming job %s: %w", name, err)
	}
	return claimed, nil
}

// FinishJob implements schedule.Store.
func (db *DB) FinishJob(ctx context.Context, name, holder string, now, next time.Time, ok bool) error {
	q := `UPDATE jobs SET holder = '', lease_until = 0, last_run = ?, next_run = ? WHERE name = ? AND holder = ?`
	args := []any{now.Unix(), next.Unix(), name, holder}
	if !ok {
		q = `UPDATE jobs SET holder = '', lease_until = 0, next_run = ? WHERE name = ? AND holder = ?`
		args = []any{next.Unix(), name, holder}
	}
	if _, err := db.write.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("sqlite: finishing job %s: %w", name, err)
	}
	return nil
}

// Jobs implements schedule.Store.
func (db *DB) Jobs(ctx context.Context) ([]schedule.JobState, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT name, holder, lease_until, last_run, next_run FROM jobs ORDER BY name`)
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
func (db *DB) LapsedInvitations(ctx context.Context, now time.Time, limit int) ([]*enrol.Enrolment, error) {
	return db.enrolmentList(ctx, `SELECT `+enrolmentColumns+` FROM enrolments
		WHERE state = 'invited' AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at, id LIMIT ?`, now.Unix(), limit)
}

// LapsedCertificates implements enrol.LifecycleStore.
func (db *DB) LapsedCertificates(ctx context.Context, now time.Time, limit int) ([]*enrol.Enrolment, error) {
	return db.enrolmentList(ctx, `SELECT `+enrolmentColumns+` FROM enrolments WHERE id IN (
		SELECT e.id FROM enrolments e JOIN certificates c ON c.serial = e.serial
		WHERE e.state = 'issued' AND c.state = 'issued' AND c.not_after <= ? ORDER BY c.not_after, e.id LIMIT ?) ORDER BY id`, now.Unix(), limit)
}

func (db *DB) enrolmentList(ctx context.Context, q string, args ...any) ([]*enrol.Enrolment, error) {
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
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

// ExpiringCertificates implements enrol.LifecycleStore.
func (db *DB) ExpiringCertificates(ctx context.Context, now, until time.Time) ([]enrol.Expiring, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT c.serial, c.mailbox, c.profile, c.not_before, c.not_after, COALESCE(e.id, 0),
			COALESCE((SELECT MIN(days) FROM reminders_sent s WHERE s.serial = c.serial), 0)
		FROM certificates c LEFT JOIN enrolments e ON e.serial = c.serial
		WHERE c.state = 'issued' AND c.revoked_at IS NULL AND c.not_after > ? AND c.not_after <= ?
			AND (e.id IS NULL OR e.state = 'issued')
			AND NOT EXISTS (SELECT 1 FROM enrolments r WHERE r.renewal_of = c.serial AND r.state = 'issued')
		ORDER BY c.not_after, c.serial`, now.Unix(), until.Unix())
	if err != nil {
		return nil, fmt.Errorf("sqlite: expiring certificates: %w", err)
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
	res, err := t.exec(`INSERT INTO reminders_sent (serial, days, sent_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, serial, days, at.Unix())
	if err != nil {
		return false, fmt.Errorf("sqlite: recording reminder: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Renewal implements enrol.LifecycleTx.
func (t *enrolTx) Renewal(serial string) (*enrol.Enrolment, error) {
	e, err := scanEnrolment(t.queryRow(`SELECT `+enrolmentColumns+` FROM enrolments
		WHERE renewal_of = ? AND state IN ('invited', 'submitted', 'approved', 'issued')`, serial).Scan)
	if isNoRows(err) {
		return nil, enrol.ErrNotFound
	}
	return e, err
}
