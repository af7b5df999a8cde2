//! The durable seat log: every change of a seat's status or activity, kept
//! in the store for KPIs and audits. The ACD's in-memory log serves the
//! live board; this one survives restarts.

use super::{Store, StoreError};
use crate::acd::router::{Activity, Status};
use sqlx::Row;

/// One change of one seat.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SeatLogRow {
    pub seat: String,
    /// Unix ms.
    pub at: i64,
    /// `logged_out`, `available` or `on_break`.
    pub status: String,
    /// The break's reason code.
    pub reason: Option<String>,
    /// `idle`, `offered`, `in_call` or `wrap_up`.
    pub activity: String,
    /// The ACD's id of the call offered or in progress.
    pub call: Option<i64>,
}

impl SeatLogRow {
    /// The row for a change the ACD reported.
    pub fn new(seat: &str, at: i64, status: &Status, activity: &Activity) -> SeatLogRow {
        let (status, reason) = match status {
            Status::LoggedOut => ("logged_out", None),
            Status::Available => ("available", None),
            Status::OnBreak(reason) => ("on_break", Some(reason.clone())),
        };
        let (activity, call) = match activity {
            Activity::Idle => ("idle", None),
            Activity::Offered(c) => ("offered", Some(*c)),
            Activity::InCall(c) => ("in_call", Some(*c)),
            Activity::WrapUp => ("wrap_up", None),
        };
        SeatLogRow {
            seat: seat.to_owned(),
            at,
            status: status.into(),
            reason,
            activity: activity.into(),
            call: call.and_then(|c| i64::try_from(c).ok()),
        }
    }
}

impl Store {
    /// Appends changes, with their outbox events, in one transaction.
    pub async fn insert_seat_log(&self, rows: &[SeatLogRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut events = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO seat_log (seat, at, status, reason, activity, call) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(r.seat.clone())
            .bind(r.at)
            .bind(r.status.clone())
            .bind(r.reason.clone())
            .bind(r.activity.clone())
            .bind(r.call)
            .fetch_one(&mut *tx)
            .await?;
            events.push(super::outbox::seat_event(id, r));
        }
        super::outbox::write(&mut tx, self.dialect, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A seat's newest `limit` changes at or after `since` (Unix ms),
    /// oldest first.
    pub async fn seat_log(
        &self,
        seat: &str,
        since: i64,
        limit: i64,
    ) -> Result<Vec<SeatLogRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seat, at, status, reason, activity, call FROM seat_log \
             WHERE seat = $1 AND at >= $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(seat.to_owned())
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|row| {
                Ok(SeatLogRow {
                    seat: row.try_get("seat")?,
                    at: row.try_get("at")?,
                    status: row.try_get("status")?,
                    reason: row.try_get("reason")?,
                    activity: row.try_get("activity")?,
                    call: row.try_get("call")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        out.reverse();
        Ok(out)
    }
}
