-- Which orders a call belongs to: the IVR survey at the end of a call
-- finds its orders here (and a KPI report joins calls to orders).
CREATE TABLE order_calls (
    call_id  TEXT NOT NULL,
    order_no TEXT NOT NULL,
    PRIMARY KEY (call_id, order_no)
);
CREATE INDEX order_calls_order ON order_calls (order_no);
