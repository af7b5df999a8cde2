//! Browser seats: a WebRTC gateway inside the binary (docs/browser-seat.md).
//!
//! A logged-in browser is bound in the registrar at the gateway's own SIP
//! user agent ([`ua`]), so call actors ring, answer, hold, record, transfer
//! and supervise it like any softphone. Each INVITE the user agent takes
//! becomes a [`call`]: a WebRTC peer connection to the browser ([`peer`])
//! and a [`bridge`] between its SRTP and the engine's RTP, transcoding in
//! [`transcode`]. The desktop's WebSocket ([`session`], [`protocol`]) logs
//! the seat in and carries the call's signalling.

pub mod bridge;
pub mod call;
pub mod config;
pub mod peer;
pub mod protocol;
pub mod session;
pub mod transcode;
pub mod ua;

use crate::auth::Principal;
use crate::config::Config;
use protocol::{ClientMessage, ServerMessage};
use rsipstack::dialog::dialog_layer::DialogLayer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// What a call task hears from its seat's socket.
#[derive(Debug)]
pub enum CallInput {
    Browser(ClientMessage),
    /// The socket closed: hang up.
    Gone,
}

/// The live socket of a logged-in seat.
#[derive(Clone)]
pub struct SessionLink {
    pub id: u64,
    pub out: UnboundedSender<ServerMessage>,
    /// The seat's calls by the `call` name the browser uses.
    pub calls: Arc<Mutex<HashMap<String, UnboundedSender<CallInput>>>>,
    /// Caller numbers are masked for this seat's role.
    pub masked: bool,
}

/// The node's gateway: the user agent's dialogs, the WebRTC factory and
/// the logged-in seats.
pub struct Gateway {
    pub config: config::WebseatConfig,
    pub peers: peer::Peers,
    pub dialogs: Arc<DialogLayer>,
    /// The user agent's address: browser seats' contacts point here.
    pub sip_addr: SocketAddr,
    seats: Mutex<HashMap<String, SessionLink>>,
    /// Desktop tokens (SHA-256 hex) → who they act as.
    tokens: Mutex<HashMap<String, Principal>>,
    next_id: AtomicU64,
}

impl Gateway {
    /// Binds the user agent and the media port; the user agent serves once
    /// [`ua::run`] is spawned with the returned [`ua::Ua`].
    pub async fn bind(
        config: &Config,
        cancel: CancellationToken,
    ) -> anyhow::Result<(Arc<Gateway>, ua::Ua)> {
        let c = &config.webseat;
        let ua = ua::bind(c.sip_listen, &config.sip.user_agent, cancel).await?;
        let peers = peer::Peers::bind(c).await?;
        tracing::info!(sip = %ua.local_addr, media = %peers.local_addr, "browser seat gateway ready");
        let gateway = Gateway {
            config: c.clone(),
            peers,
            dialogs: ua.dialogs.clone(),
            sip_addr: ua.local_addr,
            seats: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        };
        Ok((Arc::new(gateway), ua))
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The socket a seat is logged in on.
    pub fn session_for(&self, seat: &str) -> Option<SessionLink> {
        self.seats.lock().expect("webseat seats").get(seat).cloned()
    }

    /// Makes `link` the seat's socket; returns the one it replaces.
    pub fn attach(&self, seat: &str, link: SessionLink) -> Option<SessionLink> {
        self.seats
            .lock()
            .expect("webseat seats")
            .insert(seat.to_owned(), link)
    }

    /// Forgets the seat's socket if it is still `id`; true when it was.
    pub fn detach(&self, seat: &str, id: u64) -> bool {
        let mut seats = self.seats.lock().expect("webseat seats");
        if seats.get(seat).is_some_and(|s| s.id == id) {
            seats.remove(seat);
            true
        } else {
            false
        }
    }

    /// Seats logged in through this node's gateway.
    pub fn seats(&self) -> Vec<String> {
        let mut list: Vec<String> = self
            .seats
            .lock()
            .expect("webseat seats")
            .keys()
            .cloned()
            .collect();
        list.sort();
        list
    }

    /// The contact a browser seat is registered with.
    pub fn contact(&self, seat: &str) -> String {
        let host = match self.sip_addr {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        format!("sip:{seat}@{host}")
    }

    pub fn add_token(&self, hash: String, who: Principal) {
        self.tokens
            .lock()
            .expect("webseat tokens")
            .insert(hash, who);
    }

    pub fn remove_token(&self, hash: &str) {
        self.tokens.lock().expect("webseat tokens").remove(hash);
    }

    /// Who a desktop token acts as, while its socket is open.
    pub fn token_principal(&self, hash: &str) -> Option<Principal> {
        self.tokens
            .lock()
            .expect("webseat tokens")
            .get(hash)
            .cloned()
    }
}
