//! Supervisors on live calls: listen, whisper to the agent, barge in.
//!
//! `POST /api/v1/calls/{id}/monitor` rings the supervisor's seat and joins
//! it to the caller's conversation with the agent in the mode asked for (or
//! switches the mode of the supervisor already there); `DELETE` takes the
//! supervisor off. The call's own actor does the SIP and the mixing.

use super::ApiError;
use super::agents::{object, only_known, string};
use crate::call::control::{CallCommand, ControlError, MonitorMode};
use crate::server::Shared;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Routes for supervising calls.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/api/v1/calls/{id}/monitor", post(monitor).delete(stop))
}

async fn monitor(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let map = object(&body)?;
    only_known(&map, &["supervisor", "mode"])?;
    let supervisor = string(&map, "supervisor")?
        .filter(|s| !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric()))
        .ok_or_else(|| ApiError::field("supervisor", "must be a seat id (letters and digits)"))?;
    let mode = match string(&map, "mode")?.as_deref() {
        None | Some("listen") => MonitorMode::Listen,
        Some("whisper") => MonitorMode::Whisper,
        Some("barge") => MonitorMode::Barge,
        Some(_) => {
            return Err(ApiError::field("mode", "must be listen, whisper or barge"));
        }
    };
    let (reply, answer) = oneshot::channel();
    ask(
        &shared,
        &id,
        CallCommand::Monitor {
            supervisor: supervisor.clone(),
            mode,
            reply,
        },
        answer,
    )
    .await
    .map(|status| {
        (
            StatusCode::ACCEPTED,
            Json(json!({"call_id": id, "supervisor": supervisor, "mode": mode, "status": status})),
        )
            .into_response()
    })
}

async fn stop(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (reply, answer) = oneshot::channel();
    ask(&shared, &id, CallCommand::StopMonitor { reply }, answer)
        .await
        .map(|status| Json(json!({"call_id": id, "status": status})).into_response())
}

/// Sends a command to the call and waits (briefly) for its answer.
async fn ask(
    shared: &Shared,
    id: &str,
    command: CallCommand,
    answer: oneshot::Receiver<Result<&'static str, ControlError>>,
) -> Result<&'static str, ApiError> {
    ask_within(shared, id, command, answer, Duration::from_secs(5)).await
}

/// Sends a command to the call and waits up to `limit` for its answer.
pub(super) async fn ask_within<T>(
    shared: &Shared,
    id: &str,
    command: CallCommand,
    answer: oneshot::Receiver<Result<T, ControlError>>,
    limit: Duration,
) -> Result<T, ApiError> {
    shared.directory.send(id, command).map_err(refusal)?;
    match tokio::time::timeout(limit, answer).await {
        Ok(Ok(result)) => result.map_err(refusal),
        // The call ended while the request was on its way.
        Ok(Err(_)) => Err(refusal(ControlError::NoCall)),
        Err(_) => Err(ApiError::status(
            StatusCode::GATEWAY_TIMEOUT,
            "the call did not answer the request in time",
        )),
    }
}

fn refusal(e: ControlError) -> ApiError {
    let status = match e {
        ControlError::NoCall => StatusCode::NOT_FOUND,
        ControlError::NotConnected
        | ControlError::NoSupervisor
        | ControlError::OtherSupervisor(_)
        | ControlError::TransferBusy(_)
        | ControlError::NoTransfer
        | ControlError::WrongStage(_)
        | ControlError::NotPresent(_)
        | ControlError::SeatBusy(_) => StatusCode::CONFLICT,
        ControlError::NotRegistered(_) | ControlError::UnknownTarget(..) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ControlError::Dial(..) => StatusCode::BAD_GATEWAY,
    };
    ApiError::status(status, e.to_string())
}
