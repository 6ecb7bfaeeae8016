package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mailca/mailca/internal/apikey"
	"github.com/mailca/mailca/internal/enrol"
)

var _ apikey.Store = (*DB)(nil)

const apiKeyColumns = `id, name, hash, scopes, policies, created_by, created_at, expires_at, revoked_at`

func scanAPIKey(scan func(...any) error) (*apikey.Key, error) {
	var (
		k                         apikey.Key
		scopes, policies          string
		created, expires, revoked int64
	)
	if err := scan(&k.ID, &k.Name, &k.Hash, &scopes, &policies, &k.CreatedBy, &created, &expires, &revoked); err != nil {
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
	return db.stmtTx(ctx, func(ts *txStmts) error {
		_, err := ts.exec(`INSERT INTO api_keys (`+apiKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)`,
			k.ID, k.Name, k.Hash, strings.Join(scopes, ","), strings.Join(k.Policies, ","), k.CreatedBy, k.CreatedAt.Unix(), unixOrZero(k.ExpiresAt))
		if c := constraint(err); c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
			return apikey.ErrDuplicate
		}
		if err != nil {
			return fmt.Errorf("sqlite: storing api key: %w", err)
		}
		return (&enrolTx{txStmts: ts, now: db.now}).Audit(ev)
	})
}

// APIKey implements apikey.Store.
func (db *DB) APIKey(ctx context.Context, id string) (*apikey.Key, error) {
	k, err := scanAPIKey(db.readRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = ?`, id).Scan)
	if isNoRows(err) {
		return nil, apikey.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: api key: %w", err)
	}
	return k, nil
}

// APIKeys implements apikey.Store.
func (db *DB) APIKeys(ctx context.Context) ([]*apikey.Key, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: api keys: %w", err)
	}
	defer rows.Close()
	var out []*apikey.Key
	for rows.Next() {
		k, err := scanAPIKey(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("sqlite: api keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey implements apikey.Store.
func (db *DB) RevokeAPIKey(ctx context.Context, name string, at time.Time, ev enrol.Event) error {
	return db.stmtTx(ctx, func(ts *txStmts) error {
		res, err := ts.exec(`UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at = 0`, at.Unix(), name)
		if err != nil {
			return fmt.Errorf("sqlite: revoking api key: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return apikey.ErrNotFound
		}
		return (&enrolTx{txStmts: ts, now: db.now}).Audit(ev)
	})
}
