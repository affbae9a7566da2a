-- The dashboard's lists, newest first and a page at a time (after the last row's sort keys):
-- the outbox by (time, key), events by (time, id, tenant), an account's events likewise; an
-- event's page finds its reports by the event.
CREATE INDEX outbox_created ON outbox (created_at, key);
DROP INDEX events_seen_time;
CREATE INDEX events_seen_order ON events_seen (event_time, event_id, tenant);
DROP INDEX event_accounts_time;
CREATE INDEX event_accounts_order ON event_accounts (account, event_time, event_id, tenant);
CREATE INDEX reports_event ON reports (event_id);
