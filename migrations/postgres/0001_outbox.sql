-- Herald's store on PostgreSQL (DESIGN §7): the same tables as migrations/sqlite, with the same
-- names and meanings, so one set of queries serves both. Times are Unix milliseconds (BIGINT).

-- Audit events a rule selected, once per (tenant, id).
CREATE TABLE events_seen (
    tenant      TEXT   NOT NULL,
    event_id    TEXT   NOT NULL,
    activity    TEXT   NOT NULL,
    event_time  BIGINT NOT NULL,
    source      TEXT   NOT NULL,
    first_seen  BIGINT NOT NULL,
    PRIMARY KEY (tenant, event_id)
);

-- One row per notification; the key is the idempotency boundary (DESIGN §2.2), across every
-- instance sharing this database.
CREATE TABLE outbox (
    key             TEXT   PRIMARY KEY,
    event_id        TEXT   NOT NULL,
    rule            TEXT   NOT NULL,
    channel         TEXT   NOT NULL,
    recipient       TEXT   NOT NULL,
    subject         TEXT   NOT NULL,
    message         BYTEA  NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    sent_at         BIGINT,
    last_error      TEXT,
    claimed_by      TEXT,
    claim_token     TEXT,
    claimed_until   BIGINT
);
-- Only pending rows are ever claimed; sent rows accumulate and stay out of this index.
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_listing ON outbox (created_at, key);

-- Input Herald could not use, kept whole with where it came from and why.
CREATE TABLE dead_letters (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      TEXT   NOT NULL,
    input       TEXT   NOT NULL,
    position    TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    raw         BYTEA  NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Where each source has got to (file offsets, Graph watermarks; Kafka keeps its own offsets).
CREATE TABLE checkpoints (
    source      TEXT   NOT NULL,
    key         TEXT   NOT NULL,
    value       TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (source, key)
);

-- What happened to each selected event: which rule matched and how many notices it queued.
CREATE TABLE history (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant      TEXT   NOT NULL,
    event_id    TEXT   NOT NULL,
    rule        TEXT   NOT NULL,
    queued      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX history_event ON history (tenant, event_id);
