-- Knowledge base (知识库): each entry is one JSON document holding every
-- version and its review log, plus the columns search, hot topics and the
-- expiry sweep filter on. `seq` is the change sequence other nodes poll.
CREATE TABLE kb_meta (
    id INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO kb_meta (id, seq) VALUES (1, 0);

CREATE TABLE kb_entries (
    entry_id TEXT PRIMARY KEY,
    unit TEXT NOT NULL,
    status TEXT NOT NULL,
    head_version BIGINT NOT NULL,
    live_version BIGINT,
    title TEXT NOT NULL,
    category TEXT NOT NULL,
    division TEXT NOT NULL,
    expires_on TEXT,
    doc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX kb_entries_seq ON kb_entries (seq);
CREATE INDEX kb_entries_live ON kb_entries (live_version, expires_on);

-- A direct answer given with an entry; one per (entry, order).
CREATE TABLE kb_hits (
    entry_id TEXT NOT NULL,
    order_no TEXT NOT NULL,
    agent TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (entry_id, order_no)
);
CREATE INDEX kb_hits_at ON kb_hits (at);
