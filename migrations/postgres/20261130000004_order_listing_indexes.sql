-- Listings newest first by unit and by category level, from an index in
-- order: a unit's orders from its own rows (an idle unit no longer walks
-- every order), a category's from an index per code level (no sort of
-- every match to keep a page).
ALTER TABLE order_assignments ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
UPDATE order_assignments SET created_at =
    (SELECT w.created_at FROM work_orders w WHERE w.order_no = order_assignments.order_no);
DROP INDEX order_assignments_unit;
CREATE INDEX order_assignments_unit ON order_assignments (unit, created_at, order_no);
DROP INDEX work_orders_category;
CREATE INDEX work_orders_category ON work_orders (category, created_at, order_no);
CREATE INDEX work_orders_category2 ON work_orders (substr(category, 1, 2), created_at, order_no);
CREATE INDEX work_orders_category4 ON work_orders (substr(category, 1, 4), created_at, order_no);
