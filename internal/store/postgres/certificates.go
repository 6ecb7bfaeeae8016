package postgres

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
)

var _ ca.Store = (*DB)(nil)

// ReserveSerial implements ca.Store. Each of the three unique indexes that
// can refuse the row names its own error.
func (db *DB) ReserveSerial(ctx context.Context, r ca.Reservation) error {
	tag, err := db.pool.Exec(ctx, `
		INSERT INTO certificates (serial, issuer_id, state, profile, mailbox, spki_sha256, not_before, not_after, lint_der, created_at, once_key)
		SELECT $1, $2, 'reserved', $3, $4, $5, $6, $7, $8, $9, $10
		WHERE NOT EXISTS (SELECT 1 FROM blocked_keys WHERE spki_sha256 = $5)`,
		r.Serial, r.IssuerID, r.Profile, r.Mailbox, r.SPKIHash, r.NotBefore.Unix(), r.NotAfter.Unix(), r.LintDER, db.now().Unix(), nullString(r.Once))
	switch uniqueViolation(err) {
	case "":
	case "certificates_pkey":
		return ca.ErrSerialTaken
	case "certificates_once":
		return ca.ErrOnceTaken
	default:
		return ca.ErrKeyInUse
	}
	if err != nil {
		return fmt.Errorf("postgres: reserving serial: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ca.ErrKeyInUse
	}
	return nil
}

// RefuseSerial implements ca.Store.
func (db *DB) RefuseSerial(ctx context.Context, serial, reason string) error {
	return expectOne(db.pool.Exec(ctx, `UPDATE certificates SET state = 'refused', refusal = $1 WHERE serial = $2 AND state = 'reserved'`, reason, serial))
}

// StoreCertificate implements ca.Store.
func (db *DB) StoreCertificate(ctx context.Context, serial string, der []byte) error {
	return expectOne(db.pool.Exec(ctx, `UPDATE certificates SET state = 'issued', der = $1, issued_at = $2 WHERE serial = $3 AND state = 'reserved'`,
		der, db.now().Unix(), serial))
}

func expectOne(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return errors.New("postgres: no reserved certificate with that serial")
	}
	return nil
}

// BlockKey records that the key with this SPKI hash may never be
// certified. Blocking a blocked key again is not an error.
func (db *DB) BlockKey(ctx context.Context, spkiHash []byte, reason string) error {
	_, err := db.pool.Exec(ctx,
		`INSERT INTO blocked_keys (spki_sha256, reason, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, spkiHash, reason, db.now().Unix())
	if err != nil {
		return fmt.Errorf("postgres: blocking key: %w", err)
	}
	return nil
}

// KeyBlocked reports whether the key with this SPKI hash is blocked.
func (db *DB) KeyBlocked(ctx context.Context, spkiHash []byte) (bool, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM blocked_keys WHERE spki_sha256 = $1`, spkiHash).Scan(&n)
	return n > 0, err
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
	tag, err := db.pool.Exec(ctx, `UPDATE certificates SET state = 'refused', refusal = $1 WHERE once_key = $2 AND state = 'reserved' AND created_at < $3`,
		abandonedReason, once, before.Unix())
	if err != nil {
		return false, fmt.Errorf("postgres: abandoning a reservation: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// CertificateFor implements enrol.Store.
func (db *DB) CertificateFor(ctx context.Context, once string) (*x509.Certificate, error) {
	var der []byte
	err := db.pool.QueryRow(ctx, `SELECT der FROM certificates WHERE once_key = $1 AND state = 'issued'`, once).Scan(&der)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return x509.ParseCertificate(der)
}
