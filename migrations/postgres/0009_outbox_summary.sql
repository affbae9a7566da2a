-- What a notice with a report link said (its headline and facts, who did it from where), as
-- JSON, so the SOC's notice of the owner's answer can repeat it; NULL for other notices.
ALTER TABLE outbox ADD COLUMN summary TEXT;
