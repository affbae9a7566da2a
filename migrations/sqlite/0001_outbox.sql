-- Herald's store (DESIGN §7). Times are Unix milliseconds (INTEGER), so the PostgreSQL schema
-- can use BIGINT and the same queries.

-- Audit events a rule selected, once per (tenant, id).
CREATE TABLE events_seen (
    tenant      TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    activity    TEXT    NOT NULL,
    event_time  INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    first_seen  INTEGER NOT NULL,
    PRIMARY KEY (tenant, event_id)
);

-- One row per notification; the key is the idempotency boundary (DESIGN §2.2).
CREATE TABLE outbox (
    key             TEXT    PRIMARY KEY,
    event_id        TEXT    NOT NULL,
    rule            TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    message         BLOB    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    last_error      TEXT,
    claimed_by      TEXT,
    claim_token     TEXT,
    claimed_until   INTEGER
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- Input Herald could not use, kept whole with where it came from and why.
CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT    NOT NULL,
    input       TEXT    NOT NULL,
    position    TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    raw         BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Where each source has got to (file offsets, Kafka offsets, Graph watermarks).
CREATE TABLE checkpoints (
    source      TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (source, key)
);

-- What happened to each selected event: which rule matched and how many notices it queued.
CREATE TABLE history (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant        TEXT    NOT NULL,
    event_id      TEXT    NOT NULL,
    rule          TEXT    NOT NULL,
    queued        INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX history_event ON history (tenant, event_id);
