-- Usage records: one row per finished request, moved here in batches from the gateway's usage
-- journal. `id` is the record's own UUIDv7 (made by the gateway when the request finished), so
-- a batch re-sent after a crash inserts nothing twice (INSERT ... ON CONFLICT (id) DO NOTHING),
-- and `ORDER BY id` is the order requests finished in. `request_id` is not unique: a client
-- may choose its own. No content is ever stored: ids, names, counts, status, timings, cost.
-- No foreign keys: a record outlives the key, team or user it names.

CREATE TABLE usage_records (
    id                TEXT PRIMARY KEY NOT NULL,
    request_id        TEXT NOT NULL,
    started_at        TIMESTAMPTZ NOT NULL,
    key_name          TEXT,
    key_id            TEXT,
    org               TEXT,
    team              TEXT,
    user_name         TEXT,
    endpoint          TEXT NOT NULL,
    model             TEXT,
    served_model      TEXT,
    provider          TEXT,
    status            INTEGER NOT NULL,
    outcome           TEXT NOT NULL,
    stream            BOOLEAN NOT NULL,
    input_tokens      BIGINT,
    output_tokens     BIGINT,
    cached_tokens     BIGINT,
    reasoning_tokens  BIGINT,
    latency_us        BIGINT NOT NULL,
    ttfb_us           BIGINT,
    cost_micros       BIGINT
);

CREATE INDEX usage_records_request_id ON usage_records (request_id);
CREATE INDEX usage_records_key_started ON usage_records (key_name, started_at);
