-- A dead letter keeps its evidence (ARCHITECTURE.md §7): a replay appends its outcome, one
-- line each, instead of removing the entry; `resolved_at` is when it was handled (a replay
-- that used it, or `herald dead-letters resolve`). Resolved entries stay until retention.
ALTER TABLE dead_letters ADD COLUMN replays TEXT NOT NULL DEFAULT '';
ALTER TABLE dead_letters ADD COLUMN resolved_at BIGINT;
