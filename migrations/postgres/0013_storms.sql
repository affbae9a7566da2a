-- Storms, digests and silences (ARCHITECTURE.md §13). A notification may now be `held` (in a
-- group or past a throttle, waiting for its window to end), `merged` (told in the group's or
-- digest's notice) or `suppressed` (a repeat, or a silence): `held_by` names the window, the
-- silence or the notice it repeats.
ALTER TABLE outbox ADD COLUMN held_by TEXT;
ALTER TABLE outbox DROP CONSTRAINT outbox_state_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_state_check
    CHECK (state IN ('pending', 'sent', 'failed', 'held', 'merged', 'suppressed'));
CREATE INDEX outbox_held ON outbox (held_by) WHERE held_by IS NOT NULL;
-- Kept notices no one will send (merged, suppressed), pruned like sent ones.
CREATE INDEX outbox_kept ON outbox (created_at) WHERE state IN ('merged', 'suppressed');

-- A group's wait, a throttle's window, a bulk count: `open` while it takes notices (one per
-- scope), then closed when its end has passed and its notice (`told`) is queued.
CREATE TABLE storm_windows (
    id          TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('group', 'throttle', 'bulk')),
    scope       TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    opened_at   BIGINT NOT NULL,
    closes_at   BIGINT NOT NULL,
    counted     BIGINT NOT NULL DEFAULT 0,
    held        BIGINT NOT NULL DEFAULT 0,
    open        BIGINT NOT NULL DEFAULT 1,
    closed_at   BIGINT,
    told        TEXT
);
CREATE UNIQUE INDEX storm_windows_open ON storm_windows (scope) WHERE open = 1;
CREATE INDEX storm_windows_due ON storm_windows (closes_at) WHERE closed_at IS NULL;
CREATE INDEX storm_windows_closed ON storm_windows (closed_at) WHERE closed_at IS NOT NULL;

-- The accounts one initiator changed within a bulk window, once each.
CREATE TABLE bulk_accounts (
    window_id   TEXT    NOT NULL,
    account     TEXT    NOT NULL,
    tenant      TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    activity    TEXT    NOT NULL,
    event_time  BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (window_id, account)
);

-- A rule's `repeat`: the first notice of a key, and until when it stands for the others
-- (NULL: for ever).
CREATE TABLE repeats (
    key         TEXT    PRIMARY KEY,
    first_key   TEXT    NOT NULL,
    until       BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX repeats_until ON repeats (until) WHERE until IS NOT NULL;

-- Silences: what they match, when, who made them and why; when they ended early, and when
-- their summary was queued.
CREATE TABLE silences (
    id          BIGSERIAL PRIMARY KEY,
    matchers    TEXT    NOT NULL,
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT,
    weekly      TEXT,
    created_by  TEXT    NOT NULL,
    comment     TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    expired_at  BIGINT,
    expired_by  TEXT,
    summary_at  BIGINT,
    source      TEXT
);
CREATE INDEX silences_live ON silences (ends_at) WHERE expired_at IS NULL;
-- A `[[silence]]` of the configuration, made once while it is in force.
CREATE UNIQUE INDEX silences_source ON silences (source) WHERE source IS NOT NULL AND expired_at IS NULL;
