-- A caller may tie a certificate to a key of its own (the enrolment it
-- completes): at most one live certificate per key, so that one approval can
-- never yield two certificates, whatever races or retries happen above.
ALTER TABLE certificates ADD COLUMN once_key text;
CREATE UNIQUE INDEX certificates_once ON certificates (once_key)
    WHERE state <> 'refused' AND once_key IS NOT NULL;
