-- Transfers and three-way calls on a call, as a JSON array of events
-- (kind, by, target, via, asked_at, answered_at, ended_at, result, status,
-- ending, duration_ms).
ALTER TABLE calls ADD COLUMN transfers TEXT;
