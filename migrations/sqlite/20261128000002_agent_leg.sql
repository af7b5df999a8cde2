-- The agent leg of a queued call (B2BUA) and its stereo recording.
ALTER TABLE calls ADD COLUMN queued_at BIGINT;
ALTER TABLE calls ADD COLUMN seat TEXT;
ALTER TABLE calls ADD COLUMN seat_call_id TEXT;
ALTER TABLE calls ADD COLUMN seat_codec TEXT;
ALTER TABLE calls ADD COLUMN connected_at BIGINT;
ALTER TABLE calls ADD COLUMN seat_ended_at BIGINT;
-- Stereo WAV of the conversation: caller left, agent right.
ALTER TABLE calls ADD COLUMN call_recording TEXT;
CREATE INDEX calls_seat ON calls (seat, started_at);
