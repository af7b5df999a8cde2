//! Agents' transfers and three-way calls on a live call (`{id}` is the
//! caller's SIP Call-ID):
//!
//! - `POST /api/v1/calls/{id}/transfer {"target"}`: blind transfer;
//! - `POST /api/v1/calls/{id}/consult {"target"}`, then
//!   `POST /api/v1/calls/{id}/consult/complete` (or `DELETE .../consult`):
//!   attended transfer;
//! - `POST /api/v1/calls/{id}/conference {"target"}`: three-way call;
//!   `DELETE` drops the target, `POST .../leave` takes the agent out;
//! - `POST /api/v1/calls/{id}/mute {"party", "muted"}`.
//!
//! The dialling requests answer once the target answered or failed, with
//! the result (`answered`, `busy`, `no-answer`, `unreachable`,
//! `trunk-down`, ...). A failed attempt is still a 200: the request was
//! carried out, and the caller is back with the agent.

use super::ApiError;
use super::agents::{object, only_known, string};
use super::supervise::ask_within;
use crate::call::control::{CallCommand, ControlError};
use crate::call::mixplan::Party;
use crate::call::transfer::{Kind, valid_target};
use crate::server::Shared;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Longer than any trunk's ring time, so the answer is the call's.
const DIAL_WAIT: Duration = Duration::from_secs(150);
const QUICK_WAIT: Duration = Duration::from_secs(5);

pub fn routes() -> Router<Arc<Shared>> {
    let dialling = |kind: Kind| post(move |state, id, body| dial(state, id, body, kind));
    Router::new()
        .route("/api/v1/calls/{id}/transfer", dialling(Kind::Blind))
        .route(
            "/api/v1/calls/{id}/consult",
            dialling(Kind::Attended).delete(cancel),
        )
        .route("/api/v1/calls/{id}/consult/complete", post(complete))
        .route(
            "/api/v1/calls/{id}/conference",
            dialling(Kind::Conference).delete(cancel),
        )
        .route("/api/v1/calls/{id}/leave", post(leave))
        .route("/api/v1/calls/{id}/mute", post(mute))
}

/// Brings the target in and reports how it went.
async fn dial(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
    kind: Kind,
) -> Result<Response, ApiError> {
    let map = object(&body)?;
    only_known(&map, &["target"])?;
    let target = string(&map, "target")?
        .filter(|t| valid_target(t))
        .ok_or_else(|| {
            ApiError::field(
                "target",
                "must be a trunk name (110, 119, water, ...), a seat id or a number",
            )
        })?;
    let (reply, answer) = oneshot::channel();
    let command = CallCommand::Transfer {
        kind,
        target: target.clone(),
        reply,
    };
    let attempt = ask_within(&shared, &id, command, answer, DIAL_WAIT).await?;
    Ok(Json(json!({
        "call_id": id,
        "kind": kind,
        "target": target,
        "result": attempt.outcome.as_str(),
        "status": attempt.status,
        "caller_with": attempt.caller_with,
    }))
    .into_response())
}

async fn complete(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    quick(&shared, &id, |reply| CallCommand::Complete { reply }).await
}

async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    quick(&shared, &id, |reply| CallCommand::CancelTransfer { reply }).await
}

async fn leave(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    quick(&shared, &id, |reply| CallCommand::Leave { reply }).await
}

async fn mute(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object(&body)?;
    only_known(&map, &["party", "muted"])?;
    let party = string(&map, "party")?
        .as_deref()
        .and_then(Party::parse)
        .ok_or_else(|| ApiError::field("party", "must be caller, agent, target or supervisor"))?;
    let muted = match map.get("muted") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::field("muted", "must be true or false")),
    };
    quick(&shared, &id, |reply| CallCommand::Mute {
        party,
        muted,
        reply,
    })
    .await
}

/// A request the call answers at once.
async fn quick(
    shared: &Shared,
    id: &str,
    command: impl FnOnce(oneshot::Sender<Result<&'static str, ControlError>>) -> CallCommand,
) -> Result<Response, ApiError> {
    let (reply, answer) = oneshot::channel();
    let status = ask_within(shared, id, command(reply), answer, QUICK_WAIT).await?;
    Ok(Json(json!({"call_id": id, "status": status})).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented() {
        let doc: serde_json::Value = serde_json::from_str(super::super::OPENAPI).unwrap();
        for (path, method) in [
            ("/api/v1/calls/{id}/transfer", "post"),
            ("/api/v1/calls/{id}/consult", "post"),
            ("/api/v1/calls/{id}/consult", "delete"),
            ("/api/v1/calls/{id}/consult/complete", "post"),
            ("/api/v1/calls/{id}/conference", "post"),
            ("/api/v1/calls/{id}/conference", "delete"),
            ("/api/v1/calls/{id}/leave", "post"),
            ("/api/v1/calls/{id}/mute", "post"),
        ] {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is not in openapi.json"
            );
        }
    }
}
