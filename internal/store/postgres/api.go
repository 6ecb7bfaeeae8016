package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/store"
	"github.com/mailca/mailca/internal/web/api"
)

var _ api.Store = (*DB)(nil)

// EventsAfter implements api.Store.
func (db *DB) EventsAfter(ctx context.Context, after int64, n int) ([]audit.Record, error) {
	return db.auditQuery(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit(n))
}

// ObjectEvents implements api.Store.
func (db *DB) ObjectEvents(ctx context.Context, objects []string, n int) ([]audit.Record, error) {
	if len(objects) == 0 {
		return nil, nil
	}
	return db.auditQuery(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE object = ANY($1) ORDER BY seq LIMIT $2`, objects, limit(n))
}

func (db *DB) auditQuery(ctx context.Context, q string, args ...any) ([]audit.Record, error) {
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading audit events: %w", err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Audit implements api.Store.
func (db *DB) Audit(ctx context.Context, e enrol.Event) error {
	return db.InTx(ctx, func(tx enrol.Tx) error { return tx.Audit(e) })
}

const certInfoColumns = `c.row_id, c.serial, c.mailbox, c.profile, c.not_before, c.not_after, COALESCE(c.issued_at, 0),
	COALESCE(c.revoked_at, 0), c.revocation_reason, COALESCE(e.id, 0), COALESCE(e.policy, '')`

// certJoin finds the enrolment of each certificate, if any.
const certJoin = ` FROM certificates c LEFT JOIN enrolments e ON e.serial = c.serial WHERE c.state = 'issued'`

func scanCertInfo(row pgx.Row, withDER bool) (api.CertificateInfo, error) {
	var (
		c                       api.CertificateInfo
		nb, na, issued, revoked int64
		reason                  *int64
	)
	dest := []any{&c.Cursor, &c.Serial, &c.Mailbox, &c.Profile, &nb, &na, &issued, &revoked, &reason, &c.EnrolmentID, &c.Policy}
	if withDER {
		dest = append(dest, &c.DER)
	}
	if err := row.Scan(dest...); err != nil {
		return c, err
	}
	c.NotBefore, c.NotAfter, c.IssuedAt, c.RevokedAt = unix(nb), unix(na), unix(issued), unix(revoked)
	if revoked != 0 && reason != nil {
		c.Reason = ca.RevocationReason(*reason).String()
	}
	return c, nil
}

// Certificates implements api.Store.
func (db *DB) Certificates(ctx context.Context, q api.CertificateQuery) ([]api.CertificateInfo, error) {
	query := `SELECT ` + certInfoColumns + certJoin
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.Mailbox != "" {
		query += ` AND c.mailbox = ` + arg(q.Mailbox)
	}
	if q.Serial != "" {
		query += ` AND c.serial = ` + arg(q.Serial)
	}
	if len(q.Policies) > 0 {
		query += ` AND e.policy = ANY(` + arg(q.Policies) + `)`
	}
	switch q.State {
	case "valid":
		query += ` AND c.revoked_at IS NULL AND c.not_after > ` + arg(q.Now.Unix())
	case "revoked":
		query += ` AND c.revoked_at IS NOT NULL`
	case "expired":
		query += ` AND c.revoked_at IS NULL AND c.not_after <= ` + arg(q.Now.Unix())
	}
	if q.Before > 0 {
		query += ` AND c.row_id < ` + arg(q.Before)
	}
	query += ` ORDER BY c.row_id DESC LIMIT ` + arg(store.PageLimit(q.Limit))
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: searching certificates: %w", err)
	}
	defer rows.Close()
	var out []api.CertificateInfo
	for rows.Next() {
		c, err := scanCertInfo(rows, false)
		if err != nil {
			return nil, fmt.Errorf("postgres: searching certificates: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// IssuedCertificate implements api.Store.
func (db *DB) IssuedCertificate(ctx context.Context, serial string) (*api.CertificateInfo, error) {
	c, err := scanCertInfo(db.pool.QueryRow(ctx, `SELECT `+certInfoColumns+`, c.der`+certJoin+` AND c.serial = $1`, serial), true)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.E(errs.NotFound, "no issued certificate has serial number %s", serial)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: certificate %s: %w", serial, err)
	}
	return &c, nil
}
