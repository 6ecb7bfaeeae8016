package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
)

var (
	_ ca.CRLStore        = (*DB)(nil)
	_ ca.StatusStore     = (*DB)(nil)
	_ ca.RevocationFeed  = (*DB)(nil)
	_ enrol.RevocationTx = (*enrolTx)(nil)
)

// RevokeCertificate implements enrol.RevocationTx. The update is
// conditional on the certificate being issued and not yet revoked, and
// takes the issuer's next revocation sequence number in the same
// transaction.
func (t *enrolTx) RevokeCertificate(serial string, reason ca.RevocationReason, at time.Time) (*enrol.Revocation, bool, error) {
	var (
		r                  = enrol.Revocation{Serial: serial}
		state              string
		notAfter           int64
		revokedAt, oldCode sql.NullInt64
	)
	err := t.queryRow(`SELECT issuer_id, state, mailbox, spki_sha256, not_after, revoked_at, revocation_reason FROM certificates WHERE serial = ?`, serial).
		Scan(&r.IssuerID, &state, &r.Mailbox, &r.SPKIHash, &notAfter, &revokedAt, &oldCode)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && state != "issued") {
		return nil, false, enrol.ErrNotFound
	}
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: revoking %s: %w", serial, err)
	}
	r.NotAfter = unix(notAfter)
	if revokedAt.Valid {
		r.RevokedAt, r.Reason = unix(revokedAt.Int64), ca.RevocationReason(oldCode.Int64)
		return &r, false, nil
	}
	var seq int64
	err = t.queryRow(`INSERT INTO issuer_counters (issuer_id, revocation_seq) VALUES (?, 1)
		ON CONFLICT (issuer_id) DO UPDATE SET revocation_seq = revocation_seq + 1 RETURNING revocation_seq`, r.IssuerID).Scan(&seq)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: revoking %s: %w", serial, err)
	}
	res, err := t.exec(`UPDATE certificates SET revoked_at = ?, revocation_reason = ?, revocation_seq = ?
		WHERE serial = ? AND state = 'issued' AND revoked_at IS NULL`, at.Unix(), int(reason), seq, serial)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: revoking %s: %w", serial, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil, false, enrol.ErrStale
	}
	r.RevokedAt, r.Reason = unix(at.Unix()), reason
	return &r, true, nil
}

// BlockKey implements enrol.RevocationTx: DB.BlockKey inside the
// transaction.
func (t *enrolTx) BlockKey(spkiHash []byte, reason string) error {
	_, err := t.exec(`INSERT INTO blocked_keys (spki_sha256, reason, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, spkiHash, reason, t.now().Unix())
	if err != nil {
		return fmt.Errorf("sqlite: blocking key: %w", err)
	}
	return nil
}

// EnrolmentBySerial implements enrol.RevocationTx.
func (t *enrolTx) EnrolmentBySerial(serial string) (*enrol.Enrolment, error) {
	e, err := scanEnrolment(t.queryRow(`SELECT `+enrolmentColumns+` FROM enrolments WHERE serial = ?`, serial).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	return e, err
}

// KeyBlocked reports whether the key with this SPKI hash is blocked.
func (db *DB) KeyBlocked(ctx context.Context, spkiHash []byte) (bool, error) {
	var n int
	err := db.readRow(ctx, `SELECT COUNT(*) FROM blocked_keys WHERE spki_sha256 = ?`, spkiHash).Scan(&n)
	return n > 0, err
}

// CertificateStatus implements ca.StatusStore.
func (db *DB) CertificateStatus(ctx context.Context, serial string) (ca.CertificateStatus, error) {
	var (
		s             ca.CertificateStatus
		state         string
		notAfter      int64
		revokedAt, rc sql.NullInt64
	)
	err := db.readRow(ctx, `SELECT issuer_id, state, not_after, revoked_at, revocation_reason FROM certificates WHERE serial = ?`, serial).
		Scan(&s.IssuerID, &state, &notAfter, &revokedAt, &rc)
	if errors.Is(err, sql.ErrNoRows) {
		return s, ca.ErrUnknownCertificate
	}
	if err != nil {
		return s, fmt.Errorf("sqlite: certificate status: %w", err)
	}
	s.Issued, s.NotAfter = state == "issued", unix(notAfter)
	if revokedAt.Valid {
		s.RevokedAt, s.Reason = unix(revokedAt.Int64), ca.RevocationReason(rc.Int64)
	}
	return s, nil
}

// NextCRLNumber implements ca.CRLStore.
func (db *DB) NextCRLNumber(ctx context.Context, issuerID string) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO issuer_counters (issuer_id, crl_number) VALUES (?, 1)
			ON CONFLICT (issuer_id) DO UPDATE SET crl_number = crl_number + 1 RETURNING crl_number`, issuerID).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: CRL number: %w", err)
	}
	return n, nil
}

// RevocationSeq implements ca.CRLStore.
func (db *DB) RevocationSeq(ctx context.Context, issuerID string) (int64, error) {
	var seq int64
	err := db.readRow(ctx, `SELECT revocation_seq FROM issuer_counters WHERE issuer_id = ?`, issuerID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return seq, err
}

// RevokedCertificates implements ca.CRLStore. The sequence number and the
// rows are read in one read transaction, so in one snapshot of the WAL.
func (db *DB) RevokedCertificates(ctx context.Context, issuerID string, notAfter time.Time, fn func(*ca.RevokedEntry) error) (int64, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	defer tx.Rollback()
	var seq int64
	err = tx.QueryRowContext(ctx, `SELECT revocation_seq FROM issuer_counters WHERE issuer_id = ?`, issuerID).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT serial, revoked_at, revocation_reason FROM certificates
		WHERE issuer_id = ? AND revoked_at IS NOT NULL AND not_after >= ?`, issuerID, notAfter.Unix())
	if err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	defer rows.Close()
	var (
		e      ca.RevokedEntry
		serial sql.RawBytes
		at, rc int64
	)
	for rows.Next() {
		if err := rows.Scan(&serial, &at, &rc); err != nil {
			return 0, fmt.Errorf("sqlite: %w", err)
		}
		e.Serial, e.RevokedAt, e.Reason = serial, time.Unix(at, 0), ca.RevocationReason(rc)
		if err := fn(&e); err != nil {
			return 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	return seq, nil
}

// RevokedSince implements ca.RevocationFeed.
func (db *DB) RevokedSince(ctx context.Context, issuerID string, after int64, limit int) ([]string, int64, error) {
	s, err := db.readStmt(ctx, `SELECT serial, revocation_seq FROM certificates
		WHERE issuer_id = ? AND revoked_at IS NOT NULL AND revocation_seq > ? ORDER BY revocation_seq LIMIT ?`)
	if err != nil {
		return nil, after, fmt.Errorf("sqlite: %w", err)
	}
	rows, err := s.QueryContext(ctx, issuerID, after, limit)
	if err != nil {
		return nil, after, fmt.Errorf("sqlite: %w", err)
	}
	defer rows.Close()
	var serials []string
	last := after
	for rows.Next() {
		var serial string
		if err := rows.Scan(&serial, &last); err != nil {
			return nil, after, fmt.Errorf("sqlite: %w", err)
		}
		serials = append(serials, serial)
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("sqlite: %w", err)
	}
	return serials, last, nil
}

// SaveCRL implements ca.CRLStore: a CRL replaces the stored one only when
// its number is higher, so that two processes publishing at once leave the
// newer list.
func (db *DB) SaveCRL(ctx context.Context, c *ca.CRL) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO crls (issuer_id, number, this_update, next_update, revocation_seq, entries, der)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (issuer_id) DO UPDATE SET number = excluded.number, this_update = excluded.this_update,
			next_update = excluded.next_update, revocation_seq = excluded.revocation_seq, entries = excluded.entries, der = excluded.der
		WHERE excluded.number > crls.number`,
		c.IssuerID, c.Number, c.ThisUpdate.Unix(), c.NextUpdate.Unix(), c.RevocationSeq, c.Entries, c.DER)
	if err != nil {
		return fmt.Errorf("sqlite: storing CRL: %w", err)
	}
	return nil
}

// LatestCRL implements ca.CRLStore.
func (db *DB) LatestCRL(ctx context.Context, issuerID string, withDER bool) (*ca.CRL, error) {
	c := &ca.CRL{IssuerID: issuerID}
	var this, next int64
	q := `SELECT number, this_update, next_update, revocation_seq, entries, NULL FROM crls WHERE issuer_id = ?`
	if withDER {
		q = `SELECT number, this_update, next_update, revocation_seq, entries, der FROM crls WHERE issuer_id = ?`
	}
	err := db.readRow(ctx, q, issuerID).Scan(&c.Number, &this, &next, &c.RevocationSeq, &c.Entries, &c.DER)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ca.ErrNoCRL
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading CRL: %w", err)
	}
	c.ThisUpdate, c.NextUpdate = unix(this), unix(next)
	return c, nil
}
