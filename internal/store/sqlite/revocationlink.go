package sqlite

import (
	"context"
	"time"

	"github.com/mailca/mailca/internal/enrol"
)

// InsertRevocationLink implements enrol.Tx.
func (t *enrolTx) InsertRevocationLink(l enrol.RevocationLink) error {
	_, err := t.exec(`INSERT INTO revocation_links (hash, serial, mailbox, expires_at, created_at) VALUES (?, ?, ?, ?, ?)`,
		l.Hash, l.Serial, l.Mailbox, l.ExpiresAt.Unix(), t.now().Unix())
	return err
}

// RevocationLink implements enrol.Store.
func (db *DB) RevocationLink(ctx context.Context, hash []byte) (*enrol.RevocationLink, error) {
	var l enrol.RevocationLink
	var exp int64
	err := db.readRow(ctx, `SELECT hash, serial, mailbox, expires_at FROM revocation_links WHERE hash = ?`, hash).
		Scan(&l.Hash, &l.Serial, &l.Mailbox, &exp)
	if isNoRows(err) {
		return nil, enrol.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	l.ExpiresAt = time.Unix(exp, 0).UTC()
	return &l, nil
}
