-- The RA console's lists (internal/web/console, queries in console_lists.go).
-- Each list query walks one index in the order the page shows it, so that
-- a page costs the same at the first row and at the millionth, and no
-- query sorts. Newest-first lists without a filter walk the rowid; the
-- state filter uses enrolments_state; certificates by mailbox use
-- certificates_mailbox and by serial the primary key.

-- Invitations of one policy, and of one policy in one state, newest first.
CREATE INDEX enrolments_policy ON enrolments (policy, id);
CREATE INDEX enrolments_policy_state ON enrolments (policy, state, id);
-- Search by mailbox (the folded key, so case does not matter) and by
-- surname, then given name. SQLite's lower() folds ASCII only, so the
-- names' keys are folded by the store (store.NameKey) and written with
-- the row. Rows of older versions get lower() here, right for ASCII
-- names; the migration's Go step (foldNames in console_keys.go) folds the
-- others.
ALTER TABLE enrolments ADD COLUMN surname_key TEXT NOT NULL DEFAULT '';
ALTER TABLE enrolments ADD COLUMN given_name_key TEXT NOT NULL DEFAULT '';
UPDATE enrolments SET surname_key = lower(surname), given_name_key = lower(given_name);
CREATE INDEX enrolments_mailbox_key ON enrolments (mailbox_key, id);
CREATE INDEX enrolments_surname ON enrolments (surname_key, id);
-- The Authorization Panel's queue: applications waiting for approval,
-- oldest submission first; small, since only submitted rows are in it.
CREATE INDEX enrolments_queue ON enrolments (submitted_at, id) WHERE state = 'submitted';
CREATE INDEX enrolments_policy_queue ON enrolments (policy, submitted_at, id) WHERE state = 'submitted';

-- The dashboard's counts per policy and state, kept by triggers, so that
-- the page reads a few dozen rows rather than counting every enrolment.
-- A trigger costs each insert and each change of state one update of a
-- row of this small table (docs/performance.md).
CREATE TABLE enrolment_counts (
    policy TEXT NOT NULL,
    state  TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (policy, state)
) STRICT, WITHOUT ROWID;
INSERT INTO enrolment_counts (policy, state, n)
    SELECT policy, state, COUNT(*) FROM enrolments GROUP BY policy, state;
CREATE TRIGGER enrolment_counts_insert AFTER INSERT ON enrolments BEGIN
    INSERT INTO enrolment_counts (policy, state, n) VALUES (NEW.policy, NEW.state, 1)
        ON CONFLICT (policy, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER enrolment_counts_update AFTER UPDATE OF policy, state ON enrolments
    WHEN OLD.policy IS NOT NEW.policy OR OLD.state IS NOT NEW.state BEGIN
    UPDATE enrolment_counts SET n = n - 1 WHERE policy = OLD.policy AND state = OLD.state;
    INSERT INTO enrolment_counts (policy, state, n) VALUES (NEW.policy, NEW.state, 1)
        ON CONFLICT (policy, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER enrolment_counts_delete AFTER DELETE ON enrolments BEGIN
    UPDATE enrolment_counts SET n = n - 1 WHERE policy = OLD.policy AND state = OLD.state;
END;

-- An enrolment's history (its audit events) and validation record.
CREATE INDEX IF NOT EXISTS audit_events_object ON audit_events (object, seq);
-- The audit log's filters (AuditFilter), newest first: by action and by
-- actor each walk their index in sequence order; a time range is a range
-- of at. Three more entries for each event appended, each at the end of
-- its index or of its key's run in it.
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX validations_enrolment ON validations (enrolment_id);

-- The report of a CSV batch, one row per line of the file, written as
-- enrol.InviteCSV reports the lines, so that the page and the report.csv
-- download read it back a page at a time however long the file was.
CREATE TABLE batch_rows (
    batch_id     INTEGER NOT NULL REFERENCES batches (id),
    line         INTEGER NOT NULL,
    email        TEXT NOT NULL,
    invited      INTEGER NOT NULL CHECK (invited IN (0, 1)),
    enrolment_id INTEGER,
    reason       TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (batch_id, line)
) STRICT, WITHOUT ROWID;

-- Why a batch stopped (state 'failed'): the file broke off, or the
-- import failed; shown on the batch page.
ALTER TABLE batches ADD COLUMN error TEXT NOT NULL DEFAULT '';
-- When an import last committed rows: one that has committed nothing for
-- a while stopped with its process (enrol.Batch.Stalled).
ALTER TABLE batches ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
