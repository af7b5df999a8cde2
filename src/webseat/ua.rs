//! The gateway's SIP user agent: the contact browser seats are registered
//! at. Call actors ring, answer, hold and hang up a browser seat through it
//! exactly as they do a softphone; each INVITE becomes a [`super::call`]
//! that rings the seat's browser.

use super::Gateway;
use crate::server::Shared;
use crate::sip::headers::{self, capabilities};
use crate::sip::listener::{self, reply};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transaction::endpoint::Endpoint;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::TransportLayer;
use rsipstack::transport::udp::UdpConnection;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A bound, not yet serving, user agent.
pub struct Ua {
    endpoint: Endpoint,
    incoming: TransactionReceiver,
    pub dialogs: Arc<DialogLayer>,
    pub local_addr: SocketAddr,
}

/// Binds UDP on `webseat.sip_listen`.
pub async fn bind(
    listen: SocketAddr,
    user_agent: &str,
    cancel: CancellationToken,
) -> anyhow::Result<Ua> {
    let transport = TransportLayer::new(cancel.clone());
    let udp = UdpConnection::create_connection(listen, None, Some(cancel.child_token()))
        .await
        .map_err(|e| anyhow::anyhow!("webseat.sip_listen {listen}: {e}"))?;
    let local_addr = SocketAddr::try_from(udp.get_addr().addr.clone())
        .map_err(|e| anyhow::anyhow!("webseat.sip_listen: {e}"))?;
    transport.add_transport(udp.into());
    let (endpoint, incoming, dialogs) = listener::endpoint(
        transport,
        cancel,
        user_agent,
        vec![
            Method::Invite,
            Method::Ack,
            Method::Bye,
            Method::Cancel,
            Method::Options,
            Method::Info,
            Method::Update,
        ],
    )?;
    Ok(Ua {
        endpoint,
        incoming,
        dialogs,
        local_addr,
    })
}

/// Serves until the endpoint's cancel token fires.
pub async fn run(ua: Ua, shared: Arc<Shared>, gateway: Arc<Gateway>) {
    let Ua {
        endpoint,
        mut incoming,
        ..
    } = ua;
    let serve = endpoint.serve();
    tokio::pin!(serve);
    loop {
        tokio::select! {
            _ = &mut serve => break,
            tx = incoming.recv() => match tx {
                Some(tx) => on_transaction(&shared, &gateway, tx),
                None => break,
            },
        }
    }
}

fn on_transaction(shared: &Arc<Shared>, gateway: &Arc<Gateway>, tx: Transaction) {
    let Some(tx) = listener::to_dialog(&gateway.dialogs, tx) else {
        return;
    };
    let method = tx.original.method;
    match method {
        Method::Invite => {
            let seat = tx
                .original
                .uri
                .user()
                .map(str::to_owned)
                .unwrap_or_default();
            match gateway.session_for(&seat) {
                Some(session) => {
                    tokio::spawn(super::call::run(
                        shared.clone(),
                        gateway.clone(),
                        session,
                        seat,
                        tx,
                    ));
                }
                // The browser logged out since the ACD looked: like a phone
                // that is gone.
                None => reply(tx, StatusCode::TemporarilyUnavailable, vec![]),
            }
        }
        Method::Ack => {}
        // Keep-alive pings from the registrar's sweep.
        Method::Options => reply(tx, StatusCode::OK, capabilities()),
        _ => reply(
            tx,
            StatusCode::MethodNotAllowed,
            vec![Header::Allow(headers::ALLOW.into())],
        ),
    }
}
