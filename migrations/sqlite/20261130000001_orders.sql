-- The work order lifecycle. Each order is one JSON document (doc) with a
-- version for optimistic writes; the columns and tables beside it are
-- projections the API filters on and the scheduler sweeps, rewritten in
-- the same transaction as the document.
ALTER TABLE work_orders ADD COLUMN channel TEXT;
ALTER TABLE work_orders ADD COLUMN appeal_type TEXT;
ALTER TABLE work_orders ADD COLUMN category TEXT;
ALTER TABLE work_orders ADD COLUMN urgency TEXT;
ALTER TABLE work_orders ADD COLUMN division TEXT;
ALTER TABLE work_orders ADD COLUMN lead_unit TEXT;
ALTER TABLE work_orders ADD COLUMN escalated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE work_orders ADD COLUMN closed_at BIGINT;
ALTER TABLE work_orders ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE work_orders ADD COLUMN doc TEXT;
CREATE INDEX work_orders_created ON work_orders (created_at, order_no);
CREATE INDEX work_orders_status ON work_orders (status, created_at);
CREATE INDEX work_orders_category ON work_orders (category, created_at);

-- Every unit's part (lead or co-handler); the unit filter and unit
-- isolation read this.
CREATE TABLE order_assignments (
    order_no      TEXT   NOT NULL,
    unit          TEXT   NOT NULL,
    role          TEXT   NOT NULL,
    state         TEXT   NOT NULL,
    dispatched_at BIGINT NOT NULL,
    PRIMARY KEY (order_no, unit)
);
CREATE INDEX order_assignments_unit ON order_assignments (unit, order_no);

-- The newest clock of each step and unit ('' = the hotline's own steps).
-- next_alert_at is when the scheduler next has something to say.
CREATE TABLE order_clocks (
    order_no        TEXT    NOT NULL,
    unit            TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    started_at      BIGINT  NOT NULL,
    due_at          BIGINT  NOT NULL,
    original_due_at BIGINT  NOT NULL,
    stopped_at      BIGINT,
    alerts_sent     INTEGER NOT NULL,
    next_alert_at   BIGINT,
    PRIMARY KEY (order_no, unit, kind)
);
CREATE INDEX order_clocks_alert ON order_clocks (next_alert_at) WHERE next_alert_at IS NOT NULL;
CREATE INDEX order_clocks_open_due ON order_clocks (due_at, order_no) WHERE stopped_at IS NULL;

-- Append-only: who changed what, when, with the fields before and after,
-- and every read of unmasked personal data.
CREATE TABLE order_audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    order_no TEXT   NOT NULL,
    at       BIGINT NOT NULL,
    actor    TEXT   NOT NULL,
    role     TEXT   NOT NULL,
    action   TEXT   NOT NULL,
    changes  TEXT   NOT NULL
);
CREATE INDEX order_audit_order ON order_audit (order_no, id);

-- Order numbers: YYYYMMDD + a sequence per day, shared by every node.
CREATE TABLE order_numbers (
    day  TEXT   PRIMARY KEY,
    last BIGINT NOT NULL
);

-- Intake retries: one order per Idempotency-Key.
CREATE TABLE order_idempotency (
    idem_key     TEXT   PRIMARY KEY,
    request_hash TEXT   NOT NULL,
    order_no     TEXT   NOT NULL,
    created_at   BIGINT NOT NULL
);
