-- The integration API: keys with which other systems call it, and the
-- webhook endpoints told of enrolment events.

-- Only the SHA-256 of a key is stored; id is its public part.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    hash       BLOB NOT NULL,
    scopes     TEXT NOT NULL,               -- comma-separated, sorted
    policies   TEXT NOT NULL DEFAULT '',    -- comma-separated; empty means every policy
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL DEFAULT 0,  -- 0: never
    revoked_at INTEGER NOT NULL DEFAULT 0   -- 0: not revoked
) STRICT;

-- A webhook endpoint follows the audit chain from its cursor (the last
-- audit sequence number it has queued deliveries for). The secret signs
-- each delivery, so it is kept as given.
CREATE TABLE webhook_endpoints (
    id         INTEGER PRIMARY KEY,
    policy     TEXT NOT NULL,
    url        TEXT NOT NULL,
    secret     BLOB NOT NULL,
    cursor     INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    removed_at INTEGER NOT NULL DEFAULT 0
) STRICT;

-- One row per event and endpoint: the unique key makes a second queueing
-- of the same event impossible; the lease makes two nodes never send it at
-- the same time.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    endpoint_id     INTEGER NOT NULL REFERENCES webhook_endpoints (id),
    seq             INTEGER NOT NULL,
    event           TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    UNIQUE (endpoint_id, seq)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
