//! The live event streams of the API (`/api/v1/seats/{id}/events`, an
//! agent's desktop; `/api/v1/events`), read as a WebSocket client would.

use super::{Server, poll};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Events a WebSocket client received, collected by a background thread.
pub struct EventStream {
    events: Arc<Mutex<Vec<Value>>>,
}

impl EventStream {
    /// Connects to the event stream at `path`; returns once it is open.
    pub fn connect(server: &Server, path: &str) -> EventStream {
        Self::open(server, path, None)
    }

    /// Connects with `Authorization: Bearer <token>` (the order events).
    pub fn connect_as(server: &Server, path: &str, token: &str) -> EventStream {
        Self::open(server, path, Some(format!("Bearer {token}")))
    }

    fn open(server: &Server, path: &str, authorization: Option<String>) -> EventStream {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("ws://{}{path}", server.http);
        let mut request = url.into_client_request().unwrap();
        if let Some(value) = authorization {
            request
                .headers_mut()
                .insert("authorization", value.parse().unwrap());
        }
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use futures::StreamExt;
                let (mut ws, _) = tokio_tungstenite::connect_async(request)
                    .await
                    .expect("WebSocket");
                ready_tx.send(()).ok();
                while let Some(Ok(msg)) = ws.next().await {
                    if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
                        let v: Value = serde_json::from_str(&text).unwrap();
                        sink.lock().unwrap().push(v);
                    }
                }
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the WebSocket did not open");
        EventStream { events }
    }

    /// The first event matching `pred`, waiting up to `limit`.
    pub fn wait_for(&self, limit: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        poll(limit, Duration::from_millis(20), || {
            self.events
                .lock()
                .unwrap()
                .iter()
                .find(|v| pred(v))
                .cloned()
        })
    }

    /// The first event of a kind (`"event"`), waiting up to `limit`.
    pub fn wait(&self, kind: &str, limit: Duration) -> Option<Value> {
        self.wait_for(limit, |v| v["event"] == kind)
    }

    /// Whether `n` events match `pred` within `limit`.
    pub fn wait_count(&self, limit: Duration, n: usize, pred: impl Fn(&Value) -> bool) -> bool {
        poll(limit, Duration::from_millis(20), || {
            let seen = self
                .events
                .lock()
                .unwrap()
                .iter()
                .filter(|v| pred(v))
                .count();
            (seen >= n).then_some(())
        })
        .is_some()
    }

    /// The transfer event to `target` in `state`, waiting up to `limit`.
    pub fn transfer(&self, target: &str, state: &str, limit: Duration) -> Option<Value> {
        self.wait_for(limit, |v| {
            v["event"] == "transfer" && v["target"] == target && v["state"] == state
        })
    }

    /// Every event received so far.
    pub fn all(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }
}
