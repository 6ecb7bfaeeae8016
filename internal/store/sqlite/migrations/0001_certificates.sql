-- Certificates, from the reservation of their serial to their signature.
-- A row is written before the real key signs (state 'reserved', with the
-- lint certificate), so that a serial is never used twice and every signed
-- certificate can be accounted for even if the process dies mid-issuance.
CREATE TABLE certificates (
    serial      TEXT PRIMARY KEY,            -- lower-case hex, no leading zeros
    issuer_id   TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('reserved', 'refused', 'issued')),
    profile     TEXT NOT NULL,
    mailbox     TEXT NOT NULL,
    spki_sha256 BLOB NOT NULL,
    not_before  INTEGER NOT NULL,            -- Unix seconds
    not_after   INTEGER NOT NULL,
    lint_der    BLOB NOT NULL,
    der         BLOB,
    refusal     TEXT,
    created_at  INTEGER NOT NULL,
    issued_at   INTEGER
) STRICT;

-- One key, one certificate: a key may not be certified twice, except that a
-- reservation refused by the linter frees its key.
CREATE UNIQUE INDEX certificates_spki ON certificates (spki_sha256) WHERE state <> 'refused';
CREATE INDEX certificates_mailbox ON certificates (mailbox);

-- Keys that may never be certified: the CA's own keys, and keys reported
-- compromised.
CREATE TABLE blocked_keys (
    spki_sha256 BLOB PRIMARY KEY,
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
