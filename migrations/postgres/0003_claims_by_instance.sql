-- An instance finds its own claims (to renew them while it sends, to release them when it
-- starts again) without reading the whole backlog.
CREATE INDEX outbox_claims ON outbox (claimed_by) WHERE claim_token IS NOT NULL;
