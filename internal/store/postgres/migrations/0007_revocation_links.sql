-- Self-service revocation: the "issued" email carries a link with which the
-- subscriber can revoke their own certificate. Only the SHA-256 of its
-- token is stored; it works until the certificate expires.
CREATE TABLE revocation_links (
    hash       bytea PRIMARY KEY,
    serial     text COLLATE "C" NOT NULL REFERENCES certificates (serial),
    mailbox    text NOT NULL,
    expires_at bigint NOT NULL,
    created_at bigint NOT NULL
);
