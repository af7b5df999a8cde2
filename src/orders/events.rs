//! Order events for live listeners (the unit portal, the dispatch desk,
//! wallboards): every committed change announces what happened through a
//! broadcast channel; a slow listener loses old events, never blocks a
//! write. The store's audit log stays the record; this is the doorbell.

use super::lifecycle::WorkOrder;
use serde::Serialize;
use tokio::sync::broadcast;

/// Something that happened to an order, after it was committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderEvent {
    pub order_no: String,
    /// `accepted`, `dispatched`, `signed`, `urged`, `supervised`, ...
    pub kind: String,
    /// The unit the event is about, if one.
    pub unit: Option<String>,
    pub detail: String,
    pub at: i64,
    /// Every unit with a part in the order: who may hear of it.
    pub units: Vec<String>,
}

/// The hub.
pub struct OrderEvents {
    tx: broadcast::Sender<OrderEvent>,
}

impl Default for OrderEvents {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(4096);
        OrderEvents { tx }
    }
}

impl OrderEvents {
    /// Announces the events of a committed write.
    pub fn publish(&self, order: &WorkOrder, events: &[super::lifecycle::Event], at: i64) {
        let mut units: Vec<String> = order.assignments.iter().map(|a| a.unit.clone()).collect();
        units.sort();
        units.dedup();
        for e in events {
            tracing::info!(order = %order.order_no, kind = %e.kind, unit = ?e.unit, detail = %e.detail, "order event");
            // No listener is fine.
            let _ = self.tx.send(OrderEvent {
                order_no: order.order_no.clone(),
                kind: e.kind.clone(),
                unit: e.unit.clone(),
                detail: e.detail.clone(),
                at,
                units: units.clone(),
            });
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<OrderEvent> {
        self.tx.subscribe()
    }
}
