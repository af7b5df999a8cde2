//! Writes every seat change to the store's seat log. Changes arrive on the
//! ACD's event hub and are written in batches once a second; while the
//! database is away they wait in memory (up to a bound) and go in when it
//! returns, so a restart of the database loses no audit trail.

use crate::acd::events::SeatEvent;
use crate::server::Shared;
use crate::store::seat_log::SeatLogRow;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// Changes kept while the database is away; the oldest go first beyond it.
const MAX_PENDING: usize = 100_000;

/// Runs until `stop`, then writes what is left.
pub async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut events = shared.acd.events.subscribe();
    let mut pending: Vec<SeatLogRow> = Vec::new();
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(SeatEvent::State { seat, at, status, activity }) => {
                    if pending.len() >= MAX_PENDING {
                        pending.remove(0);
                        tracing::warn!("seat log backlog full: oldest change dropped");
                    }
                    pending.push(SeatLogRow::new(&seat, at, &status, &activity));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "seat log fell behind the ACD; changes lost");
                }
                Err(RecvError::Closed) => return,
            },
            _ = every.tick() => flush(&shared, &mut pending).await,
            _ = stop.cancelled() => {
                flush(&shared, &mut pending).await;
                return;
            }
        }
    }
}

async fn flush(shared: &Shared, pending: &mut Vec<SeatLogRow>) {
    if pending.is_empty() {
        return;
    }
    match shared.store.insert_seat_log(pending).await {
        Ok(()) => pending.clear(),
        Err(e) => tracing::warn!(error = %e, waiting = pending.len(), "seat log not written yet"),
    }
}
