package sqlite

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
)

var _ ca.Store = (*DB)(nil)

// The writes of every issuance run through the writer's prepared
// statement cache (writeStmt): parsing them afresh on each call cost nearly
// as much as running them.
const (
	reserveSerialSQL = `
		INSERT INTO certificates (serial, issuer_id, state, profile, mailbox, spki_sha256, not_before, not_after, lint_der, created_at, once_key)
		SELECT ?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ?, ?
		WHERE NOT EXISTS (SELECT 1 FROM blocked_keys WHERE spki_sha256 = ?)`
	refuseSerialSQL     = `UPDATE certificates SET state = 'refused', refusal = ? WHERE serial = ? AND state = 'reserved'`
	storeCertificateSQL = `UPDATE certificates SET state = 'issued', der = ?, issued_at = ? WHERE serial = ? AND state = 'reserved'`
)

// ReserveSerial implements ca.Store.
func (db *DB) ReserveSerial(ctx context.Context, r ca.Reservation) error {
	stmt, err := db.writeStmt(ctx, reserveSerialSQL)
	if err != nil {
		return fmt.Errorf("sqlite: reserving serial: %w", err)
	}
	res, err := stmt.ExecContext(ctx,
		r.Serial, r.IssuerID, r.Profile, r.Mailbox, r.SPKIHash, r.NotBefore.Unix(), r.NotAfter.Unix(), r.LintDER, db.now().Unix(), nullString(r.Once), r.SPKIHash)
	switch constraint(err) {
	case 0:
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return ca.ErrSerialTaken
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		// Two unique indexes can refuse the row; SQLite names the column.
		if strings.Contains(err.Error(), "once_key") {
			return ca.ErrOnceTaken
		}
		return ca.ErrKeyInUse
	}
	if err != nil {
		return fmt.Errorf("sqlite: reserving serial: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ca.ErrKeyInUse
	}
	return nil
}

// RefuseSerial implements ca.Store.
func (db *DB) RefuseSerial(ctx context.Context, serial, reason string) error {
	stmt, err := db.writeStmt(ctx, refuseSerialSQL)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return db.expectOne(stmt.ExecContext(ctx, reason, serial))
}

// StoreCertificate implements ca.Store.
func (db *DB) StoreCertificate(ctx context.Context, serial string, der []byte) error {
	stmt, err := db.writeStmt(ctx, storeCertificateSQL)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return db.expectOne(stmt.ExecContext(ctx, der, db.now().Unix(), serial))
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (db *DB) expectOne(res sql.Result, err error) error {
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return errors.New("sqlite: no reserved certificate with that serial")
	}
	return nil
}

// BlockKey records that the key with this SPKI hash may never be
// certified. Blocking a blocked key again is not an error.
func (db *DB) BlockKey(ctx context.Context, spkiHash []byte, reason string) error {
	_, err := db.write.ExecContext(ctx,
		`INSERT INTO blocked_keys (spki_sha256, reason, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, spkiHash, reason, db.now().Unix())
	if err != nil {
		return fmt.Errorf("sqlite: blocking key: %w", err)
	}
	return nil
}

// CertificateRecord is a stored certificate as the store sees it.
type CertificateRecord struct {
	Serial  string
	State   string // reserved, refused or issued
	Profile string
	Mailbox string
	Refusal string
	LintDER []byte
	Cert    *x509.Certificate // nil unless issued
}

// Certificate returns the record for serial, or an error wrapping
// sql.ErrNoRows when there is none.
func (db *DB) Certificate(ctx context.Context, serial string) (*CertificateRecord, error) {
	var (
		r       CertificateRecord
		der     []byte
		refusal sql.NullString
	)
	err := db.read.QueryRowContext(ctx,
		`SELECT serial, state, profile, mailbox, refusal, lint_der, der FROM certificates WHERE serial = ?`, serial).
		Scan(&r.Serial, &r.State, &r.Profile, &r.Mailbox, &refusal, &r.LintDER, &der)
	if err != nil {
		return nil, fmt.Errorf("sqlite: certificate %s: %w", serial, err)
	}
	r.Refusal = refusal.String
	if der != nil {
		if r.Cert, err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("sqlite: certificate %s does not parse: %w", serial, err)
		}
	}
	return &r, nil
}

// CountCertificates returns how many certificate rows are in each state.
func (db *DB) CountCertificates(ctx context.Context) (map[string]int, error) {
	return db.countByState(ctx, "certificates")
}

// abandonedReason is the refusal recorded for a reservation whose process
// stopped before it stored a certificate.
const abandonedReason = "abandoned: the process stopped between reserving the serial and storing the certificate; no certificate left it"

// AbandonReservation implements enrol.Store.
func (db *DB) AbandonReservation(ctx context.Context, once string, before time.Time) (bool, error) {
	res, err := db.write.ExecContext(ctx, `UPDATE certificates SET state = 'refused', refusal = ? WHERE once_key = ? AND state = 'reserved' AND created_at < ?`,
		abandonedReason, once, before.Unix())
	if err != nil {
		return false, fmt.Errorf("sqlite: abandoning a reservation: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// CertificateFor implements enrol.Store.
func (db *DB) CertificateFor(ctx context.Context, once string) (*x509.Certificate, error) {
	var der []byte
	err := db.readRow(ctx, `SELECT der FROM certificates WHERE once_key = ? AND state = 'issued'`, once).Scan(&der)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return x509.ParseCertificate(der)
}
