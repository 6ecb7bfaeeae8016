package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
)

var _ auth.Store = (*DB)(nil)

// AuthTx implements auth.Store. Its audit events are appended by the
// enrolment transaction's AuditAll: one hash chain, one code path.
func (db *DB) AuthTx(ctx context.Context, fn func(auth.Tx) error) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		return fn(&authTx{et: &enrolTx{ctx: ctx, tx: tx, now: db.now}})
	})
}

// AuthKey implements auth.Store.
func (db *DB) AuthKey(ctx context.Context, name string, fresh []byte) ([]byte, error) {
	var key []byte
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO auth_keys (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT value FROM auth_keys WHERE name = $1`, name).Scan(&key)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: auth key: %w", err)
	}
	return key, nil
}

const accountColumns = `id, email, name, role, policies, created_at, last_login, locked_until`

func scanAccount(row pgx.Row, extra ...any) (*auth.Account, error) {
	var a auth.Account
	var role, policies string
	var created, last, locked int64
	if err := row.Scan(append([]any{&a.ID, &a.Email, &a.Name, &role, &policies, &created, &last, &locked}, extra...)...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(policies), &a.Policies); err != nil {
		return nil, fmt.Errorf("postgres: account %d policies: %w", a.ID, err)
	}
	if len(a.Policies) == 0 {
		a.Policies = nil
	}
	a.Role, a.CreatedAt, a.LastLogin, a.LockedUntil = auth.Role(role), unix(created), unix(last), unix(locked)
	return &a, nil
}

func policiesJSON(p []string) string {
	if len(p) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(p) // a []string always marshals
	return string(b)
}

// AuthCountAccounts implements auth.Store.
func (db *DB) AuthCountAccounts(ctx context.Context) (int, error) {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM accounts`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: counting accounts: %w", err)
	}
	return n, nil
}

// AuthAccounts implements auth.Store.
func (db *DB) AuthAccounts(ctx context.Context) ([]auth.Account, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading accounts: %w", err)
	}
	defer rows.Close()
	var out []auth.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}

// AuthAccount implements auth.Store.
func (db *DB) AuthAccount(ctx context.Context, id int64) (*auth.Account, error) {
	a, err := scanAccount(db.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	return a, err
}

// AuthCredentials implements auth.Store.
func (db *DB) AuthCredentials(ctx context.Context, email string) (*auth.Credentials, error) {
	var c auth.Credentials
	a, err := scanAccount(db.pool.QueryRow(ctx, `SELECT `+accountColumns+`, password_hash, totp_secret, totp_step
		FROM accounts WHERE email = $1`, email), &c.PasswordHash, &c.TOTPSecret, &c.TOTPStep)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c.Account = *a
	return &c, nil
}

const joinTokenColumns = `id, hash, email, role, policies, setup, created_by, created_at, expires_at, COALESCE(used_at, 0)`

func scanJoinToken(row pgx.Row) (*auth.JoinToken, error) {
	var t auth.JoinToken
	var role, policies string
	var created, expires, used int64
	if err := row.Scan(&t.ID, &t.Hash, &t.Email, &role, &policies, &t.Setup, &t.CreatedBy, &created, &expires, &used); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(policies), &t.Policies); err != nil {
		return nil, fmt.Errorf("postgres: join token policies: %w", err)
	}
	if len(t.Policies) == 0 {
		t.Policies = nil
	}
	t.Role, t.CreatedAt, t.ExpiresAt, t.UsedAt = auth.Role(role), unix(created), unix(expires), unix(used)
	return &t, nil
}

// AuthJoinToken implements auth.Store.
func (db *DB) AuthJoinToken(ctx context.Context, hash []byte) (*auth.JoinToken, error) {
	t, err := scanJoinToken(db.pool.QueryRow(ctx, `SELECT `+joinTokenColumns+` FROM account_join_tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	return t, err
}

// AuthInvitations implements auth.Store.
func (db *DB) AuthInvitations(ctx context.Context) ([]auth.JoinToken, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+joinTokenColumns+` FROM account_join_tokens
		WHERE NOT setup AND used_at IS NULL ORDER BY email, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading invitations: %w", err)
	}
	defer rows.Close()
	var out []auth.JoinToken
	for rows.Next() {
		j, err := scanJoinToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *j)
	}
	return out, rows.Err()
}

// AuthSession implements auth.Store.
func (db *DB) AuthSession(ctx context.Context, hash []byte) (*auth.SessionRecord, *auth.Account, error) {
	var s auth.SessionRecord
	var created, seen, ended int64
	a, err := scanAccount(db.pool.QueryRow(ctx, `SELECT a.id, a.email, a.name, a.role, a.policies, a.created_at, a.last_login, a.locked_until,
		s.id, s.created_at, s.last_seen, COALESCE(s.ended_at, 0)
		FROM account_sessions s JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = $1`, hash),
		&s.ID, &created, &seen, &ended)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	s.AccountID, s.CreatedAt, s.LastSeen, s.EndedAt = a.ID, unix(created), unix(seen), unix(ended)
	return &s, a, nil
}

// authTx implements auth.Tx on one PostgreSQL transaction.
type authTx struct{ et *enrolTx }

func (t *authTx) exec(q string, args ...any) (int64, error) {
	tag, err := t.et.tx.Exec(t.et.ctx, q, args...)
	return tag.RowsAffected(), err
}

func (t *authTx) queryRow(q string, args ...any) pgx.Row {
	return t.et.tx.QueryRow(t.et.ctx, q, args...)
}

// Audit implements auth.Tx.
func (t *authTx) Audit(e auth.Event) error {
	return t.et.AuditAll([]enrol.Event{{Actor: e.Actor, Action: e.Action, Object: e.Object, Detail: e.Detail}})
}

func (t *authTx) CountAccounts() (all, admins int, err error) {
	err = t.queryRow(`SELECT COUNT(*), COUNT(*) FILTER (WHERE role = 'administrator') FROM accounts`).Scan(&all, &admins)
	return all, admins, err
}

func (t *authTx) Account(id int64) (*auth.Account, error) {
	a, err := scanAccount(t.queryRow(`SELECT `+accountColumns+` FROM accounts WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	return a, err
}

func (t *authTx) AccountByEmail(email string) (*auth.Account, error) {
	a, err := scanAccount(t.queryRow(`SELECT `+accountColumns+` FROM accounts WHERE email = $1`, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	return a, err
}

// InsertAccount implements auth.Tx. ON CONFLICT DO NOTHING, rather than a
// failed insert, leaves the transaction usable after ErrDuplicate.
func (t *authTx) InsertAccount(a *auth.Account, passwordHash, totpSecret string, totpStep int64) error {
	err := t.queryRow(`INSERT INTO accounts (email, name, role, policies, password_hash, totp_secret, totp_step, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING id`,
		a.Email, a.Name, string(a.Role), policiesJSON(a.Policies), passwordHash, totpSecret, totpStep, a.CreatedAt.Unix()).Scan(&a.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("postgres: inserting account: %w", err)
	}
	return nil
}

func (t *authTx) SetRole(id int64, role auth.Role, policies []string) error {
	n, err := t.exec(`UPDATE accounts SET role = $1, policies = $2 WHERE id = $3`, string(role), policiesJSON(policies), id)
	if err != nil {
		return fmt.Errorf("postgres: setting role: %w", err)
	}
	if n != 1 {
		return auth.ErrNotFound
	}
	return nil
}

func (t *authTx) DeleteAccount(id int64) error {
	_, err := t.exec(`DELETE FROM accounts WHERE id = $1`, id)
	return err
}

func (t *authTx) InsertJoinToken(j *auth.JoinToken) error {
	_, err := t.exec(`INSERT INTO account_join_tokens (hash, email, role, policies, setup, created_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, j.Hash, j.Email, string(j.Role), policiesJSON(j.Policies), j.Setup, j.CreatedBy, j.CreatedAt.Unix(), j.ExpiresAt.Unix())
	return err
}

func (t *authTx) DeleteUnusedJoinTokens(setup bool, email string) (int, error) {
	var n int64
	var err error
	if setup {
		n, err = t.exec(`DELETE FROM account_join_tokens WHERE setup AND used_at IS NULL`)
	} else {
		n, err = t.exec(`DELETE FROM account_join_tokens WHERE NOT setup AND email = $1 AND used_at IS NULL`, email)
	}
	return int(n), err
}

func (t *authTx) DeleteJoinTokensBy(createdBy string) (int, error) {
	n, err := t.exec(`DELETE FROM account_join_tokens WHERE NOT setup AND created_by = $1 AND used_at IS NULL`, createdBy)
	return int(n), err
}

func (t *authTx) DeleteInvitation(id int64) (*auth.JoinToken, error) {
	j, err := scanJoinToken(t.queryRow(`DELETE FROM account_join_tokens WHERE id = $1 AND NOT setup AND used_at IS NULL
		RETURNING `+joinTokenColumns, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	return j, err
}

func (t *authTx) UseJoinToken(hash []byte, now time.Time) (*auth.JoinToken, error) {
	j, err := scanJoinToken(t.queryRow(`UPDATE account_join_tokens SET used_at = $1
		WHERE hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING `+joinTokenColumns, now.Unix(), hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	return j, err
}

func (t *authTx) AcceptLogin(id, step int64, now time.Time) (bool, error) {
	n, err := t.exec(`UPDATE accounts SET totp_step = $1, last_login = $2 WHERE id = $3 AND totp_step < $1 AND locked_until <= $2`,
		step, now.Unix(), id)
	return n == 1, err
}

func (t *authTx) AddFailure(id int64, now, since time.Time) (int, error) {
	// The account's row lock orders concurrent attempts: each counts the
	// failures of those before it, committed or not yet.
	if _, err := t.exec(`SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE`, id); err != nil {
		return 0, err
	}
	if _, err := t.exec(`INSERT INTO account_login_failures (account_id, at) VALUES ($1, $2)`, id, now.Unix()); err != nil {
		return 0, err
	}
	// Failures before since will never count again: keep the table small
	// for an account under a slow, steady attack.
	if _, err := t.exec(`DELETE FROM account_login_failures WHERE account_id = $1 AND at <= $2`, id, since.Unix()); err != nil {
		return 0, err
	}
	var n int
	err := t.queryRow(`SELECT COUNT(*) FROM account_login_failures WHERE account_id = $1 AND at > $2`, id, since.Unix()).Scan(&n)
	return n, err
}

func (t *authTx) ClearFailures(id int64) error {
	_, err := t.exec(`DELETE FROM account_login_failures WHERE account_id = $1`, id)
	return err
}

func (t *authTx) Lock(id int64, until time.Time) error {
	var at int64
	if !until.IsZero() {
		at = until.Unix()
	}
	_, err := t.exec(`UPDATE accounts SET locked_until = $1 WHERE id = $2`, at, id)
	return err
}

func (t *authTx) InsertSession(s *auth.SessionRecord, tokenHash []byte) error {
	return t.queryRow(`INSERT INTO account_sessions (token_hash, account_id, created_at, last_seen) VALUES ($1, $2, $3, $4) RETURNING id`,
		tokenHash, s.AccountID, s.CreatedAt.Unix(), s.LastSeen.Unix()).Scan(&s.ID)
}

func (t *authTx) TouchSession(id int64, at time.Time) error {
	_, err := t.exec(`UPDATE account_sessions SET last_seen = $1 WHERE id = $2 AND last_seen < $1`, at.Unix(), id)
	return err
}

func (t *authTx) EndSession(hash []byte, now time.Time) (*auth.SessionRecord, error) {
	var s auth.SessionRecord
	var created, seen int64
	err := t.queryRow(`UPDATE account_sessions SET ended_at = $1 WHERE token_hash = $2 AND ended_at IS NULL
		RETURNING id, account_id, created_at, last_seen`, now.Unix(), hash).Scan(&s.ID, &s.AccountID, &created, &seen)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	s.CreatedAt, s.LastSeen, s.EndedAt = unix(created), unix(seen), now
	return &s, nil
}

func (t *authTx) EndSessions(accountID int64, now time.Time) (int, error) {
	n, err := t.exec(`UPDATE account_sessions SET ended_at = $1 WHERE account_id = $2 AND ended_at IS NULL`, now.Unix(), accountID)
	return int(n), err
}

func (t *authTx) PurgeSessions(accountID int64, before time.Time) error {
	_, err := t.exec(`DELETE FROM account_sessions WHERE account_id = $1 AND (ended_at < $2 OR last_seen < $2)`,
		accountID, before.Unix())
	return err
}
