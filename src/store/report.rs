//! Queries of the monthly report: the rows a month's KPIs are counted from
//! (read in one transaction, so they agree with the watermarks taken with
//! them), and the published reports (`monthly_reports`), which never
//! change once written.

use super::{Dialect, Store, StoreError};
use crate::orders::lifecycle::WorkOrder;
use crate::report::kpi::{CallRow, SeatRow, Watermarks};
use sqlx::Row;
use std::collections::HashMap;

/// A period to read: `[from, to)`, rows with ids above `after_id` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: i64,
    pub to: i64,
    /// The published month's watermark (0 for the month itself).
    pub after: Watermarks,
}

/// Everything a month's report is counted from.
#[derive(Debug, Default)]
pub struct MonthRows {
    pub calls: Vec<CallRow>,
    /// By seat, time, id.
    pub seat_log: Vec<SeatRow>,
    pub orders: Vec<WorkOrder>,
    /// (order, time) → lowest audit id, for changes in the spans after the
    /// first whose audit id is above that span's watermark.
    pub order_change_ids: HashMap<(String, i64), i64>,
    /// The highest ids when the rows were read.
    pub watermarks: Watermarks,
}

/// A stored report.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub month: String,
    pub published_at: i64,
    pub watermarks: Watermarks,
    pub json: String,
}

/// Wrap-up started near a span's end closes at the seat's next row; read
/// this far past the end to find it.
const SEAT_TAIL_MS: i64 = 6 * 3_600_000;

impl Store {
    /// Reads the rows of `spans` (the month first, then earlier published
    /// months whose late rows it takes in). Orders are those changed since
    /// `orders_since`, still open, or with a handle clock due in the month.
    pub async fn report_rows(
        &self,
        spans: &[Span],
        orders_since: i64,
    ) -> Result<MonthRows, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.dialect == Dialect::Postgres {
            // One snapshot for the watermarks and every row.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        let max = |table: &'static str| format!("SELECT COALESCE(MAX(id), 0) FROM {table}");
        let mut w = Watermarks::default();
        for (table, slot) in [
            ("calls", &mut w.call_id),
            ("seat_log", &mut w.seat_log_id),
            ("order_audit", &mut w.audit_id),
        ] {
            *slot = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(max(table)))
                .fetch_one(&mut *tx)
                .await?;
        }
        let mut rows = MonthRows {
            watermarks: w,
            ..MonthRows::default()
        };
        for s in spans {
            let calls = sqlx::query(
                "SELECT id, queue, queued_at, connected_at, seat_ended_at, ended_at, \
                 callback_requested FROM calls \
                 WHERE queued_at >= $1 AND queued_at < $2 AND id > $3 AND id <= $4",
            )
            .bind(s.from)
            .bind(s.to)
            .bind(s.after.call_id)
            .bind(w.call_id)
            .fetch_all(&mut *tx)
            .await?;
            for r in &calls {
                rows.calls.push(CallRow {
                    id: r.try_get("id")?,
                    queue: r.try_get("queue")?,
                    queued_at: r.try_get("queued_at")?,
                    connected_at: r.try_get("connected_at")?,
                    seat_ended_at: r.try_get("seat_ended_at")?,
                    ended_at: r.try_get("ended_at")?,
                    callback_requested: r.try_get::<i32, _>("callback_requested")? != 0,
                });
            }
            let seats = sqlx::query(
                "SELECT id, seat, at, activity FROM seat_log \
                 WHERE at >= $1 AND at < $2 AND id > $3 AND id <= $4",
            )
            .bind(s.from)
            .bind(s.to + SEAT_TAIL_MS)
            .bind(s.after.seat_log_id)
            .bind(w.seat_log_id)
            .fetch_all(&mut *tx)
            .await?;
            for r in &seats {
                rows.seat_log.push(SeatRow {
                    id: r.try_get("id")?,
                    seat: r.try_get("seat")?,
                    at: r.try_get("at")?,
                    activity: r.try_get("activity")?,
                });
            }
            if s.after.audit_id > 0 {
                let late = sqlx::query(
                    "SELECT order_no, at, MIN(id) AS first FROM order_audit \
                     WHERE at >= $1 AND at < $2 AND id <= $4 \
                     GROUP BY order_no, at HAVING MIN(id) > $3",
                )
                .bind(s.from)
                .bind(s.to)
                .bind(s.after.audit_id)
                .bind(w.audit_id)
                .fetch_all(&mut *tx)
                .await?;
                for r in &late {
                    rows.order_change_ids.insert(
                        (r.try_get("order_no")?, r.try_get("at")?),
                        r.try_get("first")?,
                    );
                }
            }
        }
        rows.seat_log
            .sort_by(|a, b| (&a.seat, a.at, a.id).cmp(&(&b.seat, b.at, b.id)));
        rows.seat_log.dedup_by_key(|r| r.id);
        let (from, to) = spans.first().map(|s| (s.from, s.to)).unwrap_or_default();
        let docs = sqlx::query(
            "SELECT doc FROM work_orders WHERE doc IS NOT NULL AND (updated_at >= $1 \
             OR status NOT IN ('draft', 'closed', 'archived') \
             OR order_no IN (SELECT order_no FROM order_clocks \
                             WHERE kind = 'handle' AND due_at >= $2 AND due_at < $3)) \
             ORDER BY order_no",
        )
        .bind(orders_since)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?;
        for r in &docs {
            let text: String = r.try_get("doc")?;
            let order = serde_json::from_str(&text)
                .map_err(|e| StoreError::Query(sqlx::Error::Decode(Box::new(e))))?;
            rows.orders.push(order);
        }
        tx.commit().await?;
        Ok(rows)
    }

    /// Every published month with its watermarks.
    pub async fn published_months(&self) -> Result<Vec<(String, Watermarks)>, StoreError> {
        let rows = sqlx::query(
            "SELECT month, call_id_max, seat_log_id_max, audit_id_max FROM monthly_reports \
             ORDER BY month",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("month")?,
                    Watermarks {
                        call_id: r.try_get("call_id_max")?,
                        seat_log_id: r.try_get("seat_log_id_max")?,
                        audit_id: r.try_get("audit_id_max")?,
                    },
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// A published month's report.
    pub async fn published_report(&self, month: &str) -> Result<Option<Published>, StoreError> {
        let row = sqlx::query(
            "SELECT month, published_at, call_id_max, seat_log_id_max, audit_id_max, \
             report_json FROM monthly_reports WHERE month = $1",
        )
        .bind(month.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Published {
                month: r.try_get("month")?,
                published_at: r.try_get("published_at")?,
                watermarks: Watermarks {
                    call_id: r.try_get("call_id_max")?,
                    seat_log_id: r.try_get("seat_log_id_max")?,
                    audit_id: r.try_get("audit_id_max")?,
                },
                json: r.try_get("report_json")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| StoreError::from(e))
    }

    /// Stores a month's report; `false` when the month was already
    /// published (the stored one stays).
    pub async fn publish_report(
        &self,
        p: &Published,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO monthly_reports (month, from_ms, to_ms, published_at, call_id_max, \
             seat_log_id_max, audit_id_max, report_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (month) DO NOTHING",
        )
        .bind(p.month.clone())
        .bind(from_ms)
        .bind(to_ms)
        .bind(p.published_at)
        .bind(p.watermarks.call_id)
        .bind(p.watermarks.seat_log_id)
        .bind(p.watermarks.audit_id)
        .bind(p.json.clone())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
