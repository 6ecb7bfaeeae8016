-- Administrator accounts of the RA Management Console (internal/auth).
-- Passwords are argon2id hashes; join and session tokens are stored only
-- as SHA-256 hashes. Policies is a JSON array of policy names (an
-- officer's scope): ["*"] is every policy, and empty is none.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('administrator', 'officer', 'auditor')),
    policies      TEXT NOT NULL DEFAULT '[]',
    password_hash TEXT NOT NULL,
    totp_secret   TEXT NOT NULL,
    totp_step     INTEGER NOT NULL DEFAULT 0, -- last accepted TOTP time step: a code is used once
    locked_until  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    last_login    INTEGER NOT NULL DEFAULT 0
) STRICT;

-- One-time links to create an account: an invitation for an email, or the
-- setup link of the first administrator (setup = 1, email '').
CREATE TABLE account_join_tokens (
    id         INTEGER PRIMARY KEY,
    hash       BLOB NOT NULL UNIQUE,
    email      TEXT NOT NULL,
    role       TEXT NOT NULL,
    policies   TEXT NOT NULL DEFAULT '[]',
    setup      INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX account_join_tokens_email ON account_join_tokens (email) WHERE used_at IS NULL;

CREATE TABLE account_sessions (
    id         INTEGER PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    ended_at   INTEGER
) STRICT;
CREATE INDEX account_sessions_account ON account_sessions (account_id);

-- Failed logins of known accounts, for the lockout; cleared by a login.
CREATE TABLE account_login_failures (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    at         INTEGER NOT NULL
) STRICT;
CREATE INDEX account_login_failures_account ON account_login_failures (account_id, at);

-- Keys the accounts code shares between the processes on this database:
-- the one that seals a join form's TOTP secret to its join link, so that
-- any node can check a form another node served.
CREATE TABLE auth_keys (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
