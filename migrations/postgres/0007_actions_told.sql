-- One action, one notice (rules with `once_per_action`): which notice told a recipient on a
-- channel about an action (the tenant and correlation id of its records). A second notice of
-- the same action to the same recipient and channel finds the row and is not queued.
CREATE TABLE actions_told (
    action TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (action, channel, recipient)
);
CREATE INDEX actions_told_created ON actions_told (created_at);
