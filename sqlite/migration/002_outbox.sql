-- Destinations and the transactional outbox. secrets and filter are JSON
-- ([]prefsync.Secret, prefsync.DestinationFilter); times in TEXT are RFC 3339.
CREATE TABLE destinations (
    name          TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    url           TEXT NOT NULL,
    secrets       TEXT NOT NULL,
    filter        TEXT NOT NULL,
    status        TEXT NOT NULL,
    status_reason TEXT NOT NULL DEFAULT '',
    status_since  TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

-- One row per applied event that some destination wants: the webhook body, built when
-- the event was applied. seq is the event's audit entry.
CREATE TABLE changes (
    seq     INTEGER PRIMARY KEY,
    payload TEXT NOT NULL
);

-- One row per change and destination, written in the event's transaction. Times in
-- INTEGER are Unix milliseconds. retry_from is when the delivery's retry schedule
-- started: when its change was accepted, or when it was last replayed.
CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    destination  TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    contact_id   INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    last_code    INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    latency_ms   INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    retry_from   INTEGER NOT NULL,
    delivered_at INTEGER
);
-- Pending deliveries by when they are due (to send and to probe) and by age (to expire
-- and to measure the backlog); all of a change's deliveries for its contact's history.
CREATE INDEX deliveries_due ON deliveries (destination, next_at) WHERE status = 'pending';
CREATE INDEX deliveries_pending ON deliveries (destination, id) WHERE status = 'pending';
CREATE INDEX deliveries_by_seq ON deliveries (seq);
-- Dead letters, to list and replay them without reading the rest.
CREATE INDEX deliveries_dead ON deliveries (destination, id) WHERE status = 'dead';

-- store_id makes webhook ids unique across stores, not only within one.
INSERT INTO meta (key, value) VALUES ('store_id', lower(hex(randomblob(6))));
