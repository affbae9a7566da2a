-- A dead letter is kept once per source and content (ARCHITECTURE.md §7): re-reading the same
-- bytes (Graph's overlap, a Kafka redelivery) adds no row. Rows kept before this column have
-- no hash and are never matched.
ALTER TABLE dead_letters ADD COLUMN raw_sha256 TEXT;
CREATE INDEX dead_letters_content ON dead_letters (source, raw_sha256);
