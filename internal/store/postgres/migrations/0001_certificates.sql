-- Certificates, from the reservation of their serial to their signature.
-- A row is written before the real key signs (state 'reserved', with the
-- lint certificate), so that a serial is never used twice and every signed
-- certificate can be accounted for even if the process dies mid-issuance.
--
-- Times are bigint Unix seconds (audit: nanoseconds), as in the SQLite
-- schema, so that both stores hand the same values to Go. Text that is
-- ordered or compared by range uses the "C" collation: bytewise, as SQLite.
CREATE TABLE certificates (
    serial      text COLLATE "C" PRIMARY KEY, -- lower-case hex, no leading zeros
    issuer_id   text NOT NULL,
    state       text NOT NULL CHECK (state IN ('reserved', 'refused', 'issued')),
    profile     text NOT NULL,
    mailbox     text COLLATE "C" NOT NULL,
    spki_sha256 bytea NOT NULL,
    not_before  bigint NOT NULL,
    not_after   bigint NOT NULL,
    lint_der    bytea NOT NULL,
    der         bytea,
    refusal     text,
    created_at  bigint NOT NULL,
    issued_at   bigint
);

-- One key, one certificate: a key may not be certified twice, except that a
-- reservation refused by the linter frees its key.
CREATE UNIQUE INDEX certificates_spki ON certificates (spki_sha256) WHERE state <> 'refused';
CREATE INDEX certificates_mailbox ON certificates (mailbox);

-- Keys that may never be certified: the CA's own keys, and keys reported
-- compromised.
CREATE TABLE blocked_keys (
    spki_sha256 bytea PRIMARY KEY,
    reason      text NOT NULL,
    created_at  bigint NOT NULL
);
