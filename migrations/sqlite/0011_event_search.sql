-- The dashboard's events: each selected event's record as it came, and the accounts it names
-- (targets and initiator: UPN, display name and object id, lower case) to find it by.
ALTER TABLE events_seen ADD COLUMN raw BLOB;
CREATE INDEX events_seen_time ON events_seen (event_time);
CREATE TABLE event_accounts (
    account TEXT NOT NULL,
    tenant TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    first_seen BIGINT NOT NULL,
    PRIMARY KEY (account, tenant, event_id)
);
CREATE INDEX event_accounts_time ON event_accounts (account, event_time);
CREATE INDEX event_accounts_first_seen ON event_accounts (first_seen);
