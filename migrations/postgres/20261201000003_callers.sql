-- Repeat and abusive callers (article 26). A flag is what detection (or an
-- agent's report) found about a number, with its evidence; only a
-- supervisor's review turns a flag into a block. Blocks end by expiry or an
-- early lift. Every step is written to caller_audit.
CREATE TABLE caller_flags (
    id            BIGSERIAL PRIMARY KEY,
    number        TEXT    NOT NULL,
    pattern       TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    detail        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    created_by    TEXT    NOT NULL,
    reviewed_at   BIGINT,
    reviewed_by   TEXT,
    review_reason TEXT,
    review_note   TEXT,
    block_id      BIGINT
);
CREATE INDEX caller_flags_state ON caller_flags (state, id);
CREATE INDEX caller_flags_number ON caller_flags (number, id);

-- The calls a flag rests on. One call is evidence for a pattern once, so a
-- sweep that sees the same calls again flags nothing new.
CREATE TABLE caller_flag_calls (
    call_id TEXT   NOT NULL,
    pattern TEXT   NOT NULL,
    flag_id BIGINT NOT NULL,
    PRIMARY KEY (call_id, pattern)
);
CREATE INDEX caller_flag_calls_flag ON caller_flag_calls (flag_id);

CREATE TABLE caller_blocks (
    id         BIGSERIAL PRIMARY KEY,
    number     TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    flag_id    BIGINT,
    state      TEXT    NOT NULL,
    note       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    created_by TEXT    NOT NULL,
    until_at   BIGINT  NOT NULL,
    ended_at   BIGINT,
    ended_by   TEXT,
    end_reason TEXT
);
CREATE INDEX caller_blocks_state ON caller_blocks (state, until_at);
CREATE INDEX caller_blocks_number ON caller_blocks (number, id);

-- Append-only: who did what to which number, when and why.
CREATE TABLE caller_audit (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT  NOT NULL,
    actor   TEXT    NOT NULL,
    role    TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    number  TEXT    NOT NULL,
    flag_id BIGINT,
    block_id BIGINT,
    detail  TEXT    NOT NULL
);
CREATE INDEX caller_audit_number ON caller_audit (number, id);
