//! The SIP listener: UDP and TCP on one address, and the sorting of requests.
//!
//! rsipstack's endpoint does transactions, retransmissions (RFC 3261 timers)
//! and rport/received (RFC 3581); this loop decides what each new transaction
//! is: a new call (admission, number, session timer and SDP checks, then a
//! call actor), a request inside an existing dialog (handed to that dialog,
//! whose call actor answers it), or something answered here (OPTIONS, 405,
//! 481). It never waits on a call, so one slow call cannot stall signalling.

use super::admission::Verdict;
use super::headers::{self, capabilities, retry_after};
use super::sdp::{self, SdpError};
use super::session_timer::{self, Decision, TimerRequest};
use crate::call::actor::{self, CallSetup};
use crate::call::record::{CallRecord, RtpSummary, now_ms};
use crate::config::Config;
use crate::report::metrics::CallResult;
use crate::server::Shared;
use rsipstack::EndpointBuilder;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transaction::endpoint::Endpoint;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::TransportLayer;
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::udp::UdpConnection;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// SIP datagrams the parser refused (counted by [`MalformedCounter`]).
pub static MALFORMED: AtomicU64 = AtomicU64::new(0);

/// A bound, not yet serving, SIP endpoint.
pub struct SipListener {
    endpoint: Endpoint,
    incoming: TransactionReceiver,
    pub dialogs: Arc<DialogLayer>,
    pub local_addr: SocketAddr,
}

/// Binds UDP and TCP on `sip.listen`.
pub async fn bind(config: &Config, cancel: CancellationToken) -> anyhow::Result<SipListener> {
    let transport = TransportLayer::new(cancel.clone());
    // rsipstack binds the TCP listener only once the endpoint serves, and
    // then just logs a failure; probe it here so a taken port fails the start.
    // With port 0, retry until UDP and TCP agree on a free port.
    let mut attempts = 0;
    let (udp, local_addr) = loop {
        attempts += 1;
        let udp =
            UdpConnection::create_connection(config.sip.listen, None, Some(cancel.child_token()))
                .await
                .map_err(|e| anyhow::anyhow!("sip.listen {} (UDP): {e}", config.sip.listen))?;
        let local_addr = SocketAddr::try_from(udp.get_addr().addr.clone())
            .map_err(|e| anyhow::anyhow!("sip.listen: {e}"))?;
        match std::net::TcpListener::bind(local_addr) {
            Ok(_probe) => break (udp, local_addr),
            Err(_) if config.sip.listen.port() == 0 && attempts < 20 => continue,
            Err(e) => anyhow::bail!("sip.listen {local_addr} (TCP): {e}"),
        }
    };
    let tcp = TcpListenerConnection::new(local_addr, None)
        .await
        .map_err(|e| anyhow::anyhow!("sip.listen {local_addr} (TCP): {e}"))?;
    transport.add_transport(udp.into());
    transport.add_transport(tcp.into());
    let (endpoint, incoming, dialogs) = endpoint(
        transport,
        cancel,
        &config.sip.user_agent,
        vec![
            Method::Invite,
            Method::Ack,
            Method::Bye,
            Method::Cancel,
            Method::Options,
            Method::Info,
            Method::Update,
            Method::PRack,
        ],
    )?;
    Ok(SipListener {
        endpoint,
        incoming,
        dialogs,
        local_addr,
    })
}

/// An endpoint on `transport` allowing `allows`, its new transactions and
/// its dialog layer.
pub(crate) fn endpoint(
    transport: TransportLayer,
    cancel: CancellationToken,
    user_agent: &str,
    allows: Vec<Method>,
) -> anyhow::Result<(Endpoint, TransactionReceiver, Arc<DialogLayer>)> {
    let endpoint = EndpointBuilder::new()
        .with_cancel_token(cancel)
        .with_transport_layer(transport)
        .with_user_agent(user_agent)
        .with_allows(allows)
        .build();
    let incoming = endpoint.incoming_transactions()?;
    let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
    Ok((endpoint, incoming, dialogs))
}

/// Hands a request inside a dialog to that dialog, whose owner answers it
/// through its state channel (481 when there is no such dialog); gives
/// back a request that opens something new.
pub(crate) fn to_dialog(dialogs: &DialogLayer, mut tx: Transaction) -> Option<Transaction> {
    if !headers::in_dialog(&tx.original) || tx.original.method == Method::Ack {
        return Some(tx);
    }
    match dialogs.match_dialog(&tx) {
        Some(mut dialog) => {
            tokio::spawn(async move {
                if let Err(e) = dialog.handle(&mut tx).await {
                    tracing::debug!(error = %e, "in-dialog request failed");
                }
            });
        }
        None => reply(tx, StatusCode::CallTransactionDoesNotExist, vec![]),
    }
    None
}

/// Serves until the endpoint's cancel token fires.
pub async fn run(listener: SipListener, shared: Arc<Shared>) {
    let SipListener {
        endpoint,
        mut incoming,
        local_addr,
        ..
    } = listener;
    let serve = endpoint.serve();
    tokio::pin!(serve);
    loop {
        tokio::select! {
            _ = &mut serve => break,
            tx = incoming.recv() => match tx {
                Some(tx) => on_transaction(&shared, tx, local_addr),
                None => break,
            },
        }
    }
}

fn on_transaction(shared: &Arc<Shared>, tx: Transaction, local_addr: SocketAddr) {
    let Some(tx) = to_dialog(&shared.dialogs, tx) else {
        return;
    };
    match tx.original.method {
        Method::Invite => on_invite(shared, tx, local_addr),
        Method::Ack => {}
        Method::Options => reply(tx, StatusCode::OK, capabilities()),
        Method::Register => on_register(shared, tx),
        Method::Bye | Method::Info | Method::Update | Method::PRack | Method::Cancel => {
            reply(tx, StatusCode::CallTransactionDoesNotExist, vec![])
        }
        // Known methods this server does not take (yet): 405 with Allow.
        _ => reply(
            tx,
            StatusCode::MethodNotAllowed,
            vec![Header::Allow(headers::ALLOW.into())],
        ),
    }
}

/// REGISTER: the registrar decides, this answers.
fn on_register(shared: &Arc<Shared>, tx: Transaction) {
    use super::registrar::{Outcome, Register};
    let req = &tx.original;
    let Some(source) = headers::source(req, tx.connection.as_ref()) else {
        return reply(tx, StatusCode::BadRequest, vec![]);
    };
    let user = req
        .to_header()
        .ok()
        .and_then(|t| t.uri().ok())
        .and_then(|u| u.user().map(str::to_owned))
        .unwrap_or_default();
    let contacts: Vec<String> = req
        .headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case("Contact") || h.name() == "m")
        .flat_map(|h| headers::split_contacts(h.value()))
        .collect();
    let star = contacts.iter().any(|c| c.trim() == "*");
    let contacts = contacts
        .iter()
        .filter(|c| c.trim() != "*")
        .map(|c| headers::contact_param(c))
        .collect();
    let expires = req
        .header_value("Expires")
        .and_then(|v| v.trim().parse().ok());
    let authorization = req.header_value("Authorization");
    let register = Register {
        user: &user,
        contacts,
        star,
        expires,
        authorization: authorization.as_deref(),
        source,
    };
    let outcome = {
        let mut registrar = shared.registrar.lock().expect("registrar lock");
        let outcome = registrar.register(&register, Instant::now());
        let m = &shared.metrics;
        m.register_lockouts
            .store(registrar.lockouts, Ordering::Relaxed);
        m.register_auth_failures
            .store(registrar.auth_failures, Ordering::Relaxed);
        outcome
    };
    let (status, extra) = match outcome {
        Outcome::Challenge(values) => (
            StatusCode::Unauthorized,
            values
                .into_iter()
                .map(|v| headers::other("WWW-Authenticate", v))
                .collect(),
        ),
        Outcome::Registered(bound) => {
            tracing::info!(seat = %user, %source, contacts = bound.len(), "registered");
            if bound.is_empty() {
                shared.acd.seat_unregistered(&user);
            } else {
                let available = shared.config.load().registrar.available_on_register;
                shared.acd.seat_registered(&user, available);
            }
            let list = bound
                .into_iter()
                .map(|(uri, secs)| headers::other("Contact", format!("<{uri}>;expires={secs}")))
                .collect();
            (StatusCode::OK, list)
        }
        Outcome::TooBrief { min_expires } => (
            StatusCode::IntervalTooBrief,
            vec![headers::other("Min-Expires", min_expires.to_string())],
        ),
        Outcome::Forbidden(why) => {
            tracing::info!(seat = %user, %source, why, "REGISTER refused");
            (StatusCode::Forbidden, vec![])
        }
        Outcome::NotFound => (StatusCode::NotFound, vec![]),
        Outcome::BadRequest(why) => (
            StatusCode::BadRequest,
            vec![headers::other("Warning", format!("399 hotline \"{why}\""))],
        ),
    };
    reply(tx, status, extra);
}

pub(crate) fn reply(mut tx: Transaction, status: StatusCode, extra: Vec<Header>) {
    tokio::spawn(async move {
        if let Err(e) = tx.reply_with(status, extra, None).await {
            tracing::debug!(error = %e, "reply failed");
        }
    });
}

fn on_invite(shared: &Arc<Shared>, tx: Transaction, local_addr: SocketAddr) {
    let config = shared.config.load_full();
    let req = &tx.original;
    let source = headers::source(req, tx.connection.as_ref());
    let started_at = now_ms();
    let verdict = shared.admission.lock().expect("admission lock").check(
        source.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |s| s.ip()),
        Instant::now(),
        shared.active_calls(),
    );
    if let Verdict::Refuse {
        status,
        retry_after: after,
        reason,
    } = verdict
    {
        // Not recorded: a flood must not turn into database writes.
        shared.metrics.call_ended(match reason {
            super::admission::Refusal::RateLimited => CallResult::RateLimited,
            super::admission::Refusal::Draining => CallResult::Draining,
            super::admission::Refusal::AtCapacity => CallResult::AtCapacity,
        });
        tracing::debug!(?source, reason = reason.as_str(), "INVITE refused");
        let extra = after.map(retry_after).into_iter().collect();
        reply(tx, StatusCode::from(status), extra);
        return;
    }

    let call = CallFacts {
        call_id: headers::call_id(req),
        caller: headers::caller(req),
        callee: headers::callee(req),
        remote_addr: source.map(|s| s.to_string()).unwrap_or_default(),
        transport: headers::transport_name(tx.connection.as_ref()),
        started_at,
    };
    let consult =
        call.callee != config.sip.hotline_number && consulting_seat(shared, &call, source);
    if call.callee != config.sip.hotline_number && !consult {
        return not_found(shared, tx, call);
    }

    let timer_req = TimerRequest::from_headers(
        req.header_value("Session-Expires")
            .or_else(|| req.header_value("x"))
            .as_deref(),
        req.header_value("Min-SE").as_deref(),
        headers::lists_token(req, "Supported", "timer")
            || headers::lists_token(req, "Require", "timer"),
    );
    let timer = match session_timer::negotiate(
        &timer_req,
        config.sip.session_expires_secs,
        config.sip.min_se_secs,
    ) {
        Decision::None => None,
        Decision::Grant(g) => Some(g),
        Decision::TooSmall { min_se } => {
            let extra = vec![headers::other("Min-SE", min_se.to_string())];
            return refuse(
                shared,
                tx,
                call,
                StatusCode::SessionIntervalTooSmall,
                extra,
                CallResult::Failed,
            );
        }
    };

    let body = &req.body;
    let offer = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else if headers::content_type(req) != "application/sdp" {
        let extra = vec![Header::Accept("application/sdp".into())];
        return refuse(
            shared,
            tx,
            call,
            StatusCode::UnsupportedMediaType,
            extra,
            CallResult::Failed,
        );
    } else {
        match sdp::parse(body).and_then(|o| sdp::answer(&o).map(|n| (o, n))) {
            Ok((_, negotiated)) => Some(negotiated),
            Err(e @ SdpError::Malformed(_)) => {
                let extra = vec![headers::other("Warning", format!("399 hotline \"{e}\""))];
                return refuse(
                    shared,
                    tx,
                    call,
                    StatusCode::BadRequest,
                    extra,
                    CallResult::Failed,
                );
            }
            Err(e) => {
                // 304 = media type not available, 305 = incompatible format.
                let code = if e == SdpError::NoCommonCodec {
                    305
                } else {
                    304
                };
                let extra = vec![headers::other("Warning", format!("{code} hotline \"{e}\""))];
                return refuse(
                    shared,
                    tx,
                    call,
                    StatusCode::NotAcceptableHere,
                    extra,
                    CallResult::NotAcceptable,
                );
            }
        }
    };

    let local_ip = match config.media.advertise_ip.parse() {
        Ok(ip) => ip,
        Err(_) if !local_addr.ip().is_unspecified() => local_addr.ip(),
        Err(_) => source
            .and_then(|s| headers::local_ip_toward(s.ip()))
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
    };
    if consult {
        return hand_consult(shared, tx, call, offer, local_ip, local_addr.port());
    }
    shared.call_started();
    let setup = CallSetup {
        tx,
        config,
        flows: shared.flows.load_full(),
        offer,
        timer,
        timer_request: timer_req,
        local_ip,
        contact_port: local_addr.port(),
        call_id: call.call_id,
        caller: call.caller,
        callee: call.callee,
        remote_addr: call.remote_addr,
        transport: call.transport,
        started_at,
    };
    tokio::spawn(actor::run(shared.clone(), setup));
}

/// Whether an INVITE to another number comes from a seat's phone while the
/// seat talks to a caller: the agent consulting before a transfer. The
/// source must be where the seat registered from.
fn consulting_seat(shared: &Shared, call: &CallFacts, source: Option<SocketAddr>) -> bool {
    let Some(source) = source else { return false };
    if shared.directory.call_of_seat(&call.caller).is_none() {
        return false;
    }
    shared
        .registrar
        .lock()
        .expect("registrar lock")
        .lookup(&call.caller, Instant::now())
        .iter()
        .any(|b| b.source.ip() == source.ip())
}

/// Passes a seat's consult INVITE to the call the seat is on.
fn hand_consult(
    shared: &Arc<Shared>,
    tx: Transaction,
    call: CallFacts,
    offer: Option<sdp::Negotiated>,
    local_ip: std::net::IpAddr,
    contact_port: u16,
) {
    let Some(offer) = offer else {
        let warning = headers::other(
            "Warning",
            "399 hotline \"a consult call needs an SDP offer\"",
        );
        return refuse(
            shared,
            tx,
            call,
            StatusCode::NotAcceptableHere,
            vec![warning],
            CallResult::NotAcceptable,
        );
    };
    let Some(on) = shared.directory.call_of_seat(&call.caller) else {
        return not_found(shared, tx, call);
    };
    tracing::info!(seat = %call.caller, target = %call.callee, caller_call = %on, "consult call from a seat");
    let invite = crate::call::consult_leg::ConsultInvite {
        tx,
        seat: call.caller,
        target: call.callee,
        offer,
        local_ip,
        contact_port,
    };
    if let Err(e) = shared.directory.send(
        &on,
        crate::call::control::CallCommand::Consult(Box::new(invite)),
    ) {
        // The caller hung up meanwhile; the INVITE goes unanswered and
        // times out on the phone.
        tracing::info!(error = %e, "consult call for a call that ended");
    }
}

struct CallFacts {
    call_id: String,
    caller: String,
    callee: String,
    remote_addr: String,
    transport: &'static str,
    started_at: i64,
}

/// A number nobody answers here.
fn not_found(shared: &Arc<Shared>, tx: Transaction, call: CallFacts) {
    refuse(
        shared,
        tx,
        call,
        StatusCode::NotFound,
        vec![],
        CallResult::NotFound,
    );
}

/// Answers an INVITE with a final error and records the attempt.
fn refuse(
    shared: &Arc<Shared>,
    tx: Transaction,
    call: CallFacts,
    status: StatusCode,
    extra: Vec<Header>,
    result: CallResult,
) {
    let code = u16::from(status.clone());
    tracing::info!(call_id = %call.call_id, caller = %call.caller, callee = %call.callee, status = code, "INVITE refused");
    shared.metrics.call_ended(result);
    shared.records.send(CallRecord {
        call_id: call.call_id,
        caller: call.caller,
        callee: call.callee,
        remote_addr: call.remote_addr,
        transport: call.transport.into(),
        started_at: call.started_at,
        answered_at: None,
        ended_at: now_ms(),
        status: code,
        end_reason: "rejected".into(),
        hangup_by: String::new(),
        codec: None,
        digits: String::new(),
        rtp: RtpSummary::default(),
        ..CallRecord::default()
    });
    reply(tx, status, extra);
}

/// A tracing layer that counts SIP messages the transport could not parse.
///
/// rsipstack drops such datagrams with a debug event; its filter enables only
/// those callsites, so nothing else in the stack is logged or slowed down.
pub struct MalformedCounter;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for MalformedCounter {
    fn on_event(
        &self,
        _event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        MALFORMED.fetch_add(1, Ordering::Relaxed);
    }
}

/// The per-layer filter for [`MalformedCounter`].
pub struct MalformedFilter;

impl MalformedFilter {
    fn matches(meta: &tracing::Metadata<'_>) -> bool {
        meta.is_event()
            && *meta.level() == tracing::Level::DEBUG
            && meta.target().starts_with("rsipstack::transport")
            && meta.fields().field("raw_message").is_some()
            && meta.fields().field("error").is_some()
    }
}

impl<S> tracing_subscriber::layer::Filter<S> for MalformedFilter {
    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        _: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        Self::matches(meta)
    }

    fn callsite_enabled(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if Self::matches(meta) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::DEBUG)
    }
}
