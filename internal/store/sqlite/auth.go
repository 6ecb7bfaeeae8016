package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mailca/mailca/internal/auth"
	"github.com/mailca/mailca/internal/enrol"
)

var _ auth.Store = (*DB)(nil)

// AuthTx implements auth.Store. Its audit events are appended by the
// enrolment transaction's AuditAll: one hash chain, one code path.
func (db *DB) AuthTx(ctx context.Context, fn func(auth.Tx) error) error {
	return db.stmtTx(ctx, func(ts *txStmts) error {
		return fn(&authTx{et: &enrolTx{txStmts: ts, now: db.now}})
	})
}

// AuthKey implements auth.Store.
func (db *DB) AuthKey(ctx context.Context, name string, fresh []byte) ([]byte, error) {
	var key []byte
	err := db.stmtTx(ctx, func(ts *txStmts) error {
		if _, err := ts.exec(`INSERT INTO auth_keys (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
			return err
		}
		return ts.queryRow(`SELECT value FROM auth_keys WHERE name = ?`, name).Scan(&key)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: auth key: %w", err)
	}
	return key, nil
}

const accountColumns = `id, email, name, role, policies, created_at, last_login, locked_until`

func scanAccount(scan func(...any) error, extra ...any) (*auth.Account, error) {
	var a auth.Account
	var policies string
	var created, last, locked int64
	if err := scan(append([]any{&a.ID, &a.Email, &a.Name, &a.Role, &policies, &created, &last, &locked}, extra...)...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(policies), &a.Policies); err != nil {
		return nil, fmt.Errorf("sqlite: account %d policies: %w", a.ID, err)
	}
	if len(a.Policies) == 0 {
		a.Policies = nil
	}
	a.CreatedAt, a.LastLogin, a.LockedUntil = unix(created), unix(last), unix(locked)
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
	if err := db.readRow(ctx, `SELECT COUNT(*) FROM accounts`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: counting accounts: %w", err)
	}
	return n, nil
}

// AuthAccounts implements auth.Store.
func (db *DB) AuthAccounts(ctx context.Context) ([]auth.Account, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading accounts: %w", err)
	}
	defer rows.Close()
	var out []auth.Account
	for rows.Next() {
		a, err := scanAccount(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}

// AuthAccount implements auth.Store.
func (db *DB) AuthAccount(ctx context.Context, id int64) (*auth.Account, error) {
	a, err := scanAccount(db.readRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = ?`, id).Scan)
	if isNoRows(err) {
		return nil, auth.ErrNotFound
	}
	return a, err
}

// AuthCredentials implements auth.Store.
func (db *DB) AuthCredentials(ctx context.Context, email string) (*auth.Credentials, error) {
	var c auth.Credentials
	a, err := scanAccount(db.readRow(ctx, `SELECT `+accountColumns+`, password_hash, totp_secret, totp_step
		FROM accounts WHERE email = ?`, email).Scan, &c.PasswordHash, &c.TOTPSecret, &c.TOTPStep)
	if isNoRows(err) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c.Account = *a
	return &c, nil
}

const joinTokenColumns = `id, hash, email, role, policies, setup, created_by, created_at, expires_at, COALESCE(used_at, 0)`

func scanJoinToken(scan func(...any) error) (*auth.JoinToken, error) {
	var t auth.JoinToken
	var policies string
	var created, expires, used int64
	if err := scan(&t.ID, &t.Hash, &t.Email, &t.Role, &policies, &t.Setup, &t.CreatedBy, &created, &expires, &used); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(policies), &t.Policies); err != nil {
		return nil, fmt.Errorf("sqlite: join token policies: %w", err)
	}
	if len(t.Policies) == 0 {
		t.Policies = nil
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = unix(created), unix(expires), unix(used)
	return &t, nil
}

// AuthJoinToken implements auth.Store.
func (db *DB) AuthJoinToken(ctx context.Context, hash []byte) (*auth.JoinToken, error) {
	t, err := scanJoinToken(db.readRow(ctx, `SELECT `+joinTokenColumns+` FROM account_join_tokens WHERE hash = ?`, hash).Scan)
	if isNoRows(err) {
		return nil, auth.ErrNotFound
	}
	return t, err
}

// AuthInvitations implements auth.Store.
func (db *DB) AuthInvitations(ctx context.Context) ([]auth.JoinToken, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+joinTokenColumns+` FROM account_join_tokens
		WHERE setup = 0 AND used_at IS NULL ORDER BY email, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading invitations: %w", err)
	}
	defer rows.Close()
	var out []auth.JoinToken
	for rows.Next() {
		j, err := scanJoinToken(rows.Scan)
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
	a, err := scanAccount(db.readRow(ctx, `SELECT a.id, a.email, a.name, a.role, a.policies, a.created_at, a.last_login, a.locked_until,
		s.id, s.created_at, s.last_seen, COALESCE(s.ended_at, 0)
		FROM account_sessions s JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = ?`, hash).Scan,
		&s.ID, &created, &seen, &ended)
	if isNoRows(err) {
		return nil, nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	s.AccountID, s.CreatedAt, s.LastSeen, s.EndedAt = a.ID, unix(created), unix(seen), unix(ended)
	return &s, a, nil
}

// authTx implements auth.Tx on one SQLite transaction.
type authTx struct{ et *enrolTx }

// Audit implements auth.Tx.
func (t *authTx) Audit(e auth.Event) error {
	return t.et.AuditAll([]enrol.Event{{Actor: e.Actor, Action: e.Action, Object: e.Object, Detail: e.Detail}})
}

func (t *authTx) CountAccounts() (all, admins int, err error) {
	err = t.et.queryRow(`SELECT COUNT(*), COUNT(*) FILTER (WHERE role = 'administrator') FROM accounts`).Scan(&all, &admins)
	return all, admins, err
}

func (t *authTx) Account(id int64) (*auth.Account, error) {
	a, err := scanAccount(t.et.queryRow(`SELECT `+accountColumns+` FROM accounts WHERE id = ?`, id).Scan)
	if isNoRows(err) {
		return nil, auth.ErrNotFound
	}
	return a, err
}

func (t *authTx) AccountByEmail(email string) (*auth.Account, error) {
	a, err := scanAccount(t.et.queryRow(`SELECT `+accountColumns+` FROM accounts WHERE email = ?`, email).Scan)
	if isNoRows(err) {
		return nil, auth.ErrNotFound
	}
	return a, err
}

func (t *authTx) InsertAccount(a *auth.Account, passwordHash, totpSecret string, totpStep int64) error {
	res, err := t.et.exec(`INSERT INTO accounts (email, name, role, policies, password_hash, totp_secret, totp_step, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.Email, a.Name, a.Role, policiesJSON(a.Policies), passwordHash, totpSecret, totpStep, a.CreatedAt.Unix())
	if constraint(err) == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
		return auth.ErrDuplicate
	}
	if err != nil {
		return fmt.Errorf("sqlite: inserting account: %w", err)
	}
	a.ID, err = res.LastInsertId()
	return err
}

func (t *authTx) SetRole(id int64, role auth.Role, policies []string) error {
	res, err := t.et.exec(`UPDATE accounts SET role = ?, policies = ? WHERE id = ?`, role, policiesJSON(policies), id)
	if err != nil {
		return fmt.Errorf("sqlite: setting role: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return auth.ErrNotFound
	}
	return nil
}

func (t *authTx) DeleteAccount(id int64) error {
	_, err := t.et.exec(`DELETE FROM accounts WHERE id = ?`, id)
	return err
}

func (t *authTx) InsertJoinToken(j *auth.JoinToken) error {
	_, err := t.et.exec(`INSERT INTO account_join_tokens (hash, email, role, policies, setup, created_by, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, j.Hash, j.Email, j.Role, policiesJSON(j.Policies), j.Setup, j.CreatedBy, j.CreatedAt.Unix(), j.ExpiresAt.Unix())
	return err
}

func (t *authTx) DeleteUnusedJoinTokens(setup bool, email string) (int, error) {
	var res sql.Result
	var err error
	if setup {
		res, err = t.et.exec(`DELETE FROM account_join_tokens WHERE setup = 1 AND used_at IS NULL`)
	} else {
		res, err = t.et.exec(`DELETE FROM account_join_tokens WHERE setup = 0 AND email = ? AND used_at IS NULL`, email)
	}
	return affected(res, err)
}

func (t *authTx) DeleteJoinTokensBy(createdBy string) (int, error) {
	return affected(t.et.exec(`DELETE FROM account_join_tokens WHERE setup = 0 AND created_by = ? AND used_at IS NULL`, createdBy))
}

func (t *authTx) DeleteInvitation(id int64) (*auth.JoinToken, error) {
	j, err := scanJoinToken(t.et.queryRow(`DELETE FROM account_join_tokens WHERE id = ? AND setup = 0 AND used_at IS NULL
		RETURNING `+joinTokenColumns, id).Scan)
	if isNoRows(err) {
		return nil, auth.ErrNotFound
	}
	return j, err
}

func affected(res sql.Result, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *authTx) UseJoinToken(hash []byte, now time.Time) (*auth.JoinToken, error) {
	j, err := scanJoinToken(t.et.queryRow(`UPDATE account_join_tokens SET used_at = ?
		WHERE hash = ? AND used_at IS NULL AND expires_at > ? RETURNING `+joinTokenColumns, now.Unix(), hash, now.Unix()).Scan)
	if isNoRows(err) {
		return nil, auth.ErrNotFound
	}
	return j, err
}

func (t *authTx) AcceptLogin(id, step int64, now time.Time) (bool, error) {
	res, err := t.et.exec(`UPDATE accounts SET totp_step = ?, last_login = ? WHERE id = ? AND totp_step < ? AND locked_until <= ?`,
		step, now.Unix(), id, step, now.Unix())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (t *authTx) AddFailure(id int64, now, since time.Time) (int, error) {
	// Failures before since will never count again: keep the table small
	// for an account under a slow, steady attack.
	if _, err := t.et.exec(`DELETE FROM account_login_failures WHERE account_id = ? AND at <= ?`, id, since.Unix()); err != nil {
		return 0, err
	}
	if _, err := t.et.exec(`INSERT INTO account_login_failures (account_id, at) VALUES (?, ?)`, id, now.Unix()); err != nil {
		return 0, err
	}
	var n int
	err := t.et.queryRow(`SELECT COUNT(*) FROM account_login_failures WHERE account_id = ? AND at > ?`, id, since.Unix()).Scan(&n)
	return n, err
}

func (t *authTx) ClearFailures(id int64) error {
	_, err := t.et.exec(`DELETE FROM account_login_failures WHERE account_id = ?`, id)
	return err
}

func (t *authTx) Lock(id int64, until time.Time) error {
	var at int64
	if !until.IsZero() {
		at = until.Unix()
	}
	_, err := t.et.exec(`UPDATE accounts SET locked_until = ? WHERE id = ?`, at, id)
	return err
}

func (t *authTx) InsertSession(s *auth.SessionRecord, tokenHash []byte) error {
	res, err := t.et.exec(`INSERT INTO account_sessions (token_hash, account_id, created_at, last_seen) VALUES (?, ?, ?, ?)`,
		tokenHash, s.AccountID, s.CreatedAt.Unix(), s.LastSeen.Unix())
	if err != nil {
		return err
	}
	s.ID, err = res.LastInsertId()
	return err
}

func (t *authTx) TouchSession(id int64, at time.Time) error {
	_, err := t.et.exec(`UPDATE account_sessions SET last_seen = ? WHERE id = ? AND last_seen < ?`, at.Unix(), id, at.Unix())
	return err
}

func (t *authTx) EndSession(hash []byte, now time.Time) (*auth.SessionRecord, error) {
	var s auth.SessionRecord
	var created, seen int64
	err := t.et.queryRow(`UPDATE account_sessions SET ended_at = ? WHERE token_hash = ? AND ended_at IS NULL
		RETURNING id, account_id, created_at, last_seen`, now.Unix(), hash).Scan(&s.ID, &s.AccountID, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, auth.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	s.CreatedAt, s.LastSeen, s.EndedAt = unix(created), unix(seen), now
	return &s, nil
}

func (t *authTx) EndSessions(accountID int64, now time.Time) (int, error) {
	res, err := t.et.exec(`UPDATE account_sessions SET ended_at = ? WHERE account_id = ? AND ended_at IS NULL`, now.Unix(), accountID)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *authTx) PurgeSessions(accountID int64, before time.Time) error {
	_, err := t.et.exec(`DELETE FROM account_sessions WHERE account_id = ? AND (ended_at < ? OR last_seen < ?)`,
		accountID, before.Unix(), before.Unix())
	return err
}
