-- Enrolment policies, one row per version; the newest version is current.
CREATE TABLE policy_versions (
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT NOT NULL,               -- JSON of enrol.Policy
    actor      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
) STRICT;

CREATE TABLE batches (
    id         INTEGER PRIMARY KEY,
    policy     TEXT NOT NULL,
    filename   TEXT NOT NULL,
    actor      TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('importing', 'done', 'failed')),
    rows       INTEGER NOT NULL DEFAULT 0,
    invited    INTEGER NOT NULL DEFAULT 0,
    refused    INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    done_at    INTEGER
) STRICT;

CREATE TABLE enrolments (
    id             INTEGER PRIMARY KEY,
    policy         TEXT NOT NULL,
    policy_version INTEGER NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('invited', 'submitted', 'approved', 'issued', 'expired', 'cancelled', 'rejected', 'revoked')),
    rev            INTEGER NOT NULL DEFAULT 0,
    channel        TEXT NOT NULL,
    mailbox        TEXT NOT NULL,
    mailbox_key    TEXT NOT NULL,
    given_name     TEXT NOT NULL DEFAULT '',
    surname        TEXT NOT NULL DEFAULT '',
    fields         TEXT NOT NULL DEFAULT '{}',  -- JSON object of custom fields
    batch_id       INTEGER REFERENCES batches (id),
    invited_by     TEXT NOT NULL DEFAULT '',
    terms_version  TEXT NOT NULL DEFAULT '',
    serial         TEXT REFERENCES certificates (serial),
    reason         TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    submitted_at   INTEGER,
    decided_at     INTEGER,
    issued_at      INTEGER,
    expires_at     INTEGER,
    FOREIGN KEY (policy, policy_version) REFERENCES policy_versions (name, version)
) STRICT;

-- One live enrolment per person and policy: the constraint that makes an
-- uploaded file invite nobody twice, however often it is uploaded.
CREATE UNIQUE INDEX enrolments_live ON enrolments (policy, mailbox_key)
    WHERE state IN ('invited', 'submitted', 'approved', 'issued');
CREATE INDEX enrolments_state ON enrolments (state, id);
CREATE INDEX enrolments_mailbox ON enrolments (mailbox, id);
CREATE INDEX enrolments_batch ON enrolments (batch_id, id);

CREATE TABLE approvals (
    enrolment_id INTEGER NOT NULL REFERENCES enrolments (id),
    approver     TEXT NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (enrolment_id, approver)
) STRICT;

-- Links carry a random token; only its SHA-256 is stored.
CREATE TABLE links (
    hash         BLOB PRIMARY KEY,
    purpose      TEXT NOT NULL CHECK (purpose IN ('invitation', 'verification', 'activation')),
    enrolment_id INTEGER NOT NULL REFERENCES enrolments (id),
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
) STRICT;
CREATE INDEX links_enrolment ON links (enrolment_id);

-- How each mailbox was validated (S/MIME BR 3.2.2.2).
CREATE TABLE validations (
    id           INTEGER PRIMARY KEY,
    enrolment_id INTEGER NOT NULL REFERENCES enrolments (id),
    mailbox      TEXT NOT NULL,
    method       TEXT NOT NULL,
    br_version   TEXT NOT NULL,
    at           INTEGER NOT NULL
) STRICT;

CREATE TABLE referrals_used (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;

-- The transactional outbox: a row is written in the transaction that
-- decides to send, and delivered after it commits. Data may hold link
-- tokens, so it is erased once the message is delivered.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    template        TEXT NOT NULL,
    template_set    TEXT NOT NULL DEFAULT '',
    recipient       TEXT NOT NULL,
    enrolment_id    INTEGER,
    data            TEXT,                     -- JSON; NULL once sent
    message_id      TEXT NOT NULL UNIQUE,     -- fixed at enqueue time, so a retry carries the same one
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
) STRICT;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- The audit log: append-only, each row chained to the previous by hash.
CREATE TABLE audit_events (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,               -- Unix nanoseconds
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    object    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
) STRICT;
