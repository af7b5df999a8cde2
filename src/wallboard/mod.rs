//! The wallboard's refresh loop: one task per node, started by the first
//! screen that connects, gathers the board's inputs once a second (the
//! ACD's queues and seats from memory, today's counts from the store in two
//! statements), computes the [`Snapshot`] and, when a figure changed,
//! publishes it on a watch channel every screen reads. The cost of a
//! refresh does not grow with the number of screens.
//!
//! The figures themselves are computed in [`crate::report::wallboard`];
//! the page and its WebSocket are in `api/wallboard`.

use crate::report::wallboard::{Inputs, OLDEST_SHOWN, QueueLoad, SeatState, Snapshot, Targets};
use crate::server::Shared;
use crate::store::wallboard::BoardCounts;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// How often the inputs are gathered: the board moves at most this often.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Overdue clocks read per refresh: enough for [`OLDEST_SHOWN`] orders
/// when each is late on several steps or units.
pub const CLOCKS_READ: i64 = OLDEST_SHOWN as i64 * 8;

/// The newest board as a JSON message, shared by every screen; `None`
/// until the first refresh.
pub type Board = Option<Arc<str>>;

/// The node's wallboard feed.
#[derive(Default)]
pub struct Hub {
    tx: OnceLock<watch::Sender<Board>>,
}

impl Hub {
    /// A screen's feed; the first one starts the refresh loop.
    pub fn subscribe(&self, shared: &Arc<Shared>) -> watch::Receiver<Board> {
        self.tx
            .get_or_init(|| {
                let (tx, _) = watch::channel(None);
                tokio::spawn(run(Arc::downgrade(shared), tx.clone()));
                tx
            })
            .subscribe()
    }
}

/// Refreshes until the service is gone; idle while no screen watches.
async fn run(shared: Weak<Shared>, tx: watch::Sender<Board>) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last: Option<Snapshot> = None;
    // The store's counts as last read, shown while the database is away.
    let mut counts = BoardCounts::default();
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if tx.receiver_count() == 0 {
            // Nobody watches: no database work. The next screen gets a
            // fresh board, not one from before it came.
            if last.take().is_some() {
                tx.send_replace(None);
            }
            continue;
        }
        let now = crate::call::record::now_ms();
        let inputs = gather(&shared, now, &mut counts).await;
        let snapshot = Snapshot::compute(&inputs, Targets::default(), now, offset(&shared));
        if last.as_ref().is_some_and(|l| l.same_figures(&snapshot)) {
            continue;
        }
        let message = serde_json::json!({"type": "snapshot", "board": &snapshot}).to_string();
        tx.send_replace(Some(message.into()));
        last = Some(snapshot);
    }
}

fn offset(shared: &Shared) -> time::UtcOffset {
    shared.config.load().orders.offset()
}

/// The board's inputs at `now`; the store's part falls back to `counts`
/// (the last read) when the database is away, and says so.
pub async fn gather(shared: &Shared, now: i64, counts: &mut BoardCounts) -> Inputs {
    let day_start = crate::report::wallboard::day_start_ms(now, offset(shared));
    let database_down = match shared.store.board_counts(day_start, now, CLOCKS_READ).await {
        Ok(fresh) => {
            *counts = fresh;
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "wallboard: the store's counts are not current");
            true
        }
    };
    let queues = shared
        .acd
        .queues()
        .into_iter()
        .map(|q| QueueLoad {
            queue: q.queue,
            waiting: q.waiting as u64,
            longest_wait_secs: q.longest_wait_secs,
        })
        .collect();
    let seats = shared
        .acd
        .seats()
        .iter()
        .map(|s| SeatState::of(&s.status, &s.activity))
        .collect();
    Inputs {
        queues,
        seats,
        calls_today: counts.calls_today,
        orders_today: counts.orders_today.clone(),
        overdue_orders: counts.overdue_orders,
        overdue_oldest: counts.overdue_oldest.clone(),
        open_emergency_orders: counts.open_emergency_orders,
        database_down,
    }
}
