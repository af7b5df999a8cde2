//! NAT keep-alive for registered phones: an OPTIONS to every binding every
//! `registrar.keepalive_secs`, sent to the address the REGISTER came from.
//! Any answer (even 405) shows the phone is there and keeps the NAT mapping
//! open; `keepalive_failures` unanswered pings in a row drop the binding,
//! so a seat whose phone vanished stops being offered calls.

use crate::server::Shared;
use crate::sip::registrar::Binding;
use rsipstack::sip::{Header, Method, Request, SipMessage};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long one ping waits for any answer.
const PING_TIMEOUT: Duration = Duration::from_secs(4);

/// Pings until the server stops; does nothing while keep-alive is off.
pub async fn run(shared: Arc<Shared>) {
    // Unanswered pings in a row, per seat and contact.
    let mut missed: HashMap<(String, String), u32> = HashMap::new();
    loop {
        let config = shared.config.load_full();
        let every = config.registrar.keepalive_secs;
        if every == 0 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        tokio::time::sleep(Duration::from_secs(every.into())).await;
        let bindings = shared
            .registrar
            .lock()
            .expect("registrar lock")
            .all_bindings(std::time::Instant::now());
        let pings = bindings.into_iter().map(|(seat, binding)| {
            let shared = shared.clone();
            async move {
                let alive = ping(&shared, &binding).await;
                (seat, binding.contact, alive)
            }
        });
        for (seat, contact, alive) in futures::future::join_all(pings).await {
            let key = (seat.clone(), contact.clone());
            if alive {
                missed.remove(&key);
                continue;
            }
            let count = missed.entry(key.clone()).or_insert(0);
            *count += 1;
            if *count >= config.registrar.keepalive_failures {
                missed.remove(&key);
                tracing::warn!(%seat, %contact, "phone stopped answering keep-alives: registration dropped");
                let empty = shared
                    .registrar
                    .lock()
                    .expect("registrar lock")
                    .drop_binding(&seat, &contact);
                if empty {
                    shared.acd.seat_unregistered(&seat);
                }
            }
        }
        // Forget counts of bindings that went by themselves.
        let live: std::collections::HashSet<(String, String)> = shared
            .registrar
            .lock()
            .expect("registrar lock")
            .all_bindings(std::time::Instant::now())
            .into_iter()
            .map(|(s, b)| (s, b.contact))
            .collect();
        missed.retain(|k, _| live.contains(k));
    }
}

/// One OPTIONS; true when the phone answered at all.
async fn ping(shared: &Shared, binding: &Binding) -> bool {
    options(shared, binding, PING_TIMEOUT).await.is_some()
}

/// Sends one OPTIONS to `binding` (its contact as Request-URI, sent to its
/// source address) and returns the final status, or `None` when it could
/// not be sent or no final answer came within `limit`. Trunk health checks
/// ([`crate::sip::trunks`]) use it too.
pub async fn options(shared: &Shared, binding: &Binding, limit: Duration) -> Option<u16> {
    match tokio::time::timeout(limit, send_options(shared, binding)).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            tracing::debug!(contact = %binding.contact, error = %e, "OPTIONS not sent");
            None
        }
        Err(_) => None,
    }
}

async fn send_options(shared: &Shared, binding: &Binding) -> anyhow::Result<Option<u16>> {
    let endpoint = shared.dialogs.endpoint.clone();
    let target = rsipstack::sip::Uri::try_from(binding.contact.as_str())
        .map_err(|e| anyhow::anyhow!("contact {:?}: {e}", binding.contact))?;
    let via = endpoint.get_via(None, None)?;
    let host = shared.sip_addr.ip();
    let ours = rsipstack::sip::Uri::try_from(format!("sip:hotline@{}", shared.sip_addr).as_str())
        .map_err(|e| anyhow::anyhow!("our URI for {host}: {e}"))?;
    let from = rsipstack::sip::typed::From {
        display_name: None,
        uri: ours,
        params: vec![rsipstack::sip::Param::Tag(
            rsipstack::transaction::make_tag(),
        )],
    };
    let to = rsipstack::sip::typed::To {
        display_name: None,
        uri: target.clone(),
        params: vec![],
    };
    let mut request: Request =
        endpoint.make_request(Method::Options, target, via, from, to, 1, None);
    request
        .headers
        .push(Header::Accept("application/sdp".into()));
    request.headers.push(Header::ContentLength(0.into()));
    let key = TransactionKey::from_request(&request, TransactionRole::Client)?;
    let mut tx = Transaction::new_client(key, request, endpoint, None);
    tx.destination = Some(binding.source.into());
    tx.send().await?;
    while let Some(message) = tx.receive().await {
        if let SipMessage::Response(response) = message {
            // A provisional answer is an answer, but wait for the final.
            let status = u16::from(response.status_code.clone());
            if status >= 200 {
                return Ok(Some(status));
            }
        }
    }
    Ok(None)
}
