-- Suppressions are numbered as they are written (and rewritten), so that every process
-- can follow the others' from where it is.
ALTER TABLE suppressions ADD COLUMN seq BIGSERIAL;
CREATE INDEX suppressions_by_seq ON suppressions (seq);
