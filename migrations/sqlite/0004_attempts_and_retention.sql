-- Every delivery attempt, so "why did Alice get nothing" has an answer (ARCHITECTURE.md §7):
-- when it began (the store's clock), which instance made it, how it ended ('sent', 'retry',
-- 'failed', 'deferred': the channel was paused), the receiving server's reply and how long it
-- took. Pruned with its notification.
CREATE TABLE attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    instance    TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    reply       TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX attempts_key ON attempts (key, at);

-- The outbox is listed by event and recipient; /metrics counts failed rows (pending rows
-- already have outbox_due) without reading the sent ones; retention finds old rows of each
-- kind without a scan.
CREATE INDEX outbox_event ON outbox (event_id);
CREATE INDEX outbox_recipient ON outbox (recipient, created_at);
CREATE INDEX outbox_failed ON outbox (created_at) WHERE state = 'failed';
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE state = 'sent';
CREATE INDEX history_created ON history (created_at);
CREATE INDEX events_seen_first ON events_seen (first_seen);
CREATE INDEX dead_letters_created ON dead_letters (created_at);
