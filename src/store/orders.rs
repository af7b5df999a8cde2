//! Work orders in the store: each order is one JSON document with a
//! version, written with the projections the API filters on (status,
//! category, units, clocks), an audit entry and an outbox event
//! ([`super::outbox`]), all in one transaction.
//!
//! Writers hand in a closure that runs the sans-IO lifecycle on the
//! current document ([`Store::change_order`]); the store diffs the document
//! before and after for the audit log ([`crate::orders::audit`]). PostgreSQL
//! locks the row (`FOR UPDATE`) so nodes take turns; SQLite has one writer.

use super::{Dialect, Store, StoreError, insert_rows, outbox};
use crate::auth::Principal;
use crate::orders::audit::diff;
use crate::orders::lifecycle::{Assignment, Event, Refusal, WorkOrder};
use crate::orders::model::{Clock, ClockKind, OrderStatus};
use crate::orders::scheduler::next_alert_at;
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};
use std::collections::BTreeMap;

/// Why an order write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum OrderStoreError {
    #[error("no order {0}")]
    NotFound(String),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("Idempotency-Key {0:?} was already used for a different request")]
    KeyReused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for OrderStoreError {
    fn from(e: sqlx::Error) -> Self {
        OrderStoreError::Store(StoreError::Query(e))
    }
}

/// An order as written, with what the write announced.
#[derive(Debug, Clone)]
pub struct Written {
    pub order: WorkOrder,
    pub version: i64,
    pub events: Vec<Event>,
    /// An earlier request with the same Idempotency-Key made this order.
    pub replayed: bool,
}

/// An intake retry key and a hash of the request it came with.
#[derive(Debug, Clone, Copy)]
pub struct Idempotency<'a> {
    pub key: &'a str,
    pub request_hash: &'a str,
}

/// One line of an order's audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub role: String,
    pub action: String,
    /// `{"field": {"before": .., "after": ..}}`, or what was read.
    pub changes: serde_json::Value,
}

/// Where a listing resumes: the last row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub order_no: String,
}

impl Cursor {
    /// The opaque text clients pass back (`<ms>-<order_no>`).
    pub fn encode(&self) -> String {
        format!("{}-{}", self.created_at, self.order_no)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (at, no) = text.split_once('-')?;
        Some(Cursor {
            created_at: at.parse().ok()?,
            order_no: no.to_owned(),
        })
    }
}

/// What a listing asks for; every field narrows it.
#[derive(Debug, Clone)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    /// Orders this unit has (or had) a part in.
    pub unit: Option<String>,
    /// With (true) or without (false) a running clock past its due time.
    pub overdue: Option<bool>,
    /// A catalogue code or its prefix (`01`, `0101`, `010101`).
    pub category: Option<String>,
    pub created_from: Option<i64>,
    pub created_to: Option<i64>,
    pub order_no: Option<String>,
    pub phone: Option<String>,
    pub after: Option<Cursor>,
    pub limit: i64,
}

impl Default for OrderFilter {
    fn default() -> Self {
        OrderFilter {
            status: None,
            unit: None,
            overdue: None,
            category: None,
            created_from: None,
            created_to: None,
            order_no: None,
            phone: None,
            after: None,
            limit: 50,
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    pub orders: Vec<WorkOrder>,
    pub next: Option<Cursor>,
}

/// A clock the scheduler has something to say about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueClock {
    pub order_no: String,
    pub unit: Option<String>,
    pub kind: ClockKind,
}

pub(super) fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

pub(super) fn to_doc(order: &WorkOrder) -> String {
    serde_json::to_string(order).expect("orders serialise")
}

fn from_doc(text: &str) -> Result<WorkOrder, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Query(sqlx::Error::Decode(Box::new(e))))
}

impl Store {
    /// Makes an order: takes the next number for `day` (`YYYYMMDD`), builds
    /// the order with it, writes it and its audit entry. With an
    /// Idempotency-Key already seen, returns that order instead (or
    /// [`OrderStoreError::KeyReused`] when the request differs).
    pub async fn create_order(
        &self,
        day: &str,
        who: &Principal,
        now: i64,
        percents: &[u8],
        idempotency: Option<Idempotency<'_>>,
        build: impl FnOnce(String) -> Result<(WorkOrder, Vec<Event>), Refusal>,
    ) -> Result<Written, OrderStoreError> {
        if let Some(found) = self.replay(idempotency).await? {
            return Ok(found);
        }
        const NEXT: &str = "INSERT INTO order_numbers (day, last) VALUES ($1, 1) \
             ON CONFLICT (day) DO UPDATE SET last = order_numbers.last + 1 RETURNING last";
        // On PostgreSQL the number is taken in a statement of its own:
        // inside the order's transaction the day's counter row would stay
        // locked until commit and every intake of the day would queue
        // behind it (a write that fails afterwards leaves a gap, never a
        // duplicate). SQLite has one writer anyway, and a statement of its
        // own would cost a second commit.
        let early = match self.dialect {
            Dialect::Postgres => Some(
                sqlx::query_scalar::<_, i64>(NEXT)
                    .bind(day.to_owned())
                    .fetch_one(&self.pool)
                    .await?,
            ),
            Dialect::Sqlite => None,
        };
        let mut tx = self.pool.begin().await?;
        let seq = match early {
            Some(seq) => seq,
            None => {
                sqlx::query_scalar::<_, i64>(NEXT)
                    .bind(day.to_owned())
                    .fetch_one(&mut *tx)
                    .await?
            }
        };
        let order_no = format!("{day}{seq:06}");
        if let Some(key) = idempotency {
            // Claim the key first: a concurrent retry with the same key
            // waits here for ours to commit, then finds the key taken and
            // replays our order instead of making a second.
            let claimed = sqlx::query(
                "INSERT INTO order_idempotency (idem_key, request_hash, order_no, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (idem_key) DO NOTHING",
            )
            .bind(key.key.to_owned())
            .bind(key.request_hash.to_owned())
            .bind(order_no.clone())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if claimed.rows_affected() == 0 {
                tx.rollback().await?;
                return match self.replay(idempotency).await? {
                    Some(found) => Ok(found),
                    None => Err(OrderStoreError::NotFound(order_no)),
                };
            }
        }
        let (order, events) = build(order_no)?;
        sqlx::query(
            "INSERT INTO work_orders (order_no, caller, status, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, 0)",
        )
        .bind(order.order_no.clone())
        .bind(order.intake.citizen.phone.as_str().to_owned())
        .bind(order.status.as_str())
        .bind(order.created_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        write_projections(&mut tx, self.dialect, &order, 1, now, percents, true).await?;
        let changes =
            serde_json::json!({"created": serde_json::to_value(&order).unwrap_or_default()});
        insert_audit(&mut tx, &order.order_no, now, who, "create", &changes).await?;
        let event = outbox::order_event(&order, 1, "order.created", &events, now);
        outbox::write(&mut tx, self.dialect, std::slice::from_ref(&event)).await?;
        tx.commit().await?;
        Ok(Written {
            order,
            version: 1,
            events,
            replayed: false,
        })
    }

    async fn replay(
        &self,
        idempotency: Option<Idempotency<'_>>,
    ) -> Result<Option<Written>, OrderStoreError> {
        let Some(key) = idempotency else {
            return Ok(None);
        };
        let row =
            sqlx::query("SELECT request_hash, order_no FROM order_idempotency WHERE idem_key = $1")
                .bind(key.key.to_owned())
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let hash: String = row.try_get("request_hash")?;
        let order_no: String = row.try_get("order_no")?;
        if hash != key.request_hash {
            return Err(OrderStoreError::KeyReused(key.key.to_owned()));
        }
        let (order, version) = self
            .order(&order_no)
            .await?
            .ok_or(OrderStoreError::NotFound(order_no))?;
        Ok(Some(Written {
            order,
            version,
            events: Vec::new(),
            replayed: true,
        }))
    }

    /// Runs `change` on the order's current document and writes the result
    /// with its projections and an audit entry named `action`, in one
    /// transaction. A refusal or an unchanged document writes nothing.
    pub async fn change_order(
        &self,
        order_no: &str,
        who: &Principal,
        now: i64,
        percents: &[u8],
        action: &str,
        change: impl FnOnce(&mut WorkOrder) -> Result<Vec<Event>, Refusal>,
    ) -> Result<Written, OrderStoreError> {
        let mut tx = self.pool.begin().await?;
        let w = self
            .change_in(&mut tx, order_no, who, now, percents, action, change)
            .await?;
        tx.commit().await?;
        Ok(w)
    }

    /// Runs `change` on each order, all in one transaction (one commit
    /// for many small changes, as the deadline sweep makes). An order that
    /// is gone or refuses is left as it was and the others go on; a
    /// database error writes none of them. Unchanged orders are not
    /// returned.
    #[allow(clippy::too_many_arguments)]
    pub async fn change_orders(
        &self,
        order_nos: &[String],
        who: &Principal,
        now: i64,
        percents: &[u8],
        action: &str,
        mut change: impl FnMut(&mut WorkOrder) -> Result<Vec<Event>, Refusal>,
    ) -> Result<Vec<Written>, OrderStoreError> {
        let mut tx = self.pool.begin().await?;
        let mut written = Vec::new();
        for no in order_nos {
            match self
                .change_in(&mut tx, no, who, now, percents, action, |o| change(o))
                .await
            {
                Ok(w) if !w.events.is_empty() => written.push(w),
                Ok(_) | Err(OrderStoreError::NotFound(_)) | Err(OrderStoreError::Refused(_)) => {}
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Changes two orders in one transaction (并单: the repeat closes into
    /// the first, which takes in its calls); both or neither.
    #[allow(clippy::too_many_arguments)]
    pub async fn change_two_orders(
        &self,
        first: (&str, &str),
        second: (&str, &str),
        who: &Principal,
        now: i64,
        percents: &[u8],
        change_first: impl FnOnce(&mut WorkOrder) -> Result<Vec<Event>, Refusal>,
        change_second: impl FnOnce(&WorkOrder, &mut WorkOrder) -> Result<Vec<Event>, Refusal>,
    ) -> Result<(Written, Written), OrderStoreError> {
        let mut tx = self.pool.begin().await?;
        let a = self
            .change_in(&mut tx, first.0, who, now, percents, first.1, change_first)
            .await?;
        let done = a.order.clone();
        let b = self
            .change_in(&mut tx, second.0, who, now, percents, second.1, |o| {
                change_second(&done, o)
            })
            .await?;
        tx.commit().await?;
        Ok((a, b))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn change_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        order_no: &str,
        who: &Principal,
        now: i64,
        percents: &[u8],
        action: &str,
        change: impl FnOnce(&mut WorkOrder) -> Result<Vec<Event>, Refusal>,
    ) -> Result<Written, OrderStoreError> {
        let lock = match self.dialect {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        };
        let sql = format!("SELECT doc, version FROM work_orders WHERE order_no = $1{lock}");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(order_no.to_owned())
            .fetch_optional(&mut **tx)
            .await?;
        let Some(row) = row else {
            return Err(OrderStoreError::NotFound(order_no.to_owned()));
        };
        let text: Option<String> = row.try_get("doc")?;
        let version: i64 = row.try_get("version")?;
        let text = text.ok_or_else(|| OrderStoreError::NotFound(order_no.to_owned()))?;
        let before = from_doc(&text)?;
        let mut order = before.clone();
        let events = change(&mut order)?;
        if order == before {
            return Ok(Written {
                order,
                version,
                events,
                replayed: false,
            });
        }
        let changes = diff(
            &serde_json::to_value(&before).unwrap_or_default(),
            &serde_json::to_value(&order).unwrap_or_default(),
        );
        write_projections(tx, self.dialect, &order, version + 1, now, percents, false).await?;
        insert_audit(tx, order_no, now, who, action, &changes).await?;
        let event = outbox::order_event(&order, version + 1, "order.changed", &events, now);
        outbox::write(tx, self.dialect, std::slice::from_ref(&event)).await?;
        Ok(Written {
            order,
            version: version + 1,
            events,
            replayed: false,
        })
    }

    /// An order and its version.
    pub async fn order(&self, order_no: &str) -> Result<Option<(WorkOrder, i64)>, StoreError> {
        let row = sqlx::query("SELECT doc, version FROM work_orders WHERE order_no = $1")
            .bind(order_no.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let Some(text) = row.try_get::<Option<String>, _>("doc")? else {
            return Ok(None);
        };
        Ok(Some((from_doc(&text)?, row.try_get("version")?)))
    }

    /// The order's audit log, oldest first.
    pub async fn order_audit(&self, order_no: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, role, action, changes FROM order_audit \
             WHERE order_no = $1 ORDER BY id",
        )
        .bind(order_no.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let changes: String = r.try_get("changes")?;
                Ok(AuditEntry {
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    role: r.try_get("role")?,
                    action: r.try_get("action")?,
                    changes: serde_json::from_str(&changes).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Records that `who` read the order's unmasked personal data.
    pub async fn audit_personal_read(
        &self,
        order_no: &str,
        who: &Principal,
        now: i64,
        fields: &[&str],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let read = serde_json::json!({ "read": fields });
        insert_audit(&mut tx, order_no, now, who, "read_personal_data", &read).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A page of orders, newest first.
    pub async fn list_orders(&self, filter: &OrderFilter, now: i64) -> Result<Page, StoreError> {
        let mut binds: Vec<Bind> = Vec::new();
        let arg = |b: Bind, binds: &mut Vec<Bind>| {
            binds.push(b);
            format!("${}", binds.len())
        };
        // A unit's listing walks its own assignment rows (indexed by unit
        // and creation time, newest first); others walk the orders. `t` is
        // the table whose creation time and number order the page.
        let (mut sql, t) = match &filter.unit {
            Some(unit) => {
                let p = arg(Bind::Text(unit.clone()), &mut binds);
                (
                    format!(
                        "SELECT w.doc, a.created_at, a.order_no FROM order_assignments a \
                         JOIN work_orders w ON w.order_no = a.order_no \
                         WHERE a.unit = {p} AND w.doc IS NOT NULL"
                    ),
                    "a",
                )
            }
            None => (
                "SELECT w.doc, w.created_at, w.order_no FROM work_orders w \
                 WHERE w.doc IS NOT NULL"
                    .to_owned(),
                "w",
            ),
        };
        if let Some(s) = filter.status {
            let p = arg(Bind::Text(s.as_str().into()), &mut binds);
            sql.push_str(&format!(" AND w.status = {p}"));
        }
        if let Some(overdue) = filter.overdue {
            let p = arg(Bind::Int(now), &mut binds);
            sql.push_str(&format!(
                " AND {}EXISTS (SELECT 1 FROM order_clocks c WHERE c.order_no = w.order_no \
                 AND c.stopped_at IS NULL AND c.due_at < {p})",
                if overdue { "" } else { "NOT " }
            ));
        }
        if let Some(cat) = &filter.category {
            let p = arg(Bind::Text(cat.clone()), &mut binds);
            match cat.len() {
                // A catalogue level: its own index, already in page order
                // (the expressions match the migration's indexes).
                2 | 4 => sql.push_str(&format!(" AND substr(w.category, 1, {}) = {p}", cat.len())),
                6 => sql.push_str(&format!(" AND w.category = {p}")),
                // Any other prefix as a range, which works under any
                // collation: codes are digits, and everything starting
                // with '010' sorts between '010' and '011'.
                _ => {
                    sql.push_str(&format!(" AND w.category >= {p}"));
                    if let Some(next) = next_prefix(cat) {
                        let hi = arg(Bind::Text(next), &mut binds);
                        sql.push_str(&format!(" AND w.category < {hi}"));
                    }
                }
            }
        }
        if let Some(from) = filter.created_from {
            let p = arg(Bind::Int(from), &mut binds);
            sql.push_str(&format!(" AND {t}.created_at >= {p}"));
        }
        if let Some(to) = filter.created_to {
            let p = arg(Bind::Int(to), &mut binds);
            sql.push_str(&format!(" AND {t}.created_at < {p}"));
        }
        if let Some(no) = &filter.order_no {
            let p = arg(Bind::Text(no.clone()), &mut binds);
            sql.push_str(&format!(" AND w.order_no = {p}"));
        }
        if let Some(phone) = &filter.phone {
            let p = arg(Bind::Text(phone.clone()), &mut binds);
            sql.push_str(&format!(" AND w.caller = {p}"));
        }
        if let Some(c) = &filter.after {
            let at = arg(Bind::Int(c.created_at), &mut binds);
            let at2 = arg(Bind::Int(c.created_at), &mut binds);
            let no = arg(Bind::Text(c.order_no.clone()), &mut binds);
            sql.push_str(&format!(
                " AND ({t}.created_at < {at} OR ({t}.created_at = {at2} AND {t}.order_no < {no}))"
            ));
        }
        let limit = filter.limit.clamp(1, 500);
        let p = arg(Bind::Int(limit + 1), &mut binds);
        sql.push_str(&format!(
            " ORDER BY {t}.created_at DESC, {t}.order_no DESC LIMIT {p}"
        ));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut orders = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in rows.iter().take(limit as usize) {
            let text: String = row.try_get("doc")?;
            orders.push(from_doc(&text)?);
            last = Some(Cursor {
                created_at: row.try_get("created_at")?,
                order_no: row.try_get("order_no")?,
            });
        }
        let next = if rows.len() as i64 > limit {
            last
        } else {
            None
        };
        Ok(Page { orders, next })
    }

    /// The orders a call belongs to.
    pub async fn orders_of_call(&self, call_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query_scalar("SELECT order_no FROM order_calls WHERE call_id = $1")
            .bind(call_id.to_owned())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    /// Clocks whose next alert has fallen due by `now`, oldest first.
    pub async fn clocks_due(&self, now: i64, limit: i64) -> Result<Vec<DueClock>, StoreError> {
        let rows = sqlx::query(
            "SELECT order_no, unit, kind FROM order_clocks \
             WHERE next_alert_at IS NOT NULL AND next_alert_at <= $1 \
             ORDER BY next_alert_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let unit: String = r.try_get("unit")?;
                let kind: String = r.try_get("kind")?;
                Ok(DueClock {
                    order_no: r.try_get("order_no")?,
                    unit: (!unit.is_empty()).then_some(unit),
                    kind: ClockKind::parse(&kind).unwrap_or(ClockKind::Handle),
                })
            })
            .collect()
    }
}

/// The smallest digit string after every string starting with `prefix`
/// (`0109` → `011`); `None` when the prefix is all nines.
fn next_prefix(prefix: &str) -> Option<String> {
    let trimmed = prefix.trim_end_matches('9');
    let last = trimmed.chars().last()?;
    let bumped = char::from_digit(last.to_digit(10)? + 1, 10)?;
    Some(format!("{}{bumped}", &trimmed[..trimmed.len() - 1]))
}

enum Bind {
    Text(String),
    Int(i64),
}

/// Rewrites the order's row and projections from its document (`fresh`:
/// the order was just inserted).
#[allow(clippy::too_many_arguments)]
async fn write_projections(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    order: &WorkOrder,
    version: i64,
    now: i64,
    percents: &[u8],
    fresh: bool,
) -> Result<(), StoreError> {
    let i = &order.intake;
    sqlx::query(
        "UPDATE work_orders SET status = $1, updated_at = $2, channel = $3, appeal_type = $4, \
         category = $5, urgency = $6, division = $7, lead_unit = $8, escalated = $9, \
         closed_at = $10, version = $11, doc = $12, caller = $13 WHERE order_no = $14",
    )
    .bind(order.status.as_str())
    .bind(now)
    .bind(name_of(&i.channel))
    .bind(name_of(&i.appeal_type))
    .bind(i.category.clone())
    .bind(name_of(&i.urgency))
    .bind(i.division.clone())
    .bind(order.lead().map(|a| a.unit.clone()))
    .bind(i32::from(order.escalated.is_some()))
    .bind(order.closed_at)
    .bind(version)
    .bind(to_doc(order))
    .bind(i.citizen.phone.as_str().to_owned())
    .bind(order.order_no.clone())
    .execute(&mut **tx)
    .await?;
    // A new order has no projection rows yet.
    let tables: &[&str] = if fresh {
        &[]
    } else {
        &["order_assignments", "order_calls", "order_clocks"]
    };
    for table in tables {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE order_no = $1"
        )))
        .bind(order.order_no.clone())
        .execute(&mut **tx)
        .await?;
    }
    let orders = std::slice::from_ref(order);
    insert_parts(tx, dialect, orders).await?;
    insert_calls_of(tx, dialect, orders).await?;
    insert_clocks(tx, dialect, orders, percents).await?;
    Ok(())
}

/// One `order_assignments` row per unit of each order: its newest part.
pub(super) async fn insert_parts(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    orders: &[WorkOrder],
) -> Result<(), StoreError> {
    let mut rows: Vec<(&WorkOrder, &Assignment)> = Vec::new();
    for order in orders {
        let mut newest = BTreeMap::new();
        for a in &order.assignments {
            newest.insert(a.unit.as_str(), a);
        }
        rows.extend(newest.into_values().map(|a| (order, a)));
    }
    insert_rows(
        tx,
        dialect,
        "INSERT INTO order_assignments (order_no, unit, role, state, dispatched_at, created_at) \
         VALUES ",
        6,
        "",
        &rows,
        |q, (order, a)| {
            q.bind(order.order_no.clone())
                .bind(a.unit.clone())
                .bind(name_of(&a.role))
                .bind(name_of(&a.state))
                .bind(a.dispatched_at)
                .bind(order.created_at)
        },
    )
    .await
}

/// One `order_calls` row per call each order links.
pub(super) async fn insert_calls_of(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    orders: &[WorkOrder],
) -> Result<(), StoreError> {
    let mut rows: Vec<(&str, &str)> = Vec::new();
    for order in orders {
        let mut ids: Vec<&str> = order
            .intake
            .calls
            .iter()
            .map(|c| c.call_id.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        rows.extend(ids.into_iter().map(|id| (id, order.order_no.as_str())));
    }
    insert_rows(
        tx,
        dialect,
        "INSERT INTO order_calls (call_id, order_no) VALUES ",
        2,
        "",
        &rows,
        |q, (call_id, order_no)| q.bind((*call_id).to_owned()).bind((*order_no).to_owned()),
    )
    .await
}

/// One `order_clocks` row per step and unit of each order: its newest
/// clock, with when its next alert falls.
pub(super) async fn insert_clocks(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    orders: &[WorkOrder],
    percents: &[u8],
) -> Result<(), StoreError> {
    let mut rows: Vec<(&str, String, ClockKind, &Clock)> = Vec::new();
    for order in orders {
        let mut newest: BTreeMap<(String, ClockKind), &Clock> = BTreeMap::new();
        for c in &order.clocks {
            newest.insert((c.unit.clone().unwrap_or_default(), c.kind), c);
        }
        rows.extend(
            newest
                .into_iter()
                .map(|((unit, kind), c)| (order.order_no.as_str(), unit, kind, c)),
        );
    }
    insert_rows(
        tx,
        dialect,
        "INSERT INTO order_clocks (order_no, unit, kind, started_at, due_at, \
         original_due_at, stopped_at, alerts_sent, next_alert_at) VALUES ",
        9,
        "",
        &rows,
        |q, (order_no, unit, kind, c)| {
            q.bind((*order_no).to_owned())
                .bind(unit.clone())
                .bind(kind.as_str())
                .bind(c.started_at)
                .bind(c.due_at)
                .bind(c.original_due_at)
                .bind(c.stopped_at)
                .bind(i32::from(c.alerts_sent))
                .bind(next_alert_at(c, percents))
        },
    )
    .await
}

async fn insert_audit(
    tx: &mut Transaction<'static, Any>,
    order_no: &str,
    now: i64,
    who: &Principal,
    action: &str,
    changes: &serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO order_audit (order_no, at, actor, role, action, changes) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(order_no.to_owned())
    .bind(now)
    .bind(who.name.clone())
    .bind(who.role.as_str())
    .bind(action.to_owned())
    .bind(changes.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::next_prefix;

    #[test]
    fn prefix_ranges_carry() {
        assert_eq!(next_prefix("01").as_deref(), Some("02"));
        assert_eq!(next_prefix("0109").as_deref(), Some("011"));
        assert_eq!(next_prefix("0199").as_deref(), Some("02"));
        assert_eq!(next_prefix("99"), None);
        assert_eq!(next_prefix(""), None);
    }
}
