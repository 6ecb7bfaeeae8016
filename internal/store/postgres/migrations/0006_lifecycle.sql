-- Periodic jobs of 'mailca serve' (expiry, reminders, digest). A node runs
-- a job only after claiming its row (SELECT ... FOR UPDATE SKIP LOCKED, then
-- a conditional update on the lease), so several nodes sharing one database
-- never run the same job at once; a node that dies holding a lease leaves
-- it to expire, and the next claim runs the job again.
CREATE TABLE jobs (
    name        text COLLATE "C" PRIMARY KEY,
    holder      text NOT NULL DEFAULT '',   -- random token of the claim in force
    lease_until bigint NOT NULL DEFAULT 0,  -- Unix seconds
    last_run    bigint NOT NULL DEFAULT 0,  -- end of the last successful run
    next_run    bigint NOT NULL DEFAULT 0   -- not claimed before this
);

-- Expiry reminders sent: at most one per certificate and threshold, however
-- often and on however many nodes the reminder job runs. A row is written
-- in the transaction that enqueues the email.
CREATE TABLE reminders_sent (
    serial  text COLLATE "C" NOT NULL REFERENCES certificates (serial),
    days    integer NOT NULL,
    sent_at bigint NOT NULL,
    PRIMARY KEY (serial, days)
);

-- The reminder and expiry jobs look for certificates by their end.
CREATE INDEX certificates_not_after ON certificates (not_after) WHERE state = 'issued';
CREATE INDEX enrolments_invited_expiry ON enrolments (expires_at) WHERE state = 'invited';

-- A renewal is a new enrolment for the mailbox of an issued certificate,
-- which stays valid meanwhile: renewals are outside the one-live-enrolment
-- rule, and instead each certificate has at most one renewal live.
ALTER TABLE enrolments ADD COLUMN renewal_of text COLLATE "C" REFERENCES certificates (serial);
DROP INDEX enrolments_live;
CREATE UNIQUE INDEX enrolments_live ON enrolments (policy, mailbox_key)
    WHERE state IN ('invited', 'submitted', 'approved', 'issued') AND renewal_of IS NULL;
CREATE UNIQUE INDEX enrolments_renewal ON enrolments (renewal_of)
    WHERE state IN ('invited', 'submitted', 'approved', 'issued') AND renewal_of IS NOT NULL;
