-- Tenancy, virtual keys and provider credentials (SQLite).
-- Ids are UUIDv7 text (time-ordered, so `ORDER BY id` is creation order and pages are stable).
-- Timestamps are INTEGER microseconds since the Unix epoch, UTC: SQLite has no timestamp type,
-- and integers compare correctly where RFC 3339 text with variable fractions would not.
-- Every parent is: deleting an organization, team or user that still has
-- children is refused, so one admin call never silently takes a tree of live keys with it.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE teams (
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE users (
    id          TEXT PRIMARY KEY NOT NULL,
    team_id     TEXT NOT NULL REFERENCES teams (id),
    name        TEXT NOT NULL,
    email       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (team_id, name),
    UNIQUE (id, team_id)
);

CREATE TABLE virtual_keys (
    id                    TEXT PRIMARY KEY NOT NULL,
    public_id             TEXT NOT NULL UNIQUE,
    digest                BLOB NOT NULL,
    name                  TEXT NOT NULL,
    team_id               TEXT NOT NULL REFERENCES teams (id),
    user_id               TEXT,
    labels                TEXT NOT NULL,
    allowed_models        TEXT NOT NULL,
    allowed_endpoints     TEXT NOT NULL,
    expires_at            INTEGER,
    enabled               INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    revoked_at            INTEGER,
    previous_digest       BLOB,
    previous_valid_until  INTEGER,
    -- A key's user must be a member of the key's team.
    FOREIGN KEY (user_id, team_id) REFERENCES users (id, team_id)
);
CREATE INDEX virtual_keys_team ON virtual_keys (team_id);
CREATE INDEX virtual_keys_user ON virtual_keys (user_id);

CREATE TABLE provider_credentials (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    provider    TEXT NOT NULL,
    ciphertext  BLOB NOT NULL,
    nonce       BLOB NOT NULL,
    key_id      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
