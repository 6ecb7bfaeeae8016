-- Self-service revocation: the "issued" email carries a link with which the
-- subscriber can revoke their own certificate. Only the SHA-256 of its
-- token is stored; it works until the certificate expires.
CREATE TABLE revocation_links (
    hash       BLOB PRIMARY KEY,
    serial     TEXT NOT NULL REFERENCES certificates (serial),
    mailbox    TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
