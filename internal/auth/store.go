package auth

import (
	"context"
	"errors"
	"time"
)

// Store keeps accounts, join tokens, sessions and login failures. Reads
// outside a transaction may be slightly stale; every decision that changes
// state is taken again inside AuthTx.
type Store interface {
	// AuthTx runs fn in one transaction, committed when fn returns nil:
	// a state change and its audit event commit together or not at all.
	// (enrol.Store's InTx under another name, so that one store can serve
	// both.)
	AuthTx(ctx context.Context, fn func(Tx) error) error

	// AuthCountAccounts returns how many accounts exist.
	AuthCountAccounts(ctx context.Context) (int, error)
	// AuthAccounts returns every account, ordered by email.
	AuthAccounts(ctx context.Context) ([]Account, error)
	// AuthAccount returns the account with this id; ErrNotFound.
	AuthAccount(ctx context.Context, id int64) (*Account, error)
	// AuthCredentials returns the account with this (lower-case) email
	// and its secrets; ErrNotFound.
	AuthCredentials(ctx context.Context, email string) (*Credentials, error)
	// AuthInvitations returns the unused invitations (not setup tokens),
	// expired or not, ordered by email.
	AuthInvitations(ctx context.Context) ([]JoinToken, error)
	// AuthJoinToken returns the join token with this hash, used or not;
	// ErrNotFound.
	AuthJoinToken(ctx context.Context, hash []byte) (*JoinToken, error)
	// AuthSession returns the session with this token hash and its
	// account as it is now; ErrNotFound, also when the account is gone.
	AuthSession(ctx context.Context, hash []byte) (*SessionRecord, *Account, error)
	// AuthKey returns the key stored under name, storing fresh first when
	// there is none: every process on the database gets the same key.
	AuthKey(ctx context.Context, name string, fresh []byte) ([]byte, error)
}

// Tx is the work on accounts done inside one transaction.
type Tx interface {
	// Audit appends e to the audit log's hash chain.
	Audit(e Event) error

	// CountAccounts returns how many accounts exist and how many of them
	// are administrators.
	CountAccounts() (all, admins int, err error)
	// Account returns the account with this id; ErrNotFound.
	Account(id int64) (*Account, error)
	// AccountByEmail returns the account with this email; ErrNotFound.
	AccountByEmail(email string) (*Account, error)
	// InsertAccount stores a new account and sets a.ID; ErrDuplicate
	// when its email is taken.
	InsertAccount(a *Account, passwordHash, totpSecret string, totpStep int64) error
	// SetRole changes an account's role and policies; ErrNotFound.
	// Policies are stored as given: [AllPolicies] is one name.
	SetRole(id int64, role Role, policies []string) error
	// DeleteAccount deletes the account with its sessions and failures.
	DeleteAccount(id int64) error

	// InsertJoinToken stores a join token.
	InsertJoinToken(t *JoinToken) error
	// DeleteUnusedJoinTokens deletes the unused setup tokens (setup) or
	// the unused invitations of email, and returns how many.
	DeleteUnusedJoinTokens(setup bool, email string) (int, error)
	// DeleteJoinTokensBy deletes the unused invitations whose CreatedBy is
	// createdBy, and returns how many.
	DeleteJoinTokensBy(createdBy string) (int, error)
	// DeleteInvitation deletes the unused invitation (not a setup token)
	// with this id and returns it; ErrNotFound.
	DeleteInvitation(id int64) (*JoinToken, error)
	// UseJoinToken marks the token with this hash used at now, if it is
	// unused and unexpired, and returns it; ErrNotFound otherwise.
	UseJoinToken(hash []byte, now time.Time) (*JoinToken, error)

	// AcceptLogin records a successful login at now with TOTP time step
	// step, if step is later than the last accepted step and the account
	// is not locked at now; false otherwise.
	AcceptLogin(id, step int64, now time.Time) (bool, error)
	// AddFailure records a failed login at now and returns how many
	// failures of the account are later than since.
	AddFailure(id int64, now, since time.Time) (int, error)
	// ClearFailures forgets the account's failed logins.
	ClearFailures(id int64) error
	// Lock refuses logins to the account until until; the zero time
	// unlocks it.
	Lock(id int64, until time.Time) error

	// InsertSession stores a new session and sets s.ID.
	InsertSession(s *SessionRecord, tokenHash []byte) error
	// TouchSession sets a session's last-seen time.
	TouchSession(id int64, at time.Time) error
	// EndSession ends the live session with this token hash at now and
	// returns it; ErrNotFound when there is none.
	EndSession(hash []byte, now time.Time) (*SessionRecord, error)
	// EndSessions ends every live session of the account at now and
	// returns how many there were.
	EndSessions(accountID int64, now time.Time) (int, error)
	// PurgeSessions deletes the account's sessions that ended, or were last
	// seen, before before.
	PurgeSessions(accountID int64, before time.Time) error
}

// Store errors.
var (
	ErrNotFound  = errors.New("auth: not found")
	ErrDuplicate = errors.New("auth: duplicate")
)

// Credentials is an account with its secrets, as stored.
type Credentials struct {
	Account
	PasswordHash string // argon2id, PHC string format
	TOTPSecret   string // base32
	TOTPStep     int64  // the last accepted TOTP time step
}

// JoinToken is a one-time link to create an account, stored by the hash of
// its token.
type JoinToken struct {
	ID        int64 // set by the store
	Hash      []byte
	Email     string // "" for a setup token
	Role      Role
	Policies  []string
	Setup     bool
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
}

// SessionRecord is a console session as stored; its token is stored only
// as a SHA-256 hash.
type SessionRecord struct {
	ID        int64
	AccountID int64
	CreatedAt time.Time
	LastSeen  time.Time
	EndedAt   time.Time // zero while live
}

// Event is an audit event about accounts. Detail never holds a password,
// TOTP code or secret, or token.
type Event struct {
	Actor  string // "console:ann@example.org", "cli", "system"
	Action string // "account.login", ...
	Object string // "account:ann@example.org"
	Detail string
}
