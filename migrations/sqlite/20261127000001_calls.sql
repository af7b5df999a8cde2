-- One row per call that reached a final answer (answered, rejected or cancelled).
CREATE TABLE calls (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id         TEXT    NOT NULL,
    caller          TEXT    NOT NULL,
    callee          TEXT    NOT NULL,
    remote_addr     TEXT    NOT NULL,
    transport       TEXT    NOT NULL,
    started_at      BIGINT  NOT NULL,
    answered_at     BIGINT,
    ended_at        BIGINT  NOT NULL,
    status          INTEGER NOT NULL,
    end_reason      TEXT    NOT NULL,
    hangup_by       TEXT    NOT NULL,
    codec           TEXT,
    digits          TEXT    NOT NULL,
    packets_in      BIGINT  NOT NULL,
    packets_out     BIGINT  NOT NULL,
    octets_in       BIGINT  NOT NULL,
    octets_out      BIGINT  NOT NULL,
    packets_lost    BIGINT  NOT NULL,
    packets_late    BIGINT  NOT NULL,
    jitter_ms       DOUBLE PRECISION NOT NULL,
    peer_lost       BIGINT,
    peer_jitter_ms  DOUBLE PRECISION
);
CREATE INDEX calls_call_id ON calls (call_id);
CREATE INDEX calls_started_at ON calls (started_at);
