package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailca/mailca/internal/enrol"
)

// InsertRevocationLink implements enrol.Tx.
func (t *enrolTx) InsertRevocationLink(l enrol.RevocationLink) error {
	_, err := t.tx.Exec(t.ctx, `INSERT INTO revocation_links (hash, serial, mailbox, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)`,
		l.Hash, l.Serial, l.Mailbox, l.ExpiresAt.Unix(), t.now().Unix())
	return err
}

// RevocationLink implements enrol.Store.
func (db *DB) RevocationLink(ctx context.Context, hash []byte) (*enrol.RevocationLink, error) {
	var l enrol.RevocationLink
	var exp int64
	err := db.pool.QueryRow(ctx, `SELECT hash, serial, mailbox, expires_at FROM revocation_links WHERE hash = $1`, hash).
		Scan(&l.Hash, &l.Serial, &l.Mailbox, &exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, enrol.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	l.ExpiresAt = time.Unix(exp, 0).UTC()
	return &l, nil
}
