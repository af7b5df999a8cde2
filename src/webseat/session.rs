//! One desktop's WebSocket: the login, the seat's registration at the
//! gateway while the socket is open, the seat's ACD events, and the routing
//! of the browser's call messages to their call tasks.

use super::protocol::{BadMessage, ClientMessage, ErrorCode, ServerMessage};
use super::{CallInput, Gateway, SessionLink};
use crate::auth::{Principal, Role};
use crate::server::Shared;
use crate::sip::registrar::LoginRefused;
use axum::extract::ws::{Message, WebSocket};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// A logged-in seat's part of the socket.
struct LoggedIn {
    seat: String,
    link: SessionLink,
    token_hash: String,
}

/// Serves one socket until the browser goes away or another login of the
/// same seat replaces it.
pub async fn serve(shared: Arc<Shared>, gateway: Arc<Gateway>, mut socket: WebSocket, ip: IpAddr) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ServerMessage>();
    let mut login: Option<LoggedIn> = None;
    // The seat's events, once logged in.
    let mut events: Option<tokio::sync::broadcast::Receiver<crate::acd::events::SeatEvent>> = None;
    // A browser binding lasts as long as a REGISTER may; renewed well before.
    let renew_every =
        Duration::from_secs((u64::from(shared.config.load().registrar.max_expires) / 3).max(10));
    let mut renew = tokio::time::interval(renew_every);
    renew.tick().await;
    let replaced = loop {
        tokio::select! {
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        send(&mut socket, &bad(BadMessage::Binary)).await;
                        continue;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => break false,
                };
                let message = match ClientMessage::parse(&text) {
                    Ok(m) => m,
                    Err(e) => {
                        send(&mut socket, &bad(e)).await;
                        continue;
                    }
                };
                match (&login, message) {
                    (_, ClientMessage::Ping {}) => send(&mut socket, &ServerMessage::Pong {}).await,
                    (None, ClientMessage::Login { seat, password }) => {
                        match log_in(&shared, &gateway, &seat, &password, ip, out_tx.clone()).await {
                            Ok((logged, welcome)) => {
                                events = Some(shared.acd.events.subscribe());
                                send(&mut socket, &welcome).await;
                                for view in shared.acd.seats() {
                                    if view.seat == logged.seat {
                                        let event = json!({"event": "snapshot", "seat": view});
                                        send(&mut socket, &event_message(event, logged.link.masked)).await;
                                    }
                                }
                                login = Some(logged);
                            }
                            Err(refused) => send(&mut socket, &refused).await,
                        }
                    }
                    (Some(_), ClientMessage::Login { .. }) => {
                        send(&mut socket, &ServerMessage::error(ErrorCode::BadMessage, "already logged in")).await;
                    }
                    (None, _) => {
                        send(&mut socket, &ServerMessage::error(ErrorCode::NotLoggedIn, "send login first")).await;
                    }
                    (Some(logged), message) => {
                        let call = message.call().unwrap_or_default().to_owned();
                        let target = logged.link.calls.lock().expect("seat calls").get(&call).cloned();
                        let delivered = target.is_some_and(|t| t.send(CallInput::Browser(message)).is_ok());
                        if !delivered {
                            send(&mut socket, &ServerMessage::error(ErrorCode::NoCall, format!("no call {call:?} on this seat"))).await;
                        }
                    }
                }
            }
            Some(message) = out_rx.recv() => {
                let is_replaced = matches!(message, ServerMessage::Error { code: ErrorCode::Replaced, .. });
                send(&mut socket, &message).await;
                if is_replaced {
                    break true;
                }
            }
            event = recv_event(&mut events) => {
                let Some(logged) = &login else { continue };
                match event {
                    Ok(event) if event.seat() == logged.seat => {
                        let value = crate::api::events::render(&shared, event).await;
                        send(&mut socket, &event_message(value, logged.link.masked)).await;
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        send(&mut socket, &event_message(json!({"event": "lagged", "missed": n}), false)).await;
                    }
                    Err(RecvError::Closed) => events = None,
                }
            }
            _ = renew.tick(), if login.is_some() => {
                if let Some(logged) = &login {
                    bind(&shared, &gateway, &logged.seat);
                }
            }
        }
    };
    if let Some(logged) = login {
        log_out(&shared, &gateway, logged, replaced);
    }
    socket.send(Message::Close(None)).await.ok();
}

async fn recv_event(
    events: &mut Option<tokio::sync::broadcast::Receiver<crate::acd::events::SeatEvent>>,
) -> Result<crate::acd::events::SeatEvent, RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn bad(e: BadMessage) -> ServerMessage {
    ServerMessage::error(ErrorCode::BadMessage, e.to_string())
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) {
    socket.send(Message::Text(message.text().into())).await.ok();
}

/// An ACD event for the desktop, with phone numbers masked when the role
/// may not see them.
fn event_message(mut event: Value, masked: bool) -> ServerMessage {
    if masked {
        mask_numbers(&mut event);
    }
    ServerMessage::Event { event }
}

/// Masks every phone-number field of an event, however deep.
fn mask_numbers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(s) if matches!(key.as_str(), "caller" | "phone" | "from") => {
                        *s = crate::auth::mask::mask_phone(s);
                    }
                    _ => mask_numbers(v),
                }
            }
        }
        Value::Array(list) => list.iter_mut().for_each(mask_numbers),
        _ => {}
    }
}

/// Checks the password, picks who the session acts as, takes over the
/// seat from an older socket and binds it at the gateway.
async fn log_in(
    shared: &Shared,
    gateway: &Gateway,
    seat: &str,
    password: &str,
    ip: IpAddr,
    out: mpsc::UnboundedSender<ServerMessage>,
) -> Result<(LoggedIn, ServerMessage), ServerMessage> {
    let checked = shared
        .registrar
        .lock()
        .expect("registrar lock")
        .check_password(seat, password, ip, Instant::now());
    if let Err(refused) = checked {
        tracing::info!(%seat, %ip, ?refused, "browser seat login refused");
        return Err(match refused {
            LoginRefused::WrongPassword => {
                ServerMessage::error(ErrorCode::LoginFailed, "wrong seat or password")
            }
            LoginRefused::Disabled => {
                ServerMessage::error(ErrorCode::Disabled, "the seat is disabled")
            }
            LoginRefused::LockedOut => ServerMessage::error(
                ErrorCode::LockedOut,
                "too many failed logins from this address; try later",
            ),
        });
    }
    let principal = principal_of(shared, seat).await;
    let masked = !principal.role.sees_personal_data();
    let token = crate::auth::token::generate_token();
    let token_hash = crate::auth::token::hash_token(&token);
    gateway.add_token(token_hash.clone(), principal.clone());
    let link = SessionLink {
        id: gateway.next_id(),
        out,
        calls: Arc::new(Mutex::new(HashMap::new())),
        masked,
    };
    if let Some(old) = gateway.attach(seat, link.clone()) {
        tracing::info!(%seat, "browser seat logged in again elsewhere; the older desktop is replaced");
        old.out
            .send(ServerMessage::error(
                ErrorCode::Replaced,
                "this seat logged in on another desktop",
            ))
            .ok();
    }
    bind(shared, gateway, seat);
    let available = shared.config.load().registrar.available_on_register;
    shared.acd.seat_registered(seat, available);
    let name = shared
        .seat_list()
        .get(seat)
        .map(|(s, _)| s.name.clone())
        .unwrap_or_default();
    tracing::info!(%seat, %ip, role = principal.role.as_str(), "browser seat logged in");
    let welcome = ServerMessage::Welcome {
        seat: seat.to_owned(),
        name,
        role: principal.role.as_str(),
        token,
        masked,
    };
    Ok((
        LoggedIn {
            seat: seat.to_owned(),
            link,
            token_hash,
        },
        welcome,
    ))
}

/// The API user named like the seat, if there is an enabled one; else an
/// agent named after the seat. A database outage gives the agent: the
/// least a seat may do.
async fn principal_of(shared: &Shared, seat: &str) -> Principal {
    match shared.store.user(seat).await {
        Ok(Some(user)) if user.enabled() => user.principal(),
        Ok(_) => agent(seat),
        Err(e) => {
            tracing::warn!(%seat, error = %e, "cannot read API users; the browser seat acts as an agent");
            agent(seat)
        }
    }
}

fn agent(seat: &str) -> Principal {
    Principal {
        name: seat.to_owned(),
        role: Role::Agent,
        unit: None,
    }
}

fn bind(shared: &Shared, gateway: &Gateway, seat: &str) {
    shared
        .registrar
        .lock()
        .expect("registrar lock")
        .bind_checked(
            seat,
            &gateway.contact(seat),
            gateway.sip_addr,
            Instant::now(),
        );
}

/// Ends the session: its calls hang up, its token stops working and, unless
/// a newer login took the seat over, the seat is unregistered.
fn log_out(shared: &Shared, gateway: &Gateway, logged: LoggedIn, replaced: bool) {
    gateway.remove_token(&logged.token_hash);
    for (_, call) in logged.link.calls.lock().expect("seat calls").drain() {
        call.send(CallInput::Gone).ok();
    }
    if replaced || !gateway.detach(&logged.seat, logged.link.id) {
        return;
    }
    let empty = shared
        .registrar
        .lock()
        .expect("registrar lock")
        .drop_binding(&logged.seat, &gateway.contact(&logged.seat));
    if empty {
        shared.acd.seat_unregistered(&logged.seat);
    }
    tracing::info!(seat = %logged.seat, "browser seat logged out");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_reaches_numbers_at_any_depth() {
        let mut v = json!({
            "event": "offered",
            "caller": "13812348000",
            "open_orders": [{"order_no": "A1", "phone": "13812348000"}],
            "queue": "operator"
        });
        mask_numbers(&mut v);
        assert_eq!(v["caller"], "138****8000");
        assert_eq!(v["open_orders"][0]["phone"], "138****8000");
        assert_eq!(v["open_orders"][0]["order_no"], "A1");
        assert_eq!(v["queue"], "operator");
    }
}
