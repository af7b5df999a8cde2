//! Live events over WebSocket: `/api/v1/seats/{id}/events` for one agent's
//! desktop, `/api/v1/events` for wallboards and supervisors (every seat).
//!
//! Each message is one JSON [`SeatEvent`]; an offer also carries the
//! caller's earlier calls from the store (`earlier_calls`, newest first), so
//! the desktop can show who is calling before the agent answers.

use crate::acd::events::SeatEvent;
use crate::server::Shared;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Earlier calls shown with an offer.
const HISTORY: i64 = 5;

/// Routes for the event streams.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/seats/{id}/events", get(seat_events))
        .route("/api/v1/events", get(all_events))
}

async fn seat_events(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket| stream(shared, socket, Some(id)))
}

async fn all_events(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| stream(shared, socket, None))
}

/// Sends events (of one seat, or all) until the client goes away.
async fn stream(shared: Arc<Shared>, mut socket: WebSocket, seat: Option<String>) {
    let mut events = shared.acd.events.subscribe();
    // Where the seat stands now, so a desktop that (re)connects is current.
    for view in shared.acd.seats() {
        if seat.as_ref().is_none_or(|s| *s == view.seat) {
            let now = json!({"event": "snapshot", "seat": view});
            if socket
                .send(Message::Text(now.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
    loop {
        tokio::select! {
            event = events.recv() => {
                let message = match event {
                    Ok(event) if seat.as_ref().is_none_or(|s| s == event.seat()) => {
                        render(&shared, event).await
                    }
                    Ok(_) => continue,
                    // A slow reader: say how much it missed and go on.
                    Err(RecvError::Lagged(n)) => json!({"event": "lagged", "missed": n}),
                    Err(RecvError::Closed) => return,
                };
                if socket.send(Message::Text(message.to_string().into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                // Pings are answered by axum; anything else from the client
                // is ignored; a close or an error ends the stream.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// An event as JSON; offers get the caller's earlier calls.
pub(crate) async fn render(shared: &Shared, event: SeatEvent) -> Value {
    let mut value = serde_json::to_value(&event).unwrap_or_default();
    if let SeatEvent::Offered {
        caller, call_id, ..
    } = &event
    {
        let earlier: Vec<Value> = match shared.store.calls_from(caller, HISTORY + 1).await {
            Ok(calls) => calls
                .into_iter()
                .filter(|c| c.call_id != *call_id)
                .take(HISTORY as usize)
                .map(|c| {
                    json!({
                        "call_id": c.call_id,
                        "started_at": crate::call::record::format_ms(c.started_at),
                        "end_reason": c.end_reason,
                        "queue": c.queue,
                        "seat": c.seat,
                        "final_action": c.final_action,
                    })
                })
                .collect(),
            // The database being away must not hide the offer itself.
            Err(e) => {
                tracing::warn!(error = %e, "no call history for the screen pop");
                Vec::new()
            }
        };
        value["earlier_calls"] = Value::Array(earlier);
        // A repeat caller: the agent sees which orders are still open.
        let open = shared
            .store
            .open_orders_of(caller, i64::MAX)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "no open orders for the screen pop");
                Vec::new()
            });
        value["repeat_caller"] = Value::Bool(!open.is_empty());
        value["open_orders"] = json!(open);
    }
    value
}
