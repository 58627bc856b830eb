-- A lifted suppression is kept, with when and by whom it was lifted; it no longer counts.
ALTER TABLE suppressions ADD COLUMN lifted_at TIMESTAMPTZ;
ALTER TABLE suppressions ADD COLUMN lifted_by TEXT NOT NULL DEFAULT '';
