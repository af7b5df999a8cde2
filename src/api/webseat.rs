//! `GET /api/v1/webseat`: the agent desktop's WebSocket (docs/browser-seat.md).
//! The login happens on the socket, so the upgrade itself needs no token.

use crate::server::Shared;
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/api/v1/webseat", get(upgrade))
}

async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(gateway) = shared.webseat.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "browser seats are off ([webseat] enabled = false)",
        )
            .into_response();
    };
    ws.on_upgrade(move |socket| crate::webseat::session::serve(shared, gateway, socket, peer.ip()))
}
