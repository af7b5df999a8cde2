-- Published monthly reports (art. 20): once a month is published its report
-- is served from here byte for byte. The watermarks are the highest call
-- record, seat log and order audit ids the report counted; anything recorded
-- later that belongs to the month is counted in the next month's report.
CREATE TABLE monthly_reports (
    month          TEXT   PRIMARY KEY,
    from_ms        BIGINT NOT NULL,
    to_ms          BIGINT NOT NULL,
    published_at   BIGINT NOT NULL,
    call_id_max    BIGINT NOT NULL,
    seat_log_id_max BIGINT NOT NULL,
    audit_id_max   BIGINT NOT NULL,
    report_json    TEXT   NOT NULL
);
-- The report reads calls by the time they asked for an agent.
CREATE INDEX calls_queued_at ON calls (queued_at);
CREATE INDEX seat_log_at ON seat_log (at);
CREATE INDEX order_audit_at ON order_audit (at);
CREATE INDEX work_orders_updated ON work_orders (updated_at);
