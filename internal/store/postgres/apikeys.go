package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/enrol"
)

var _ apikey.Store = (*DB)(nil)

const apiKeyColumns = `id, name, hash, scopes, policies, created_by, created_at, expires_at, revoked_at`

func scanAPIKey(row pgx.Row) (*apikey.Key, error) {
	var (
		k                         apikey.Key
		scopes, policies          string
		created, expires, revoked int64
	)
	if err := row.Scan(&k.ID, &k.Name, &k.Hash, &scopes, &policies, &k.CreatedBy, &created, &expires, &revoked); err != nil {
		return nil, err
	}
	for _, s := range splitList(scopes) {
		k.Scopes = append(k.Scopes, apikey.Scope(s))
	}
	k.Policies = splitList(policies)
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = unix(created), unix(expires), unix(revoked)
	return &k, nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// InsertAPIKey implements apikey.Store.
func (db *DB) InsertAPIKey(ctx context.Context, k *apikey.Key, ev enrol.Event) error {
	scopes := make([]string, len(k.Scopes))
	for i, s := range k.Scopes {
		scopes[i] = string(s)
	}
	return db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO api_keys (`+apiKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0) ON CONFLICT DO NOTHING`,
			k.ID, k.Name, k.Hash, strings.Join(scopes, ","), strings.Join(k.Policies, ","), k.CreatedBy, k.CreatedAt.Unix(), unixOrZero(k.ExpiresAt))
		if err != nil {
			return fmt.Errorf("postgres: storing api key: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return apikey.ErrDuplicate
		}
		return (&enrolTx{ctx: ctx, tx: tx, now: db.now}).Audit(ev)
	})
}

// APIKey implements apikey.Store.
func (db *DB) APIKey(ctx context.Context, id string) (*apikey.Key, error) {
	k, err := scanAPIKey(db.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, apikey.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: api key: %w", err)
	}
	return k, nil
}

// APIKeys implements apikey.Store.
func (db *DB) APIKeys(ctx context.Context) ([]*apikey.Key, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("postgres: api keys: %w", err)
	}
	defer rows.Close()
	var out []*apikey.Key
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: api keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey implements apikey.Store.
func (db *DB) RevokeAPIKey(ctx context.Context, name string, at time.Time, ev enrol.Event) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE name = $2 AND revoked_at = 0`, at.Unix(), name)
		if err != nil {
			return fmt.Errorf("postgres: revoking api key: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return apikey.ErrNotFound
		}
		return (&enrolTx{ctx: ctx, tx: tx, now: db.now}).Audit(ev)
	})
}
