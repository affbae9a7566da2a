-- What operators did through the dashboard and its API (who, what, to what, when): retries,
-- replays, resolutions. Written in the transaction that does it.
CREATE TABLE operator_actions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX operator_actions_at ON operator_actions (at);
