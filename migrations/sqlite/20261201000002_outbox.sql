-- The durable outbox of call, seat and order events for the region
-- platform (regulation art. 14). Rows are written in the same transaction
-- as the change they describe; the pusher delivers them in `seq` order.
CREATE TABLE outbox (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Derived from what the row describes, so a retried write cannot make
    -- a second event.
    event_id TEXT   NOT NULL UNIQUE,
    -- The order number, call id or seat: events of one key stay in order.
    stream   TEXT   NOT NULL,
    kind     TEXT   NOT NULL,
    at       BIGINT NOT NULL,
    payload  TEXT   NOT NULL
);
CREATE INDEX outbox_at ON outbox (at);

-- How far each sink has acknowledged.
CREATE TABLE outbox_cursors (
    sink       TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One pusher per sink across all nodes: the holder renews before expiry.
CREATE TABLE outbox_leases (
    sink       TEXT PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
