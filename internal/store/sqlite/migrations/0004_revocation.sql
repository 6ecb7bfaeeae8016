-- Revocation. A revoked certificate stays in state 'issued' (it was
-- issued, and its serial and key stay taken) and gains the time, the
-- RFC 5280 CRLReason code and its place in the issuer's sequence of
-- revocations, which lets a server see what other processes revoked.
ALTER TABLE certificates ADD COLUMN revoked_at INTEGER;              -- Unix seconds; NULL while not revoked
ALTER TABLE certificates ADD COLUMN revocation_reason INTEGER        -- CRLReason: 0, 1, 3, 4, 5 or 9
    CHECK (revocation_reason IN (0, 1, 3, 4, 5, 9));
ALTER TABLE certificates ADD COLUMN revocation_seq INTEGER;          -- issuer_counters.revocation_seq when revoked

-- Serves both the CRL (every revoked certificate of an issuer) and the
-- feed of revocations after a given sequence number. It covers the
-- columns the CRL reads, so a list of a million entries is one index scan.
CREATE INDEX certificates_revoked ON certificates (issuer_id, revocation_seq, not_after, revoked_at, revocation_reason, serial)
    WHERE revoked_at IS NOT NULL;

-- Per issuing CA, the counters that must only ever grow, across restarts
-- and, with a shared database, across nodes: each is taken with an
-- UPDATE ... RETURNING inside a transaction.
CREATE TABLE issuer_counters (
    issuer_id      TEXT PRIMARY KEY,
    crl_number     INTEGER NOT NULL DEFAULT 0,  -- the last CRL number handed out
    revocation_seq INTEGER NOT NULL DEFAULT 0   -- the last revocation
) STRICT;

-- The newest CRL of each issuing CA, as served at /crl/<issuer>.crl.
CREATE TABLE crls (
    issuer_id      TEXT PRIMARY KEY,
    number         INTEGER NOT NULL,
    this_update    INTEGER NOT NULL,            -- Unix seconds
    next_update    INTEGER NOT NULL,
    revocation_seq INTEGER NOT NULL,            -- every revocation up to this one is in the list
    entries        INTEGER NOT NULL,
    der            BLOB NOT NULL
) STRICT;

-- Revoking finds the enrolment of a certificate by its serial.
CREATE INDEX enrolments_serial ON enrolments (serial) WHERE serial IS NOT NULL;
