-- Why a selected event told nobody, when a rule decided so (routine upkeep:
-- "routine: only OathTokenTimeDrift changed"); NULL when it queued as usual.
ALTER TABLE history ADD COLUMN reason TEXT;
