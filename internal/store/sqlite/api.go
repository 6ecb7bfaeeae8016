package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/mailca/mailca/internal/audit"
	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
	"github.com/mailca/mailca/internal/errs"
	"github.com/mailca/mailca/internal/web/api"
)

var _ api.Store = (*DB)(nil)

// EventsAfter implements api.Store.
func (db *DB) EventsAfter(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
	return db.auditQuery(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
}

// ObjectEvents implements api.Store.
func (db *DB) ObjectEvents(ctx context.Context, objects []string, limit int) ([]audit.Record, error) {
	if len(objects) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(objects)+1)
	for _, o := range objects {
		args = append(args, o)
	}
	args = append(args, limit)
	return db.auditQuery(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE object IN (?`+strings.Repeat(`, ?`, len(objects)-1)+`) ORDER BY seq LIMIT ?`, args...)
}

func (db *DB) auditQuery(ctx context.Context, q string, args ...any) ([]audit.Record, error) {
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading audit events: %w", err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		r, err := scanAudit(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Audit implements api.Store.
func (db *DB) Audit(ctx context.Context, e enrol.Event) error {
	return db.stmtTx(ctx, func(ts *txStmts) error {
		return (&enrolTx{txStmts: ts, now: db.now}).Audit(e)
	})
}

const certInfoColumns = `c.rowid, c.serial, c.mailbox, c.profile, c.not_before, c.not_after, COALESCE(c.issued_at, 0),
	COALESCE(c.revoked_at, 0), c.revocation_reason, COALESCE(e.id, 0), COALESCE(e.policy, '')`

// certJoin finds the enrolment of each certificate, if any.
const certJoin = ` FROM certificates c LEFT JOIN enrolments e ON e.serial = c.serial WHERE c.state = 'issued'`

func scanCertInfo(scan func(...any) error, withDER bool) (api.CertificateInfo, error) {
	var (
		c                       api.CertificateInfo
		nb, na, issued, revoked int64
		reason                  sql.NullInt64
	)
	dest := []any{&c.Cursor, &c.Serial, &c.Mailbox, &c.Profile, &nb, &na, &issued, &revoked, &reason, &c.EnrolmentID, &c.Policy}
	if withDER {
		dest = append(dest, &c.DER)
	}
	if err := scan(dest...); err != nil {
		return c, err
	}
	c.NotBefore, c.NotAfter, c.IssuedAt, c.RevokedAt = unix(nb), unix(na), unix(issued), unix(revoked)
	if revoked != 0 && reason.Valid {
		c.Reason = ca.RevocationReason(reason.Int64).String()
	}
	return c, nil
}

// Certificates implements api.Store.
func (db *DB) Certificates(ctx context.Context, q api.CertificateQuery) ([]api.CertificateInfo, error) {
	query := `SELECT ` + certInfoColumns + certJoin
	var args []any
	if q.Mailbox != "" {
		query += ` AND c.mailbox = ?`
		args = append(args, q.Mailbox)
	}
	if q.Serial != "" {
		query += ` AND c.serial = ?`
		args = append(args, q.Serial)
	}
	if len(q.Policies) > 0 {
		query += ` AND e.policy IN (?` + strings.Repeat(`, ?`, len(q.Policies)-1) + `)`
		for _, p := range q.Policies {
			args = append(args, p)
		}
	}
	switch q.State {
	case "valid":
		query += ` AND c.revoked_at IS NULL AND c.not_after > ?`
		args = append(args, q.Now.Unix())
	case "revoked":
		query += ` AND c.revoked_at IS NOT NULL`
	case "expired":
		query += ` AND c.revoked_at IS NULL AND c.not_after <= ?`
		args = append(args, q.Now.Unix())
	}
	if q.Before > 0 {
		query += ` AND c.rowid < ?`
		args = append(args, q.Before)
	}
	if q.Limit <= 0 {
		q.Limit = 100
	}
	query += ` ORDER BY c.rowid DESC LIMIT ?`
	args = append(args, min(q.Limit, 1000))
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: searching certificates: %w", err)
	}
	defer rows.Close()
	var out []api.CertificateInfo
	for rows.Next() {
		c, err := scanCertInfo(rows.Scan, false)
		if err != nil {
			return nil, fmt.Errorf("sqlite: searching certificates: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// IssuedCertificate implements api.Store.
func (db *DB) IssuedCertificate(ctx context.Context, serial string) (*api.CertificateInfo, error) {
	c, err := scanCertInfo(db.readRow(ctx, `SELECT `+certInfoColumns+`, c.der`+certJoin+` AND c.serial = ?`, serial).Scan, true)
	if isNoRows(err) {
		return nil, errs.E(errs.NotFound, "no issued certificate has serial number %s", serial)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: certificate %s: %w", serial, err)
	}
	return &c, nil
}
