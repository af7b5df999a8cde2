//! Seats and queues over HTTP: the board, seat management, and the agent's
//! own buttons (log in, log out, available, break, wrap-up done).
//!
//! A seat's state is owned by the ACD and its definition by the config file
//! and the store; these handlers turn requests into ACD events and store
//! writes, then answer with the seat as it is afterwards.

use super::{ApiError, parse_limit};
use crate::acd::router::{Activity, Event, RouterError, Status};
use crate::acd::service::{SeatChange, SeatView};
use crate::server::Shared;
use crate::store::seats::{SeatError, SeatInput, SeatSource};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

/// Longest break reason, in characters: it is shown on wallboards.
const MAX_REASON: usize = 64;

/// Routes under `/api/v1` for seats, queues and the seat log.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/seats", get(list_seats).post(put_seat))
        .route("/api/v1/seats/{id}", get(get_seat))
        .route("/api/v1/seats/{id}/disable", post(disable))
        .route("/api/v1/seats/{id}/enable", post(enable))
        .route("/api/v1/seats/{id}/login", post(login))
        .route("/api/v1/seats/{id}/logout", post(logout))
        .route("/api/v1/seats/{id}/available", post(available))
        .route("/api/v1/seats/{id}/break", post(take_break))
        .route("/api/v1/seats/{id}/wrap-up-done", post(wrap_up_done))
        .route("/api/v1/seats/{id}/log", get(seat_log_of))
        .route("/api/v1/seats/{id}/history", get(history))
        .route("/api/v1/seat-log", get(seat_log))
        .route("/api/v1/queues", get(queues))
        .route("/api/v1/missed-calls", get(missed_calls))
}

/// A seat on the board: the ACD's view plus what the seat is and whether its
/// softphone is registered.
#[derive(Debug, serde::Serialize)]
struct SeatEntry {
    #[serde(flatten)]
    view: SeatView,
    name: String,
    enabled: bool,
    /// `config`, `store`, or null for a seat no longer defined (it keeps its
    /// counters until restart).
    source: Option<SeatSource>,
    registered: bool,
    /// The SIP Call-ID of the caller the seat is on a call with (what
    /// `/api/v1/calls/{id}/...` takes, e.g. to supervise it).
    #[serde(skip_serializing_if = "Option::is_none")]
    caller_call_id: Option<String>,
    skills: BTreeMap<String, u8>,
    languages: Vec<String>,
}

/// Board entries, in id order; only `only` when given.
fn entries(shared: &Shared, only: Option<&str>) -> Vec<SeatEntry> {
    let list = shared.seat_list();
    let mut views: BTreeMap<String, SeatView> = shared
        .acd
        .seats()
        .into_iter()
        .map(|v| (v.seat.clone(), v))
        .collect();
    let ids: BTreeSet<String> = list
        .seats
        .iter()
        .map(|(s, _)| s.id.clone())
        .chain(views.keys().cloned())
        .filter(|id| only.is_none_or(|o| o == id))
        .collect();
    let now = Instant::now();
    // Taken after the ACD's lock is released: never hold both.
    let registrar = shared.registrar.lock().expect("registrar lock");
    ids.into_iter()
        .map(|id| {
            let def = list.get(&id);
            let registered = !registrar.lookup(&id, now).is_empty();
            let view = views.remove(&id).unwrap_or_else(|| SeatView {
                seat: id.clone(),
                status: Status::LoggedOut,
                activity: Activity::Idle,
                calls_taken: 0,
                talk_secs: 0,
            });
            SeatEntry {
                view,
                name: def.map(|(s, _)| s.name.clone()).unwrap_or_default(),
                enabled: def.is_some_and(|(s, _)| s.enabled),
                source: def.map(|(_, src)| *src),
                registered,
                caller_call_id: shared.directory.call_of_seat(&id),
                skills: def.map(|(s, _)| s.skills.clone()).unwrap_or_default(),
                languages: def.map(|(s, _)| s.languages.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

fn no_seat(id: &str) -> ApiError {
    ApiError::status(StatusCode::NOT_FOUND, format!("no seat {id:?}"))
}

fn entry(shared: &Shared, id: &str) -> Result<SeatEntry, ApiError> {
    entries(shared, Some(id)).pop().ok_or_else(|| no_seat(id))
}

fn conflict(field: Option<&'static str>, message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::CONFLICT,
        message: message.into(),
        field,
        path: None,
        challenge: None,
    }
}

fn seat_error(e: SeatError) -> ApiError {
    match e {
        SeatError::Invalid { field, message } => ApiError::field(field, message),
        SeatError::NotFound(id) => no_seat(&id),
        SeatError::Store(e) => ApiError::status(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Makes a store change live; the write is done, so a failure here is the
/// database going away between two statements.
async fn refresh(shared: &Shared) -> Result<(), ApiError> {
    shared.refresh_seats().await.map_err(|e| {
        ApiError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("saved, but not applied yet (it will be at the next reload): {e}"),
        )
    })
}

async fn list_seats(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({ "seats": entries(&shared, None) })).into_response()
}

async fn get_seat(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(entry(&shared, &id)?).into_response())
}

/// Reads a JSON object body; an empty body is an empty object.
pub(super) fn object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::field("body", "must be a JSON object")),
        Err(e) => Err(ApiError::field("body", format!("not JSON: {e}"))),
    }
}

pub(super) fn only_known(map: &Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::field(
            "body",
            format!("unknown field {k:?}; known: {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

pub(super) fn string(
    map: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::field(field, "must be a string")),
    }
}

/// The seat a `POST /api/v1/seats` body describes; `password` may be left
/// out to keep the stored one.
fn seat_input(
    map: &Map<String, Value>,
    old_password: Option<String>,
) -> Result<SeatInput, ApiError> {
    let id = string(map, "id")?.ok_or_else(|| ApiError::field("id", "is required"))?;
    let password = match (string(map, "password")?, old_password) {
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) => return Err(ApiError::field("password", "is required for a new seat")),
    };
    let enabled = match map.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::field("enabled", "must be true or false")),
    };
    let skills = match map.get("skills") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(skills)) => skills
            .iter()
            .map(|(name, level)| {
                level
                    .as_u64()
                    .and_then(|l| u8::try_from(l).ok())
                    .map(|l| (name.clone(), l))
                    .ok_or_else(|| {
                        ApiError::field(
                            "skills",
                            format!(
                                "skill {name:?}: the level must be a whole number from 1 to 10"
                            ),
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::field(
                "skills",
                "must be an object of skill name to level, e.g. {\"general\": 5}",
            ));
        }
    };
    let languages = match map.get("languages") {
        // The same default as a [[seat]] without `languages`.
        None | Some(Value::Null) => vec!["cmn".to_string()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|l| {
                l.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::field("languages", "must be a list of strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::field(
                "languages",
                "must be a list of language codes, e.g. [\"cmn\", \"mn\"]",
            ));
        }
    };
    let input = SeatInput {
        id,
        password,
        name: string(map, "name")?.unwrap_or_default(),
        enabled,
        skills,
        languages,
    };
    input.validate().map_err(seat_error)?;
    Ok(input)
}

async fn put_seat(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Response, ApiError> {
    let map = object(&body)?;
    only_known(
        &map,
        &["id", "password", "name", "enabled", "skills", "languages"],
    )?;
    let id = string(&map, "id")?.ok_or_else(|| ApiError::field("id", "is required"))?;
    crate::store::seats::validate_id(&id).map_err(seat_error)?;
    if shared.config.load().seats.iter().any(|s| s.id == id) {
        return Err(conflict(
            Some("id"),
            format!(
                "seat {id:?} is defined in [[seat]] of the config file, which wins; change it there"
            ),
        ));
    }
    let old = shared.store.stored_seat(&id).await.map_err(seat_error)?;
    let input = seat_input(&map, old.map(|s| s.password))?;
    let (_, created) = shared.store.upsert_seat(&input).await.map_err(seat_error)?;
    tracing::info!(seat = %id, created, "stored seat saved through the API");
    refresh(&shared).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(entry(&shared, &id)?)).into_response())
}

async fn set_enabled(shared: &Shared, id: &str, enabled: bool) -> Result<Response, ApiError> {
    if shared.config.load().seats.iter().any(|s| s.id == id) {
        return Err(conflict(
            None,
            format!("seat {id:?} is defined in [[seat]] of the config file; change it there"),
        ));
    }
    shared
        .store
        .set_seat_enabled(id, enabled)
        .await
        .map_err(|e| match e {
            // A malformed id cannot name a seat: not found, like any other.
            SeatError::Invalid { field: "id", .. } => no_seat(id),
            e => seat_error(e),
        })?;
    tracing::info!(seat = %id, enabled, "stored seat changed through the API");
    refresh(shared).await?;
    Ok(Json(entry(shared, id)?).into_response())
}

async fn disable(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_enabled(&shared, &id, false).await
}

async fn enable(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_enabled(&shared, &id, true).await
}

/// An agent's button.
enum Button {
    Login,
    Logout,
    Available,
    Break(String),
    WrapUpDone,
}

fn press(shared: &Shared, id: &str, button: Button) -> Result<Response, ApiError> {
    let before = entry(shared, id)?;
    let needs_enabled = matches!(button, Button::Login | Button::Available | Button::Break(_));
    if needs_enabled && !before.enabled {
        return Err(conflict(None, format!("seat {id:?} is disabled")));
    }
    // Available and break are for a seat at work; logging in is its own step
    // so the board's log-in times mean something.
    let needs_login = matches!(button, Button::Available | Button::Break(_));
    if needs_login && before.view.status == Status::LoggedOut {
        return Err(conflict(
            None,
            format!("seat {id:?} is logged out; log in first"),
        ));
    }
    let seat = id.to_owned();
    let event = match button {
        Button::Login | Button::Available => Event::SetStatus {
            seat,
            status: Status::Available,
        },
        Button::Logout => Event::SetStatus {
            seat,
            status: Status::LoggedOut,
        },
        Button::Break(reason) => Event::SetStatus {
            seat,
            status: Status::OnBreak(reason),
        },
        Button::WrapUpDone => Event::WrapUpDone { seat },
    };
    match shared.acd.handle(event) {
        Ok(()) => {}
        // A disabled seat the ACD never knew is logged out already.
        Err(RouterError::NoSeat(_)) if matches!(before.view.status, Status::LoggedOut) => {}
        Err(RouterError::NoSeat(_)) => return Err(no_seat(id)),
        Err(e) => return Err(conflict(None, e.to_string())),
    }
    Ok(Json(entry(shared, id)?).into_response())
}

async fn login(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    press(&shared, &id, Button::Login)
}

async fn logout(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    press(&shared, &id, Button::Logout)
}

async fn available(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    press(&shared, &id, Button::Available)
}

async fn wrap_up_done(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    press(&shared, &id, Button::WrapUpDone)
}

/// The `reason` of a break body.
fn break_reason(body: &Bytes) -> Result<String, ApiError> {
    let map = object(body)?;
    only_known(&map, &["reason"])?;
    let reason = string(&map, "reason")?
        .ok_or_else(|| ApiError::field("reason", "is required, e.g. {\"reason\": \"lunch\"}"))?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ApiError::field("reason", "must not be empty"));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(ApiError::field(
            "reason",
            format!("must be at most {MAX_REASON} characters"),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(ApiError::field(
            "reason",
            "must not contain control characters",
        ));
    }
    Ok(reason.to_owned())
}

async fn take_break(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    // An unknown seat is 404 whatever the body says.
    entry(&shared, &id)?;
    let reason = break_reason(&body)?;
    press(&shared, &id, Button::Break(reason))
}

/// A seat change with a readable time next to the Unix ms.
fn log_entries(changes: impl IntoIterator<Item = SeatChange>) -> Vec<Value> {
    changes
        .into_iter()
        .map(|c| {
            let mut v = serde_json::to_value(&c).unwrap_or_default();
            v["time"] = json!(crate::call::record::format_ms(c.at));
            v
        })
        .collect()
}

async fn seat_log(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let limit = parse_limit(query.as_deref())?;
    let changes = shared.acd.seat_log(usize::try_from(limit).unwrap_or(0));
    Ok(Json(json!({ "changes": log_entries(changes) })).into_response())
}

async fn seat_log_of(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let limit = usize::try_from(parse_limit(query.as_deref())?).unwrap_or(0);
    entry(&shared, &id)?;
    let mine: Vec<SeatChange> = shared
        .acd
        .seat_log(usize::MAX)
        .into_iter()
        .filter(|c| c.seat == id)
        .collect();
    let skip = mine.len().saturating_sub(limit);
    Ok(Json(json!({
        "seat": id,
        "changes": log_entries(mine.into_iter().skip(skip)),
    }))
    .into_response())
}

/// The durable seat log from the store (survives restarts), oldest first:
/// `?since=<unix ms>&limit=N`.
async fn history(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    entry(&shared, &id)?;
    let query = query.unwrap_or_default();
    let others: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.starts_with("since="))
        .collect();
    let limit = parse_limit(Some(&others.join("&")))?;
    let since = match query.split('&').find_map(|kv| kv.strip_prefix("since=")) {
        None => 0,
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| ApiError::field("since", "must be Unix milliseconds"))?,
    };
    let rows = shared
        .store
        .seat_log(&id, since, limit)
        .await
        .map_err(|e| ApiError::status(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(Json(json!({ "seat": id, "changes": rows })).into_response())
}

async fn queues(State(shared): State<Arc<Shared>>) -> Response {
    let queues: Vec<Value> = shared
        .acd
        .queues()
        .into_iter()
        .map(|q| {
            json!({
                "name": q.queue,
                "waiting": q.waiting,
                "longest_wait_secs": q.longest_wait_secs,
            })
        })
        .collect();
    Json(json!({ "queues": queues })).into_response()
}

async fn missed_calls(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let limit = usize::try_from(parse_limit(query.as_deref())?).unwrap_or(0);
    let missed = shared.acd.missed();
    let skip = missed.len().saturating_sub(limit);
    let missed: Vec<Value> = missed
        .into_iter()
        .skip(skip)
        .map(|m| {
            let mut v = serde_json::to_value(&m).unwrap_or_default();
            v["time"] = json!(crate::call::record::format_ms(m.at));
            v
        })
        .collect();
    Ok(Json(json!({ "missed_calls": missed })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(body: &str) -> Result<String, Option<&'static str>> {
        break_reason(&Bytes::from(body.to_owned())).map_err(|e| e.field)
    }

    #[test]
    fn every_route_is_documented() {
        let doc: Value = serde_json::from_str(super::super::OPENAPI).unwrap();
        for path in [
            "/api/v1/seats",
            "/api/v1/seats/{id}",
            "/api/v1/seats/{id}/disable",
            "/api/v1/seats/{id}/enable",
            "/api/v1/seats/{id}/login",
            "/api/v1/seats/{id}/logout",
            "/api/v1/seats/{id}/available",
            "/api/v1/seats/{id}/break",
            "/api/v1/seats/{id}/wrap-up-done",
            "/api/v1/seats/{id}/log",
            "/api/v1/seat-log",
            "/api/v1/queues",
            "/api/v1/missed-calls",
        ] {
            assert!(
                doc["paths"][path].is_object(),
                "{path} is not in openapi.json"
            );
        }
    }

    #[test]
    fn break_reason_is_checked() {
        assert_eq!(reason(r#"{"reason": " lunch "}"#), Ok("lunch".into()));
        assert_eq!(reason(""), Err(Some("reason")));
        assert_eq!(reason("{}"), Err(Some("reason")));
        assert_eq!(reason(r#"{"reason": ""}"#), Err(Some("reason")));
        assert_eq!(reason(r#"{"reason": 3}"#), Err(Some("reason")));
        let long = format!(r#"{{"reason": "{}"}}"#, "x".repeat(65));
        assert_eq!(reason(&long), Err(Some("reason")));
        let ok = format!(r#"{{"reason": "{}"}}"#, "午".repeat(64));
        assert!(reason(&ok).is_ok());
        assert_eq!(reason("lunch"), Err(Some("body")));
        assert_eq!(reason(r#"{"reason": "x", "why": 1}"#), Err(Some("body")));
    }

    #[test]
    fn seat_bodies_name_the_field() {
        let field = |body: &str| {
            let map: Map<String, Value> = serde_json::from_str(body).unwrap();
            seat_input(&map, None).err().and_then(|e| e.field)
        };
        assert_eq!(field(r#"{"id": "2001", "password": "longenough"}"#), None);
        assert_eq!(field(r#"{"password": "longenough"}"#), Some("id"));
        assert_eq!(field(r#"{"id": "2001"}"#), Some("password"));
        assert_eq!(
            field(r#"{"id": "2001", "password": "longenough", "skills": {"a": 11}}"#),
            Some("skills")
        );
        assert_eq!(
            field(r#"{"id": "2001", "password": "longenough", "skills": {"a": 300}}"#),
            Some("skills")
        );
        assert_eq!(
            field(r#"{"id": "2001", "password": "longenough", "languages": "cmn"}"#),
            Some("languages")
        );
        assert_eq!(
            field(r#"{"id": "2001", "password": "longenough", "enabled": "yes"}"#),
            Some("enabled")
        );
        assert_eq!(
            field(r#"{"id": "2 1", "password": "longenough"}"#),
            Some("id")
        );
    }
}
