//! The wallboard's figures from the database: two statements per refresh,
//! whatever the number of screens, each walking an index over today's rows
//! or the open clocks only (never the whole history).

use super::{Store, StoreError};
use crate::report::wallboard::{CallCounts, OverdueClock, SERVICE_LEVEL_SECS};
use sqlx::Row;
use std::collections::BTreeMap;

/// What the store counts for the board.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BoardCounts {
    pub calls_today: CallCounts,
    pub orders_today: BTreeMap<String, u64>,
    pub overdue_orders: u64,
    pub overdue_oldest: Vec<OverdueClock>,
    pub open_emergency_orders: u64,
}

/// One statement, four parts, each on its own index: today's queued calls
/// (`calls_started_at`), today's orders by status (`work_orders_created`),
/// orders with a running clock past due (`order_clocks_open_due`), open
/// emergency orders (`work_orders_status`). Rows are (part, status, a, b,
/// c, d); only the calls part uses b to d.
const COUNTS: &str = "\
SELECT 'calls' AS part, '' AS status, \
  CAST(COUNT(*) AS BIGINT) AS a, \
  CAST(COALESCE(SUM(CASE WHEN connected_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS b, \
  CAST(COALESCE(SUM(CASE WHEN connected_at IS NOT NULL AND connected_at - queued_at <= $3 \
    THEN 1 ELSE 0 END), 0) AS BIGINT) AS c, \
  CAST(COALESCE(SUM(CASE WHEN connected_at IS NULL AND hangup_by = 'caller' \
    THEN 1 ELSE 0 END), 0) AS BIGINT) AS d \
FROM calls WHERE started_at >= $1 AND queued_at IS NOT NULL \
UNION ALL \
SELECT 'orders', status, CAST(COUNT(*) AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), \
  CAST(0 AS BIGINT) \
FROM work_orders WHERE created_at >= $1 GROUP BY status \
UNION ALL \
SELECT 'overdue', '', CAST(COUNT(DISTINCT order_no) AS BIGINT), CAST(0 AS BIGINT), \
  CAST(0 AS BIGINT), CAST(0 AS BIGINT) \
FROM order_clocks WHERE stopped_at IS NULL AND due_at < $2 \
UNION ALL \
SELECT 'emergency', '', CAST(COUNT(*) AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), \
  CAST(0 AS BIGINT) \
FROM work_orders WHERE status IN ('accepted', 'dispatched', 'handling', 'replied') \
  AND urgency = 'emergency'";

/// The oldest running clocks past due; no citizen column is read.
const OLDEST: &str = "\
SELECT order_no, unit, kind, due_at FROM order_clocks \
WHERE stopped_at IS NULL AND due_at < $1 ORDER BY due_at, order_no LIMIT $2";

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// The board's counts: calls and orders since `day_start` (Unix ms,
    /// local midnight), deadlines as of `now`, and the `oldest` most
    /// overdue clocks.
    pub async fn board_counts(
        &self,
        day_start: i64,
        now: i64,
        oldest: i64,
    ) -> Result<BoardCounts, StoreError> {
        let mut counts = BoardCounts::default();
        let rows = sqlx::query(COUNTS)
            .bind(day_start)
            .bind(now)
            .bind(SERVICE_LEVEL_SECS * 1000)
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            let part: String = row.try_get("part")?;
            let a: i64 = row.try_get("a")?;
            match part.as_str() {
                "calls" => {
                    counts.calls_today = CallCounts {
                        asked: count(a),
                        answered: count(row.try_get("b")?),
                        answered_in_time: count(row.try_get("c")?),
                        abandoned: count(row.try_get("d")?),
                    }
                }
                "orders" => {
                    counts.orders_today.insert(row.try_get("status")?, count(a));
                }
                "overdue" => counts.overdue_orders = count(a),
                _ => counts.open_emergency_orders = count(a),
            }
        }
        let rows = sqlx::query(OLDEST)
            .bind(now)
            .bind(oldest)
            .fetch_all(&self.pool)
            .await?;
        counts.overdue_oldest = rows
            .iter()
            .map(|r| {
                Ok(OverdueClock {
                    order_no: r.try_get("order_no")?,
                    unit: r.try_get("unit")?,
                    step: r.try_get("kind")?,
                    due_at: r.try_get("due_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(counts)
    }
}
