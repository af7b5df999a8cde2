//! The deadline sweeper: every `[orders] sweep_secs` it asks the store for
//! clocks whose next alert has fallen due (an indexed column, so the sweep
//! reads only those), runs the sans-IO [`scheduler`](super::scheduler) on
//! each, and records the urge (before the deadline) or the supervision
//! (after it) on the order through the lifecycle, audited like any change.
//! It also drains the order spool, so orders kept during an outage reach
//! the database once it answers.

use super::desk;
use super::events::OrderEvents;
use super::lifecycle::Command;
use super::scheduler::{AlertKind, sweep};
use super::spool;
use crate::auth::Principal;
use crate::call::record::now_ms;
use crate::server::Shared;
use crate::store::orders::DueClock;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Clocks handled per store round trip.
const BATCH: i64 = 500;
/// Batches per sweep; the rest waits for the next round.
const MAX_BATCHES: usize = 200;
/// Orders whose alerts share one transaction.
const ORDERS_PER_COMMIT: usize = 100;

/// Runs until `stop`.
pub async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut last_sweep = 0i64;
    loop {
        let secs = shared.config.load().orders.sweep_secs;
        let now = now_ms();
        let rules = shared.order_rules.load_full();
        if !shared.order_spool.is_empty() {
            spool::drain(
                &shared.store,
                &rules,
                &shared.order_spool,
                &shared.order_events,
            )
            .await;
        }
        if secs > 0 && now - last_sweep >= i64::from(secs) * 1000 {
            last_sweep = now;
            match sweep_once(&shared.store, &rules, &shared.order_events, now).await {
                Ok(n) if n > 0 => tracing::info!(alerts = n, "deadline sweep"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "deadline sweep failed; next round retries"),
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One sweep at `now`: records every alert due; returns how many.
pub async fn sweep_once(
    store: &crate::store::Store,
    rules: &desk::Rules,
    events: &OrderEvents,
    now: i64,
) -> Result<usize, crate::store::StoreError> {
    let system = Principal::system("scheduler");
    let mut recorded = 0;
    // Bounded, so a row that keeps failing cannot hold the sweep forever.
    for _ in 0..MAX_BATCHES {
        let due = store.clocks_due(now, BATCH).await?;
        let n = due.len();
        // An order's due clocks are handled together, and many orders
        // share one transaction: one commit (fsync) per batch, not per
        // alert.
        let mut by_order: BTreeMap<String, Vec<DueClock>> = BTreeMap::new();
        for clock in due {
            by_order
                .entry(clock.order_no.clone())
                .or_default()
                .push(clock);
        }
        let orders: Vec<String> = by_order.keys().cloned().collect();
        for chunk in orders.chunks(ORDERS_PER_COMMIT) {
            match record(store, rules, &system, &by_order, chunk, now).await {
                Ok(written) => {
                    for w in written {
                        recorded += w.events.len();
                        events.publish(&w.order, &w.events, now);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, orders = chunk.len(), "recording deadline alerts failed; the next sweep retries")
                }
            }
        }
        if (n as i64) < BATCH {
            break;
        }
    }
    Ok(recorded)
}

/// Records the alerts due on `orders` in one transaction.
async fn record(
    store: &crate::store::Store,
    rules: &desk::Rules,
    system: &Principal,
    due: &BTreeMap<String, Vec<DueClock>>,
    orders: &[String],
    now: i64,
) -> Result<Vec<crate::store::orders::Written>, crate::store::orders::OrderStoreError> {
    let policy = rules.policy();
    store
        .change_orders(
            orders,
            system,
            now,
            &rules.percents,
            "clock_alert",
            |order| {
                let mut said = Vec::new();
                for d in due.get(&order.order_no).into_iter().flatten() {
                    let Some(clock) = order
                        .clocks
                        .iter()
                        .rev()
                        .find(|c| c.kind == d.kind && c.unit == d.unit && c.is_open())
                        .cloned()
                    else {
                        // Stopped since the projection was read.
                        continue;
                    };
                    let Some(a) = sweep(now, &clock, &rules.percents).pop() else {
                        continue;
                    };
                    let (overdue, percent) = match a.kind {
                        AlertKind::Warning { percent } => (false, percent),
                        AlertKind::Overdue => (true, 100),
                    };
                    let command = Command::ClockAlert {
                        kind: d.kind,
                        unit: d.unit.clone(),
                        overdue,
                        percent,
                        alerts_sent: a.alerts_sent_after,
                    };
                    // A refusal leaves this clock alone; the others go on.
                    if let Ok(events) = order.apply(system, command, now, &policy) {
                        said.extend(events);
                    }
                }
                Ok(said)
            },
        )
        .await
}
