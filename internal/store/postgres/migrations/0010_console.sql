-- The RA console's lists (internal/web/console, queries in console.go).
-- Each list query walks one index in the order the page shows it, so that
-- a page costs the same at the first row and at the millionth.

-- Invitations of one policy, and of one policy in one state, newest first.
CREATE INDEX enrolments_policy ON enrolments (policy, id);
CREATE INDEX enrolments_policy_state ON enrolments (policy, state, id);
-- Search by mailbox (the folded key, so case does not matter) and by
-- surname, then given name. lower() of a "C" column folds ASCII only, as
-- SQLite's does, so the names' keys are folded by the store
-- (store.NameKey) and written with the row. Rows of older versions get
-- lower() here, right for ASCII names; the migration's Go step (foldNames
-- in console_keys.go) folds the others.
ALTER TABLE enrolments ADD COLUMN surname_key text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE enrolments ADD COLUMN given_name_key text COLLATE "C" NOT NULL DEFAULT '';
UPDATE enrolments SET surname_key = lower(surname), given_name_key = lower(given_name);
CREATE INDEX enrolments_mailbox_key ON enrolments (mailbox_key, id);
CREATE INDEX enrolments_surname ON enrolments (surname_key, id);
-- The Authorization Panel's queue: applications waiting for approval,
-- oldest submission first; small, since only submitted rows are in it.
CREATE INDEX enrolments_queue ON enrolments (submitted_at, id) WHERE state = 'submitted';
CREATE INDEX enrolments_policy_queue ON enrolments (policy, submitted_at, id) WHERE state = 'submitted';
-- The certificates list, by mailbox in insertion order.
CREATE INDEX certificates_mailbox_row ON certificates (mailbox, row_id);

-- The dashboard's counts per policy and state, so that the page does not
-- count every enrolment (GROUP BY over a million rows takes about half a
-- second). Statement triggers append what each statement changed, one row
-- per policy and state it touched, and ConsolePolicyCounts folds the rows
-- into one per policy and state (under an advisory lock) before reading
-- them. Rows are only ever appended by writers, never updated, so that
-- concurrent transactions, a long CSV import among them, do not queue on
-- a few hot counter rows as they would with row triggers that update one.
CREATE TABLE enrolment_counts (
    policy text COLLATE "C" NOT NULL,
    state  text NOT NULL,
    n      bigint NOT NULL
);
INSERT INTO enrolment_counts (policy, state, n)
    SELECT policy, state, COUNT(*) FROM enrolments GROUP BY policy, state;
CREATE FUNCTION enrolment_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO enrolment_counts (policy, state, n)
        SELECT policy, state, COUNT(*) FROM new_rows GROUP BY policy, state;
    RETURN NULL;
END $$;
CREATE FUNCTION enrolment_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO enrolment_counts (policy, state, n)
        SELECT policy, state, SUM(n) FROM (
            SELECT policy, state, -1 AS n FROM old_rows
            UNION ALL
            SELECT policy, state, 1 FROM new_rows
        ) d GROUP BY policy, state HAVING SUM(n) <> 0;
    RETURN NULL;
END $$;
CREATE FUNCTION enrolment_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO enrolment_counts (policy, state, n)
        SELECT policy, state, -COUNT(*) FROM old_rows GROUP BY policy, state;
    RETURN NULL;
END $$;
CREATE TRIGGER enrolment_counts_insert AFTER INSERT ON enrolments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION enrolment_counts_insert();
CREATE TRIGGER enrolment_counts_update AFTER UPDATE ON enrolments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION enrolment_counts_update();
CREATE TRIGGER enrolment_counts_delete AFTER DELETE ON enrolments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION enrolment_counts_delete();

-- An enrolment's history (its audit events) and validation record.
CREATE INDEX IF NOT EXISTS audit_events_object ON audit_events (object, seq);
-- The audit log's filters (AuditFilter), newest first: by action and by
-- actor each walk their index in sequence order; a time range is a range
-- of at. The planner, with the statistics autovacuum keeps, picks among
-- these and the object index.
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX validations_enrolment ON validations (enrolment_id);

-- The report of a CSV batch, one row per line of the file, written as
-- enrol.InviteCSV reports the lines, so that the page and the report.csv
-- download read it back a page at a time however long the file was.
CREATE TABLE batch_rows (
    batch_id     bigint NOT NULL REFERENCES batches (id),
    line         integer NOT NULL,
    email        text NOT NULL,
    invited      boolean NOT NULL,
    enrolment_id bigint,
    reason       text NOT NULL DEFAULT '',
    detail       text NOT NULL DEFAULT '',
    PRIMARY KEY (batch_id, line)
);

-- Why a batch stopped (state 'failed'): the file broke off, or the
-- import failed; shown on the batch page.
ALTER TABLE batches ADD COLUMN error text NOT NULL DEFAULT '';
-- When an import last committed rows: one that has committed nothing for
-- a while stopped with its process (enrol.Batch.Stalled).
ALTER TABLE batches ADD COLUMN updated_at bigint NOT NULL DEFAULT 0;
