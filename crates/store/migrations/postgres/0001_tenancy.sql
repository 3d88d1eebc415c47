-- Tenancy, virtual keys and provider credentials (PostgreSQL).
-- Ids are UUIDv7 text (time-ordered, so `ORDER BY id` is creation order and pages are stable).
-- Timestamps are TIMESTAMPTZ (UTC, microsecond precision).
-- Every parent is ON DELETE RESTRICT: deleting an organization, team or user that still has
-- children is refused, so one admin call never silently takes a tree of live keys with it.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE teams (
    id          TEXT PRIMARY KEY NOT NULL,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE users (
    id          TEXT PRIMARY KEY NOT NULL,
    team_id     TEXT NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
    name        TEXT NOT NULL,
    email       TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (team_id, name),
    UNIQUE (id, team_id)
);

CREATE TABLE virtual_keys (
    id                    TEXT PRIMARY KEY NOT NULL,
    public_id             TEXT NOT NULL UNIQUE,
    digest                BYTEA NOT NULL,
    name                  TEXT NOT NULL,
    team_id               TEXT NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
    user_id               TEXT,
    labels                TEXT NOT NULL,
    allowed_models        TEXT NOT NULL,
    allowed_endpoints     TEXT NOT NULL,
    expires_at            TIMESTAMPTZ,
    enabled               BOOLEAN NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    revoked_at            TIMESTAMPTZ,
    previous_digest       BYTEA,
    previous_valid_until  TIMESTAMPTZ,
    -- A key's user must be a member of the key's team.
    FOREIGN KEY (user_id, team_id) REFERENCES users (id, team_id) ON DELETE RESTRICT
);
CREATE INDEX virtual_keys_team ON virtual_keys (team_id);
CREATE INDEX virtual_keys_user ON virtual_keys (user_id);

CREATE TABLE provider_credentials (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    provider    TEXT NOT NULL,
    ciphertext  BYTEA NOT NULL,
    nonce       BYTEA NOT NULL,
    key_id      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
