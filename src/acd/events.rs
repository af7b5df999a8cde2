//! Live events for agent desktops and wallboards: a call offered to a seat
//! (the screen pop: who calls, what they did in the IVR, which queue, how
//! long they waited), the conversation starting and ending, and every
//! change of a seat's state. Published once, fanned out to every WebSocket
//! through a broadcast channel; a slow reader loses old events, never
//! slows a call.

use serde::Serialize;
use tokio::sync::broadcast;

/// One event about a seat.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SeatEvent {
    /// The seat is ringing with this call.
    Offered {
        seat: String,
        call_id: String,
        caller: String,
        queue: String,
        /// Milliseconds the caller has waited in queues so far.
        waited_ms: u64,
        /// `flow:node` ids the caller went through.
        ivr_path: Vec<String>,
        language: Option<String>,
    },
    /// The agent answered; caller and agent are talking.
    Connected { seat: String, call_id: String },
    /// The conversation ended.
    Ended { seat: String, call_id: String },
    /// A transfer or three-way call the seat asked for: `state` is
    /// `ringing`, `answered`, `failed` (with `result`: `busy`,
    /// `no-answer`, `unreachable`, `trunk-down`, ...) or `ended`.
    Transfer {
        seat: String,
        call_id: String,
        /// `blind`, `attended` or `conference`.
        kind: String,
        target: String,
        state: String,
        result: Option<String>,
    },
    /// The seat's status or activity changed.
    State {
        seat: String,
        /// Unix ms.
        at: i64,
        #[serde(flatten)]
        status: crate::acd::router::Status,
        #[serde(flatten)]
        activity: crate::acd::router::Activity,
    },
}

impl SeatEvent {
    /// The seat the event is about.
    pub fn seat(&self) -> &str {
        match self {
            SeatEvent::Offered { seat, .. }
            | SeatEvent::Connected { seat, .. }
            | SeatEvent::Ended { seat, .. }
            | SeatEvent::Transfer { seat, .. }
            | SeatEvent::State { seat, .. } => seat,
        }
    }
}

/// The node's event hub.
pub struct SeatEvents {
    tx: broadcast::Sender<SeatEvent>,
}

impl Default for SeatEvents {
    fn default() -> Self {
        // Enough for a burst of offers and changes across a large floor
        // between two reads of a slow desktop.
        let (tx, _) = broadcast::channel(4096);
        SeatEvents { tx }
    }
}

impl SeatEvents {
    /// Sends an event to whoever listens (nobody is fine).
    pub fn publish(&self, event: SeatEvent) {
        self.tx.send(event).ok();
    }

    /// A new listener, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SeatEvent> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listeners_get_events_published_after_they_subscribe() {
        let hub = SeatEvents::default();
        hub.publish(SeatEvent::Ended {
            seat: "1001".into(),
            call_id: "before".into(),
        });
        let mut rx = hub.subscribe();
        hub.publish(SeatEvent::Connected {
            seat: "1002".into(),
            call_id: "x".into(),
        });
        let ev = rx.recv().await.unwrap();
        assert_eq!(ev.seat(), "1002");
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["event"], "connected");
    }
}
