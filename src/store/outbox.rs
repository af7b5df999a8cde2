//! The outbox: every call, seat and order event, written in the same
//! transaction as the change it describes, for the pusher
//! ([`crate::push`]) to deliver to the region platform (art. 14).
//!
//! Writers call [`write`] inside their own transaction. Each event's id is
//! derived from what it describes (order number and version, call id and
//! start, seat log id), and a second write of the same id is ignored, so a
//! retried write never makes a second event. The reader side
//! ([`Store::outbox_after`]) hands the pusher rows in `seq` order together
//! with the database's transaction horizon on PostgreSQL, which is what
//! lets the pusher tell a gap that may still fill from one that never will
//! (see [`crate::push::delivery`]). Cursors and leases live here too.

use super::{Dialect, Store, StoreError, insert_rows};
use crate::call::record::CallRecord;
use crate::orders::lifecycle::{Event, WorkOrder};
use crate::store::seat_log::SeatLogRow;
use serde_json::{Value, json};
use sqlx::{Any, Row, Transaction};

/// An event to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: String,
    pub stream: String,
    pub kind: &'static str,
    pub at: i64,
    pub payload: Value,
}

/// An event as stored, ready to push.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub seq: i64,
    pub event_id: String,
    pub stream: String,
    pub kind: String,
    pub at: i64,
    /// JSON text, as written.
    pub payload: String,
}

/// PostgreSQL's transaction horizon when rows were read: every transaction
/// with an id below `xmin` had finished, and every id below `xmax` had been
/// handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    pub xmin: i64,
    pub xmax: i64,
}

/// The event of an order write: its number and version name it.
pub fn order_event(
    order: &WorkOrder,
    version: i64,
    kind: &'static str,
    events: &[Event],
    at: i64,
) -> NewEvent {
    let events: Vec<Value> = events
        .iter()
        .map(|e| json!({"kind": e.kind, "unit": e.unit, "detail": e.detail}))
        .collect();
    NewEvent {
        event_id: format!("order:{}:v{version}", order.order_no),
        stream: order.order_no.clone(),
        kind,
        at,
        payload: json!({
            "order_no": order.order_no,
            "version": version,
            "events": events,
            "order": order,
        }),
    }
}

/// The event of a finished call's record.
pub fn call_event(record: &CallRecord) -> NewEvent {
    NewEvent {
        event_id: format!("call:{}:{}", record.call_id, record.started_at),
        stream: record.call_id.clone(),
        kind: "call.ended",
        at: record.ended_at,
        payload: json!({ "call": record }),
    }
}

/// The event of one seat log row (its id names it).
pub fn seat_event(id: i64, row: &SeatLogRow) -> NewEvent {
    NewEvent {
        event_id: format!("seat:{id}"),
        stream: row.seat.clone(),
        kind: "seat.changed",
        at: row.at,
        payload: json!({ "seat": row }),
    }
}

/// Writes events inside the caller's transaction; ids already present are
/// skipped.
pub(crate) async fn write(
    tx: &mut Transaction<'static, Any>,
    dialect: Dialect,
    events: &[NewEvent],
) -> Result<(), StoreError> {
    insert_rows(
        tx,
        dialect,
        "INSERT INTO outbox (event_id, stream, kind, at, payload) VALUES ",
        5,
        " ON CONFLICT (event_id) DO NOTHING",
        events,
        |q, e| {
            q.bind(e.event_id.clone())
                .bind(e.stream.clone())
                .bind(e.kind)
                .bind(e.at)
                .bind(e.payload.to_string())
        },
    )
    .await
}

impl Store {
    /// Up to `limit` events after `seq`, in order, with the transaction
    /// horizon they were read at (PostgreSQL; `None` on SQLite, whose one
    /// writer commits in `seq` order).
    pub async fn outbox_after(
        &self,
        seq: i64,
        limit: i64,
    ) -> Result<(Vec<OutboxRow>, Option<Horizon>), StoreError> {
        let mut tx = self.pool.begin().await?;
        let horizon = match self.dialect {
            Dialect::Postgres => {
                // One snapshot for the horizon and the rows.
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    .execute(&mut *tx)
                    .await?;
                let row = sqlx::query(
                    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin, \
                     pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax",
                )
                .fetch_one(&mut *tx)
                .await?;
                Some(Horizon {
                    xmin: row.try_get("xmin")?,
                    xmax: row.try_get("xmax")?,
                })
            }
            Dialect::Sqlite => None,
        };
        let rows = sqlx::query(
            "SELECT seq, event_id, stream, kind, at, payload FROM outbox \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(OutboxRow {
                    seq: r.try_get("seq")?,
                    event_id: r.try_get("event_id")?,
                    stream: r.try_get("stream")?,
                    kind: r.try_get("kind")?,
                    at: r.try_get("at")?,
                    payload: r.try_get("payload")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok((rows, horizon))
    }

    /// The newest event's seq (0 when there is none).
    pub async fn outbox_head(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM outbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// How far `sink` has acknowledged (0: nothing yet).
    pub async fn push_cursor(&self, sink: &str) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM outbox_cursors WHERE sink = $1")
            .bind(sink.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// Takes or renews `sink`'s lease until `now + ttl_ms`; false while
    /// another holder's lease runs.
    pub async fn take_lease(
        &self,
        sink: &str,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO outbox_leases (sink, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sink) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE outbox_leases.holder = excluded.holder OR outbox_leases.expires_at < $4",
        )
        .bind(sink.to_owned())
        .bind(holder.to_owned())
        .bind(now + ttl_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves `sink`'s cursor to `seq` and renews the lease, both only if
    /// `holder` still holds it (false: the lease was lost, nothing moved).
    pub async fn advance_cursor(
        &self,
        sink: &str,
        holder: &str,
        seq: i64,
        now: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let held =
            sqlx::query("UPDATE outbox_leases SET expires_at = $1 WHERE sink = $2 AND holder = $3")
                .bind(now + ttl_ms)
                .bind(sink.to_owned())
                .bind(holder.to_owned())
                .execute(&mut *tx)
                .await?;
        if held.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO outbox_cursors (sink, seq, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sink) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
        )
        .bind(sink.to_owned())
        .bind(seq)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Gives the lease up (at a clean stop), so the next pusher need not
    /// wait for it to expire.
    pub async fn release_lease(&self, sink: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM outbox_leases WHERE sink = $1 AND holder = $2")
            .bind(sink.to_owned())
            .bind(holder.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes delivered events (`seq <= upto`) older than `before`.
    pub async fn prune_outbox(&self, upto: i64, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM outbox WHERE seq <= $1 AND at < $2")
            .bind(upto)
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
