package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailca/mailca/internal/ca"
	"github.com/mailca/mailca/internal/enrol"
)

var (
	_ ca.CRLStore        = (*DB)(nil)
	_ ca.StatusStore     = (*DB)(nil)
	_ ca.RevocationFeed  = (*DB)(nil)
	_ enrol.RevocationTx = (*enrolTx)(nil)
)

// RevokeCertificate implements enrol.RevocationTx. The certificate's row is
// locked first (FOR UPDATE), so that of two nodes revoking it at once the
// second sees the first's revocation; the issuer's next revocation
// sequence number is then taken in the same transaction, whose row lock
// orders the revocations of one issuer.
func (t *enrolTx) RevokeCertificate(serial string, reason ca.RevocationReason, at time.Time) (*enrol.Revocation, bool, error) {
	var (
		r                  = enrol.Revocation{Serial: serial}
		state              string
		notAfter           int64
		revokedAt, oldCode *int64
	)
	err := t.tx.QueryRow(t.ctx, `SELECT issuer_id, state, mailbox, spki_sha256, not_after, revoked_at, revocation_reason FROM certificates WHERE serial = $1 FOR UPDATE`, serial).
		Scan(&r.IssuerID, &state, &r.Mailbox, &r.SPKIHash, &notAfter, &revokedAt, &oldCode)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && state != "issued") {
		return nil, false, enrol.ErrNotFound
	}
	if err != nil {
		return nil, false, fmt.Errorf("postgres: revoking %s: %w", serial, err)
	}
	r.NotAfter = unix(notAfter)
	if revokedAt != nil {
		r.RevokedAt = unix(*revokedAt)
		if oldCode != nil {
			r.Reason = ca.RevocationReason(*oldCode)
		}
		return &r, false, nil
	}
	var seq int64
	err = t.tx.QueryRow(t.ctx, `INSERT INTO issuer_counters AS c (issuer_id, revocation_seq) VALUES ($1, 1)
		ON CONFLICT (issuer_id) DO UPDATE SET revocation_seq = c.revocation_seq + 1 RETURNING revocation_seq`, r.IssuerID).Scan(&seq)
	if err != nil {
		return nil, false, fmt.Errorf("postgres: revoking %s: %w", serial, err)
	}
	tag, err := t.tx.Exec(t.ctx, `UPDATE certificates SET revoked_at = $1, revocation_reason = $2, revocation_seq = $3
		WHERE serial = $4 AND state = 'issued' AND revoked_at IS NULL`, at.Unix(), int(reason), seq, serial)
	if err != nil {
		return nil, false, fmt.Errorf("postgres: revoking %s: %w", serial, err)
	}
	if tag.RowsAffected() != 1 {
		return nil, false, enrol.ErrStale
	}
	r.RevokedAt, r.Reason = unix(at.Unix()), reason
	return &r, true, nil
}

// BlockKey implements enrol.RevocationTx: DB.BlockKey inside the
// transaction.
func (t *enrolTx) BlockKey(spkiHash []byte, reason string) error {
	_, err := t.tx.Exec(t.ctx, `INSERT INTO blocked_keys (spki_sha256, reason, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, spkiHash, reason, t.now().Unix())
	if err != nil {
		return fmt.Errorf("postgres: blocking key: %w", err)
	}
	return nil
}

// EnrolmentBySerial implements enrol.RevocationTx.
func (t *enrolTx) EnrolmentBySerial(serial string) (*enrol.Enrolment, error) {
	e, err := scanEnrolment(t.tx.QueryRow(t.ctx, `SELECT `+enrolmentColumns+` FROM enrolments WHERE serial = $1`, serial))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	return e, err
}

// CertificateStatus implements ca.StatusStore.
func (db *DB) CertificateStatus(ctx context.Context, serial string) (ca.CertificateStatus, error) {
	var (
		s             ca.CertificateStatus
		state         string
		notAfter      int64
		revokedAt, rc *int64
	)
	err := db.pool.QueryRow(ctx, `SELECT issuer_id, state, not_after, revoked_at, revocation_reason FROM certificates WHERE serial = $1`, serial).
		Scan(&s.IssuerID, &state, &notAfter, &revokedAt, &rc)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, ca.ErrUnknownCertificate
	}
	if err != nil {
		return s, fmt.Errorf("postgres: certificate status: %w", err)
	}
	s.Issued, s.NotAfter = state == "issued", unix(notAfter)
	if revokedAt != nil {
		s.RevokedAt = unix(*revokedAt)
		if rc != nil {
			s.Reason = ca.RevocationReason(*rc)
		}
	}
	return s, nil
}

// NextCRLNumber implements ca.CRLStore. The upsert locks the issuer's
// counter row until it commits, so callers on any node get distinct,
// increasing numbers.
func (db *DB) NextCRLNumber(ctx context.Context, issuerID string) (int64, error) {
	var n int64
	err := db.pool.QueryRow(ctx, `INSERT INTO issuer_counters AS c (issuer_id, crl_number) VALUES ($1, 1)
		ON CONFLICT (issuer_id) DO UPDATE SET crl_number = c.crl_number + 1 RETURNING crl_number`, issuerID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: CRL number: %w", err)
	}
	return n, nil
}

// RevocationSeq implements ca.CRLStore.
func (db *DB) RevocationSeq(ctx context.Context, issuerID string) (int64, error) {
	var seq int64
	err := db.pool.QueryRow(ctx, `SELECT revocation_seq FROM issuer_counters WHERE issuer_id = $1`, issuerID).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return seq, err
}

// RevokedCertificates implements ca.CRLStore. The sequence number and the
// rows are read in one repeatable-read transaction, so in one snapshot.
func (db *DB) RevokedCertificates(ctx context.Context, issuerID string, notAfter time.Time, fn func(*ca.RevokedEntry) error) (int64, error) {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var seq int64
	err = tx.QueryRow(ctx, `SELECT revocation_seq FROM issuer_counters WHERE issuer_id = $1`, issuerID).Scan(&seq)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT serial, revoked_at, revocation_reason FROM certificates
		WHERE issuer_id = $1 AND revoked_at IS NOT NULL AND not_after >= $2`, issuerID, notAfter.Unix())
	if err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	defer rows.Close()
	var (
		e      ca.RevokedEntry
		serial string
		at, rc int64
	)
	for rows.Next() {
		if err := rows.Scan(&serial, &at, &rc); err != nil {
			return 0, fmt.Errorf("postgres: %w", err)
		}
		e.Serial, e.RevokedAt, e.Reason = append(e.Serial[:0], serial...), time.Unix(at, 0), ca.RevocationReason(rc)
		if err := fn(&e); err != nil {
			return 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	return seq, nil
}

// RevokedSince implements ca.RevocationFeed.
func (db *DB) RevokedSince(ctx context.Context, issuerID string, after int64, n int) ([]string, int64, error) {
	rows, err := db.pool.Query(ctx, `SELECT serial, revocation_seq FROM certificates
		WHERE issuer_id = $1 AND revoked_at IS NOT NULL AND revocation_seq > $2 ORDER BY revocation_seq LIMIT $3`, issuerID, after, limit(n))
	if err != nil {
		return nil, after, fmt.Errorf("postgres: %w", err)
	}
	defer rows.Close()
	var serials []string
	last := after
	for rows.Next() {
		var serial string
		if err := rows.Scan(&serial, &last); err != nil {
			return nil, after, fmt.Errorf("postgres: %w", err)
		}
		serials = append(serials, serial)
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("postgres: %w", err)
	}
	return serials, last, nil
}

// SaveCRL implements ca.CRLStore: a CRL replaces the stored one only when
// its number is higher, so that two nodes publishing at once leave the
// newer list.
func (db *DB) SaveCRL(ctx context.Context, c *ca.CRL) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO crls (issuer_id, number, this_update, next_update, revocation_seq, entries, der)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (issuer_id) DO UPDATE SET number = excluded.number, this_update = excluded.this_update,
			next_update = excluded.next_update, revocation_seq = excluded.revocation_seq, entries = excluded.entries, der = excluded.der
		WHERE excluded.number > crls.number`,
		c.IssuerID, c.Number, c.ThisUpdate.Unix(), c.NextUpdate.Unix(), c.RevocationSeq, c.Entries, c.DER)
	if err != nil {
		return fmt.Errorf("postgres: storing CRL: %w", err)
	}
	return nil
}

// LatestCRL implements ca.CRLStore.
func (db *DB) LatestCRL(ctx context.Context, issuerID string, withDER bool) (*ca.CRL, error) {
	c := &ca.CRL{IssuerID: issuerID}
	var this, next int64
	q := `SELECT number, this_update, next_update, revocation_seq, entries, NULL::bytea FROM crls WHERE issuer_id = $1`
	if withDER {
		q = `SELECT number, this_update, next_update, revocation_seq, entries, der FROM crls WHERE issuer_id = $1`
	}
	err := db.pool.QueryRow(ctx, q, issuerID).Scan(&c.Number, &this, &next, &c.RevocationSeq, &c.Entries, &c.DER)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ca.ErrNoCRL
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: reading CRL: %w", err)
	}
	c.ThisUpdate, c.NextUpdate = unix(this), unix(next)
	return c, nil
}
