-- What the IVR did with each call.
ALTER TABLE calls ADD COLUMN flow TEXT;
ALTER TABLE calls ADD COLUMN flow_hash TEXT;
-- JSON array of "flow:node" in the order entered.
ALTER TABLE calls ADD COLUMN flow_path TEXT;
-- queue:<name>:<priority>, transfer:<target>, or hangup.
ALTER TABLE calls ADD COLUMN final_action TEXT;
ALTER TABLE calls ADD COLUMN queue TEXT;
ALTER TABLE calls ADD COLUMN survey_score INTEGER;
ALTER TABLE calls ADD COLUMN callback_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN recording TEXT;
ALTER TABLE calls ADD COLUMN language TEXT;

-- Work orders, as far as the IVR needs them (status lookup, repeat
-- callers); the order lifecycle adds to this table.
CREATE TABLE work_orders (
    order_no    TEXT   PRIMARY KEY,
    caller      TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX work_orders_caller ON work_orders (caller, created_at);
