-- Storms, digests and silences (ARCHITECTURE.md §13). A notification may now be `held` (in a
-- group or past a throttle, waiting for its window to end), `merged` (told in the group's or
-- digest's notice) or `suppressed` (a repeat, or a silence): `held_by` names the window, the
-- silence or the notice it repeats. SQLite cannot change a CHECK constraint, so the outbox is
-- built again with the same rows and indexes.
CREATE TABLE outbox_next (
    key             TEXT    PRIMARY KEY,
    event_id        TEXT    NOT NULL,
    rule            TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    message         BLOB    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'held', 'merged', 'suppressed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    last_error      TEXT,
    claimed_by      TEXT,
    claim_token     TEXT,
    claimed_until   INTEGER,
    summary         TEXT,
    held_by         TEXT
);
INSERT INTO outbox_next (key, event_id, rule, channel, recipient, subject, message, state, attempts,
                         created_at, next_attempt_at, sent_at, last_error, claimed_by, claim_token,
                         claimed_until, summary)
    SELECT key, event_id, rule, channel, recipient, subject, message, state, attempts,
           created_at, next_attempt_at, sent_at, last_error, claimed_by, claim_token,
           claimed_until, summary
    FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_next RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_claims ON outbox (claimed_by) WHERE claim_token IS NOT NULL;
CREATE INDEX outbox_event ON outbox (event_id);
CREATE INDEX outbox_recipient ON outbox (recipient, created_at);
CREATE INDEX outbox_failed ON outbox (created_at) WHERE state = 'failed';
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE state = 'sent';
CREATE INDEX outbox_created ON outbox (created_at, key);
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
    opened_at   INTEGER NOT NULL,
    closes_at   INTEGER NOT NULL,
    counted     INTEGER NOT NULL DEFAULT 0,
    held        INTEGER NOT NULL DEFAULT 0,
    open        INTEGER NOT NULL DEFAULT 1,
    closed_at   INTEGER,
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
    event_time  INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (window_id, account)
);

-- A rule's `repeat`: the first notice of a key, and until when it stands for the others
-- (NULL: for ever).
CREATE TABLE repeats (
    key         TEXT    PRIMARY KEY,
    first_key   TEXT    NOT NULL,
    until       INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX repeats_until ON repeats (until) WHERE until IS NOT NULL;

-- Silences: what they match, when, who made them and why; when they ended early, and when
-- their summary was queued.
CREATE TABLE silences (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    matchers    TEXT    NOT NULL,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER,
    weekly      TEXT,
    created_by  TEXT    NOT NULL,
    comment     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expired_at  INTEGER,
    expired_by  TEXT,
    summary_at  INTEGER,
    source      TEXT
);
CREATE INDEX silences_live ON silences (ends_at) WHERE expired_at IS NULL;
-- A `[[silence]]` of the configuration, made once while it is in force.
CREATE UNIQUE INDEX silences_source ON silences (source) WHERE source IS NOT NULL AND expired_at IS NULL;
