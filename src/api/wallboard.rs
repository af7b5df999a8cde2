//! The wallboard: `GET /wallboard` serves one static page (no external
//! scripts, fonts or styles: a wall screen may sit on a closed network), and
//! `GET /api/v1/wallboard/ws` streams the board to it.
//!
//! A wall screen has no one to type a password, so the page takes an API
//! token from its URL fragment (`/wallboard#token=hl_...`, never sent to
//! the server or its logs) and offers it as a WebSocket subprotocol,
//! `bearer.<token>`, next to `hotline.wallboard`. A `token` query parameter
//! works too, for clients that cannot set subprotocols. Any hotline role
//! may watch (agent, dispatcher, supervisor, admin); a unit handler may not.
//!
//! Messages are JSON: `{"type": "snapshot", "board": {...}}` when a figure
//! changed (at most once a second, from [`crate::wallboard`]) and
//! `{"type": "heartbeat", "at": ms}` every [`HEARTBEAT`], so the page can
//! tell a quiet floor from a dead connection.

use super::ApiError;
use crate::auth::token::{TokenError, is_token};
use crate::server::Shared;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;

/// The page, kept beside the code that serves it.
const PAGE: &str = include_str!("wallboard.html");

/// The subprotocol the page asks for; the server echoes it.
pub const PROTOCOL: &str = "hotline.wallboard";

/// The subprotocol prefix that carries the token.
pub const TOKEN_PROTOCOL: &str = "bearer.";

/// How often a quiet connection hears from the server.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// Routes for the page and its feed.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/wallboard", get(page))
        .route("/api/v1/wallboard/ws", get(socket))
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page is static; the figures come over the socket.
            (header::CACHE_CONTROL, "no-cache"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        PAGE,
    )
        .into_response()
}

/// The token a connection offers: a `bearer.` subprotocol first, else
/// the `token` query parameter.
fn offered_token<'a>(
    protocols: impl Iterator<Item = &'a HeaderValue>,
    query: Option<&'a str>,
) -> Result<String, TokenError> {
    let from_protocol = protocols
        .filter_map(|p| p.to_str().ok())
        .find_map(|p| p.strip_prefix(TOKEN_PROTOCOL));
    let from_query = || {
        serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
            .ok()?
            .into_iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v)
    };
    let token = match from_protocol {
        Some(t) => t.to_owned(),
        None => from_query().ok_or(TokenError::Missing)?,
    };
    if token.is_empty() {
        return Err(TokenError::Empty);
    }
    if !is_token(&token) {
        return Err(TokenError::Malformed);
    }
    Ok(token)
}

/// A 401 for a connection without a usable token; the message names both
/// ways to send one.
fn refused(e: &TokenError) -> ApiError {
    let message = match e {
        TokenError::Missing => "no token: open the page as /wallboard#token=<API token>, or \
            send the token as the `bearer.<token>` WebSocket subprotocol or `?token=`"
            .to_owned(),
        other => format!("token: {other}"),
    };
    ApiError::unauthorized(e.challenge(), message)
}

async fn socket(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let token =
        offered_token(ws.requested_protocols(), query.as_deref()).map_err(|e| refused(&e))?;
    let user = super::auth::principal(&shared, &token).await?;
    if !user.role.is_hotline() {
        return Err(ApiError::status(
            StatusCode::FORBIDDEN,
            format!(
                "role {} may not watch the wallboard; it is for the hotline's own staff",
                user.role.as_str()
            ),
        ));
    }
    tracing::info!(user = %user.name, "wallboard connected");
    let feed = shared.wallboard.subscribe(&shared);
    Ok(ws
        .protocols([PROTOCOL])
        .on_upgrade(move |socket| stream(shared, socket, feed)))
}

/// Sends the board, then every change and a heartbeat, until the screen
/// goes away.
async fn stream(
    shared: Arc<Shared>,
    mut socket: WebSocket,
    mut feed: tokio::sync::watch::Receiver<crate::wallboard::Board>,
) {
    // The board as it is, if the refresh loop has one: a screen that
    // joins a quiet floor does not wait for the next change.
    let current = feed.borrow_and_update().clone();
    if let Some(board) = current
        && socket
            .send(Message::Text(board.to_string().into()))
            .await
            .is_err()
    {
        return;
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    // The first tick is now: the page hears at once that the line is up.
    loop {
        let message = tokio::select! {
            changed = feed.changed() => {
                if changed.is_err() {
                    return;
                }
                let Some(board) = feed.borrow_and_update().clone() else {
                    continue;
                };
                board.to_string()
            }
            _ = heartbeat.tick() => {
                let now = crate::call::record::now_ms();
                let offset = shared.config.load().orders.offset();
                serde_json::json!({
                    "type": "heartbeat",
                    "at": now,
                    "local_time": crate::report::wallboard::local_clock(now, offset),
                })
                .to_string()
            }
            incoming = socket.recv() => match incoming {
                // Pings are answered by axum; anything else from the page is
                // ignored; a close or an error ends the stream.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => continue,
            },
        };
        if socket.send(Message::Text(message.into())).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "hl_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn offered(protocols: &[&str], query: Option<&str>) -> Result<String, TokenError> {
        let values: Vec<HeaderValue> = protocols
            .iter()
            .map(|p| HeaderValue::from_str(p).unwrap())
            .collect();
        offered_token(values.iter(), query)
    }

    #[test]
    fn the_token_comes_from_a_subprotocol_or_the_query() {
        let proto = format!("bearer.{TOKEN}");
        assert_eq!(offered(&[PROTOCOL, &proto], None).unwrap(), TOKEN);
        assert_eq!(
            offered(&[], Some(&format!("x=1&token={TOKEN}"))).unwrap(),
            TOKEN
        );
        // The subprotocol wins over the query.
        assert_eq!(
            offered(&[&proto], Some("token=hl_nonsense")).unwrap(),
            TOKEN
        );
    }

    #[test]
    fn a_missing_or_malformed_token_is_refused() {
        assert_eq!(offered(&[PROTOCOL], None), Err(TokenError::Missing));
        assert_eq!(offered(&[], Some("tok=1")), Err(TokenError::Missing));
        assert_eq!(offered(&["bearer."], None), Err(TokenError::Empty));
        assert_eq!(offered(&[], Some("token=")), Err(TokenError::Empty));
        assert_eq!(
            offered(&["bearer.hl_XYZ"], None),
            Err(TokenError::Malformed)
        );
        let e = refused(&TokenError::Missing);
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert!(e.message.contains("#token="), "{}", e.message);
    }

    #[test]
    fn the_page_is_self_contained() {
        // A wall screen may be on a closed network: nothing is fetched
        // from elsewhere.
        for outside in ["http://", "https://", "//cdn", "@import", "<link", "src="] {
            assert!(!PAGE.contains(outside), "the page refers to {outside}");
        }
        assert!(PAGE.contains("/api/v1/wallboard/ws"));
        assert!(PAGE.contains(PROTOCOL));
    }
}
