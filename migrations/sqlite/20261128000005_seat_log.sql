-- Every change of a seat's status or activity, for KPIs and audits
-- (time logged in, on break and why, ringing, talking, wrapping up).
CREATE TABLE seat_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    seat     TEXT   NOT NULL,
    at       BIGINT NOT NULL,
    status   TEXT   NOT NULL,
    reason   TEXT,
    activity TEXT   NOT NULL,
    call     BIGINT
);
CREATE INDEX seat_log_seat ON seat_log (seat, at);
