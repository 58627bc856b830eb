-- The PostgreSQL store's schema: the same tables as the embedded store's, in
-- PostgreSQL's types. Times in TIMESTAMPTZ; the outbox's in BIGINT Unix milliseconds,
-- as its hot queries compare them.
CREATE TABLE contacts (
    id           BIGINT PRIMARY KEY,
    jurisdiction TEXT NOT NULL DEFAULT '',
    locale       TEXT NOT NULL DEFAULT '',
    version      BIGINT NOT NULL DEFAULT 0,
    state        BYTEA NOT NULL DEFAULT '',
    merged_into  BIGINT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX contacts_merged ON contacts (merged_into) WHERE merged_into IS NOT NULL;

CREATE TABLE identifiers (
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    contact_id BIGINT NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX identifiers_by_contact ON identifiers (contact_id);

-- The audit trail, chained by hash. audit_head holds the chain's last entry; writers
-- lock it, so entries are appended one transaction at a time across processes.
CREATE TABLE audit (
    seq             BIGINT PRIMARY KEY,
    contact_id      BIGINT NOT NULL,
    status          TEXT NOT NULL,
    idempotency_key TEXT,
    body            TEXT NOT NULL,
    hash            BYTEA NOT NULL,
    salt            BYTEA,
    personal        TEXT
);
CREATE INDEX audit_by_contact ON audit (contact_id, seq);
CREATE UNIQUE INDEX audit_idempotency ON audit (idempotency_key)
    WHERE idempotency_key IS NOT NULL AND status <> 'duplicate';

CREATE TABLE audit_head (
    one  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    seq  BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
INSERT INTO audit_head (seq, hash) VALUES (0, '');

CREATE TABLE suppressions (
    kind       TEXT NOT NULL,
    address    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, address)
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    hash       BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('store_id', substr(md5(random()::text), 1, 12));

CREATE TABLE destinations (
    name          TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    url           TEXT NOT NULL,
    secrets       TEXT NOT NULL,
    filter        TEXT NOT NULL,
    status        TEXT NOT NULL,
    status_reason TEXT NOT NULL DEFAULT '',
    status_since  TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE changes (
    seq     BIGINT PRIMARY KEY,
    payload TEXT NOT NULL
);

CREATE TABLE deliveries (
    id           BIGSERIAL PRIMARY KEY,
    destination  TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    contact_id   BIGINT NOT NULL,
    version      BIGINT NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      BIGINT NOT NULL,
    last_code    INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    latency_ms   BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    retry_from   BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX deliveries_due ON deliveries (destination, next_at) WHERE status = 'pending';
CREATE INDEX deliveries_pending ON deliveries (destination, id) WHERE status = 'pending';
CREATE INDEX deliveries_by_seq ON deliveries (seq);
CREATE INDEX deliveries_dead ON deliveries (destination, id) WHERE status = 'dead';

CREATE TABLE inbounds (
    name       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    config     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
