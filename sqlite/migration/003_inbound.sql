-- Sources of changes that call prefsync back (provider webhooks). config is the
-- adapter's JSON; secret is the unguessable part of the URL the provider calls.
CREATE TABLE inbounds (
    name       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    config     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
