-- "This wasn't me": what the owner of an account answered on a notice's report page. One row
-- per notification key (a link decides once); the client as the reverse proxy passed it.
CREATE TABLE reports (
    key TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    account TEXT NOT NULL,
    subject TEXT NOT NULL,
    verdict TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    client_ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    actions TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reports_created ON reports (created_at);
