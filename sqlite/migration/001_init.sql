-- Contacts and their projected state. id is the contact's number (the public id "c_…"
-- is its base32 form); state is prefsync.ContactState in its stored form (AppendState).
CREATE TABLE contacts (
    id           INTEGER PRIMARY KEY,
    jurisdiction TEXT NOT NULL DEFAULT '',
    locale       TEXT NOT NULL DEFAULT '',
    version      INTEGER NOT NULL DEFAULT 0,
    state        TEXT NOT NULL DEFAULT '',
    merged_into  INTEGER,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE INDEX contacts_merged ON contacts (merged_into) WHERE merged_into IS NOT NULL;

CREATE TABLE identifiers (
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    contact_id INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;
CREATE INDEX identifiers_by_contact ON identifiers (contact_id);

-- The audit trail: append-only, each entry's body chained to the one before by hash.
-- personal (JSON of prefsync.Personal: subject as given, IP, user agent, actor, proof)
-- is outside the chain, which commits only to its salted digest: erasure sets personal
-- and salt to NULL and the chain holds.
CREATE TABLE audit (
    seq             INTEGER PRIMARY KEY,
    contact_id      INTEGER NOT NULL,
    status          TEXT NOT NULL,
    idempotency_key TEXT,
    body            TEXT NOT NULL,
    hash            BLOB NOT NULL,
    salt            BLOB,
    personal        TEXT
);
CREATE INDEX audit_by_contact ON audit (contact_id, seq);
CREATE UNIQUE INDEX audit_idempotency ON audit (idempotency_key)
    WHERE idempotency_key IS NOT NULL AND status <> 'duplicate';

CREATE TABLE suppressions (
    kind       TEXT NOT NULL,
    address    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (kind, address)
) WITHOUT ROWID;

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
