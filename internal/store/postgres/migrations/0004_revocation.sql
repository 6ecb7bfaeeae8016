-- Revocation. A revoked certificate stays in state 'issued' (it was
-- issued, and its serial and key stay taken) and gains the time, the
-- RFC 5280 CRLReason code and its place in the issuer's sequence of
-- revocations, which lets a server see what other processes revoked.
ALTER TABLE certificates ADD COLUMN revoked_at bigint;               -- Unix seconds; NULL while not revoked
ALTER TABLE certificates ADD COLUMN revocation_reason integer         -- CRLReason: 0, 1, 3, 4, 5 or 9
    CHECK (revocation_reason IN (0, 1, 3, 4, 5, 9));
ALTER TABLE certificates ADD COLUMN revocation_seq bigint;            -- issuer_counters.revocation_seq when revoked

-- Serves both the CRL (every revoked certificate of an issuer) and the
-- feed of revocations after a given sequence number.
CREATE INDEX certificates_revoked ON certificates (issuer_id, revocation_seq)
    INCLUDE (not_after, revoked_at, revocation_reason, serial)
    WHERE revoked_at IS NOT NULL;

-- Per issuing CA, the counters that must only ever grow, across restarts
-- and across nodes: each is taken with an INSERT ... ON CONFLICT DO UPDATE
-- ... RETURNING, which holds the row's lock until the transaction ends.
CREATE TABLE issuer_counters (
    issuer_id      text PRIMARY KEY,
    crl_number     bigint NOT NULL DEFAULT 0,  -- the last CRL number handed out
    revocation_seq bigint NOT NULL DEFAULT 0   -- the last revocation
);

-- The newest CRL of each issuing CA, as served at /crl/<issuer>.crl.
CREATE TABLE crls (
    issuer_id      text PRIMARY KEY,
    number         bigint NOT NULL,
    this_update    bigint NOT NULL,            -- Unix seconds
    next_update    bigint NOT NULL,
    revocation_seq bigint NOT NULL,            -- every revocation up to this one is in the list
    entries        bigint NOT NULL,
    der            bytea NOT NULL
);

-- Revoking finds the enrolment of a certificate by its serial.
CREATE INDEX enrolments_serial ON enrolments (serial) WHERE serial IS NOT NULL;
