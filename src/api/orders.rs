//! The order API under `/api/v1/orders` (and intake at `/api/v1/appeals`):
//! bearer-token users act on work orders through the [`desk`]. Each action
//! is a sub-resource (`POST /orders/{no}/sign`, `/reply`, ...); the unit of a
//! unit handler is their own, an admin names it in the body.
//!
//! Status codes: 201 created, 200 done (or an idempotent replay, with
//! `Idempotent-Replayed: true`), 400 naming the field, 401 without a valid
//! token, 403 for a role or unit that may not, 404 for an order the caller
//! may not see, 409 for an action the order's state does not allow, 422 for
//! a reused Idempotency-Key, 503 while the database is away.

use super::ApiError;
use super::auth::Caller;
use crate::auth::Role;
use crate::call::control::{CallCommand, CallFacts};
use crate::call::record::now_ms;
use crate::orders::desk::{self, DeskError};
use crate::orders::lifecycle::{AlertKind, Command, Intake, Plan, Refusal};
use crate::orders::model::{Channel, OrderStatus, Satisfaction};
use crate::orders::spool::{Spool, Spooled};
use crate::server::Shared;
use crate::store::orders::{Cursor, Idempotency, OrderFilter, Written};
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::oneshot;

/// The order routes.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/appeals", post(appeal))
        .route("/api/v1/calls/{id}/order", post(from_call))
        .route("/api/v1/orders", post(create).get(list))
        .route("/api/v1/orders/events", get(events))
        .route("/api/v1/orders/{no}", get(one))
        .route("/api/v1/orders/{no}/audit", get(audit))
        .route("/api/v1/orders/{no}/{action}", post(action))
        .route("/api/v1/orders/{no}/{action}/{step}", post(action_step))
}

pub(super) fn desk_error(e: DeskError) -> ApiError {
    match e {
        DeskError::NotFound(no) => {
            ApiError::status(StatusCode::NOT_FOUND, format!("no order {no}"))
        }
        DeskError::Refused(Refusal::Forbidden(m)) => ApiError::status(StatusCode::FORBIDDEN, m),
        DeskError::Refused(Refusal::Conflict(m)) => ApiError::status(StatusCode::CONFLICT, m),
        DeskError::Refused(Refusal::Invalid { field, message }) => ApiError::field(field, message),
        DeskError::KeyReused(m) => ApiError::status(StatusCode::UNPROCESSABLE_ENTITY, m),
        DeskError::Unavailable(e) => ApiError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the order store is unavailable, nothing was changed; retry later ({e})"),
        ),
    }
}

/// Parses a JSON body into `T`, naming the field at fault.
pub(super) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // Unknown and missing fields are named by serde itself.
        let field = if path == "." {
            field_in(&message).unwrap_or_else(|| "body".into())
        } else {
            path
        };
        ApiError::at_path(field, message)
    })
}

/// The field serde names in "unknown field `x`" / "missing field `x`".
fn field_in(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

fn written(
    shared: &Shared,
    status: StatusCode,
    w: &Written,
    who: &crate::auth::Principal,
) -> Response {
    shared.order_events.publish(&w.order, &w.events, now_ms());
    let body = json!({
        "order": desk::view(&w.order, who, false),
        "version": w.version,
        "events": desk::events_json(&w.order.order_no, &w.events),
    });
    let mut response = (status, Json(body)).into_response();
    if w.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Splits `submit` (default true) off an intake body.
fn intake_body(body: &[u8]) -> Result<(Intake, bool), ApiError> {
    let mut value: Value = parse(body)?;
    if !value.is_object() {
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    let submit = match value.as_object_mut().and_then(|m| m.remove("submit")) {
        None => true,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(ApiError::field("submit", "must be true or false")),
    };
    let text = value.to_string();
    let intake: Intake = parse(text.as_bytes())?;
    Ok((intake, submit))
}

/// `POST /api/v1/orders`: an agent or dispatcher writes an order (an
/// `Idempotency-Key` is honoured when sent).
async fn create(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let (intake, submit) = intake_body(&body)?;
    take(&shared, &who, intake, submit, key.as_deref(), &body).await
}

/// `POST /api/v1/appeals`: intake from the web portal, app, mini-program
/// and SMS gateway. An `Idempotency-Key` is required: a retried post
/// returns the first order instead of making a second.
async fn appeal(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?.ok_or_else(|| {
        ApiError::field(
            "Idempotency-Key",
            "an online appeal needs an Idempotency-Key header (a unique id per appeal)",
        )
    })?;
    let (intake, submit) = intake_body(&body)?;
    if intake.channel == Channel::Phone {
        return Err(ApiError::field(
            "channel",
            "phone appeals come from calls; use web, app, mini_program or sms",
        ));
    }
    take(&shared, &who, intake, submit, Some(&key), &body).await
}

/// Writes an intake: 201, or 200 when `key` replays an earlier post.
async fn take(
    shared: &Shared,
    who: &crate::auth::Principal,
    intake: Intake,
    submit: bool,
    key: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let hash = request_hash(body);
    let idem = key.map(|key| Idempotency {
        key,
        request_hash: &hash,
    });
    let rules = shared.order_rules.load();
    let w = desk::create(&shared.store, &rules, who, intake, submit, idem, now_ms())
        .await
        .map_err(desk_error)?;
    Ok(written(shared, created(&w), &w, who))
}

/// 201 for a new order, 200 when an Idempotency-Key replayed one.
fn created(w: &Written) -> StatusCode {
    if w.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    }
}

/// `POST /api/v1/calls/{id}/order`: the agent files the order of the call
/// they are on (or one that just ended). The caller's number, the Call-ID,
/// the IVR path, the seat and the recording are filled in from the call.
/// While the database is away the order is spooled (202) and written when
/// it returns.
async fn from_call(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    Path(call_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // A retry after a timeout must not file the call's order twice.
    let key = idempotency_key(&headers)?;
    let hash = request_hash(&body);
    if !matches!(who.role, Role::Agent | Role::Dispatcher | Role::Admin) {
        return Err(ApiError::status(
            StatusCode::FORBIDDEN,
            format!("a {} may not take appeals", who.role.as_str()),
        ));
    }
    let facts = call_facts(&shared, &call_id).await?;
    let mut value: Value = parse(&body)?;
    let Some(map) = value.as_object_mut() else {
        return Err(ApiError::field("body", "must be a JSON object"));
    };
    for fixed in ["channel", "calls"] {
        if map.contains_key(fixed) {
            return Err(ApiError::field(fixed, "is filled in from the call"));
        }
    }
    map.insert("channel".into(), json!("phone"));
    map.insert(
        "calls".into(),
        json!([{
            "call_id": call_id,
            "recording": facts.recording,
            "ivr_path": facts.ivr_path,
            "seat": facts.seat,
            "survey_score": facts.survey_score,
        }]),
    );
    let citizen = map.entry("citizen").or_insert_with(|| json!({}));
    let Some(citizen) = citizen.as_object_mut() else {
        return Err(ApiError::field("citizen", "must be an object"));
    };
    citizen
        .entry("phone")
        .or_insert_with(|| json!(facts.caller));
    let (mut intake, submit) = intake_body(value.to_string().as_bytes())?;
    let rules = shared.order_rules.load();
    desk::check_intake(&rules, &mut intake).map_err(desk_error)?;
    let now = now_ms();
    let idem = key.as_deref().map(|key| Idempotency {
        key,
        request_hash: &hash,
    });
    match desk::create(
        &shared.store,
        &rules,
        &who,
        intake.clone(),
        submit,
        idem,
        now,
    )
    .await
    {
        Ok(w) => Ok(written(&shared, created(&w), &w, &who)),
        Err(DeskError::Unavailable(e)) => {
            let entry = Spooled {
                id: Spool::new_id(now),
                who: who.clone(),
                intake,
                submit,
                at: now,
                key: key.clone().map(|k| (k, hash.clone())),
            };
            shared.order_spool.put(&entry).map_err(|io| {
                ApiError::status(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the database is unavailable ({e}) and the spool cannot be written ({io}); nothing was kept"),
                )
            })?;
            tracing::warn!(spool = %entry.id, call = %call_id, error = %e, "order spooled until the database returns");
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({
                    "spooled": entry.id,
                    "message": "the database is unavailable; the order is kept and will be written when it returns",
                })),
            )
                .into_response())
        }
        Err(e) => Err(desk_error(e)),
    }
}

/// The call as the order needs it: from the live call, else its record.
async fn call_facts(shared: &Shared, call_id: &str) -> Result<CallFacts, ApiError> {
    let (reply, answer) = oneshot::channel();
    if shared
        .directory
        .send(call_id, CallCommand::Describe { reply })
        .is_ok()
        && let Ok(Ok(facts)) = tokio::time::timeout(Duration::from_secs(2), answer).await
    {
        return Ok(facts);
    }
    match shared.store.call(call_id).await {
        Ok(Some(r)) => Ok(CallFacts {
            caller: r.caller,
            seat: r.seat,
            ivr_path: r.flow_path,
            recording: r.call_recording,
            survey_score: r.survey_score,
        }),
        Ok(None) => Err(ApiError::status(
            StatusCode::NOT_FOUND,
            format!("no call {call_id:?} in progress or on record"),
        )),
        Err(e) => Err(ApiError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the call has ended and its record cannot be read, the database is unavailable: {e}"
            ),
        )),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .ok_or_else(|| ApiError::field("Idempotency-Key", "must be 1-200 visible characters"))?;
    Ok(Some(key.to_owned()))
}

fn request_hash(body: &[u8]) -> String {
    // The parsed JSON, re-serialised, so whitespace differences in a retry
    // do not count as a different request.
    let canonical = serde_json::from_slice::<Value>(body)
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_else(|_| body.to_vec());
    Sha256::digest(&canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `GET /api/v1/orders?status=&unit=&overdue=&category=&from=&to=&order_no=&phone=&limit=&cursor=`
async fn list(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let filter = parse_filter(query.as_deref().unwrap_or(""))?;
    let (orders, page) = desk::list(&shared.store, &who, filter, now_ms())
        .await
        .map_err(desk_error)?;
    Ok(Json(json!({
        "orders": orders,
        "next_cursor": page.next.map(|c| c.encode()),
    }))
    .into_response())
}

fn parse_filter(query: &str) -> Result<OrderFilter, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::field("query", format!("not a query string: {e}")))?;
    let mut f = OrderFilter {
        limit: 50,
        ..OrderFilter::default()
    };
    let ms = |field: &'static str, v: &str| {
        v.parse::<i64>()
            .map_err(|_| ApiError::field(field, "must be Unix milliseconds"))
    };
    for (key, value) in pairs {
        match key.as_str() {
            "status" => {
                f.status = Some(OrderStatus::parse(&value).ok_or_else(|| {
                    ApiError::field(
                        "status",
                        "one of draft, accepted, dispatched, handling, replied, closed, archived",
                    )
                })?)
            }
            "unit" => f.unit = Some(value),
            "overdue" => {
                f.overdue = Some(match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ApiError::field("overdue", "must be true or false")),
                })
            }
            "category" => {
                if value.is_empty() || !value.chars().all(|c| c.is_ascii_digit()) {
                    return Err(ApiError::field("category", "a catalogue code (digits)"));
                }
                f.category = Some(value)
            }
            "from" => f.created_from = Some(ms("from", &value)?),
            "to" => f.created_to = Some(ms("to", &value)?),
            "order_no" => f.order_no = Some(value),
            "phone" => f.phone = Some(value),
            "limit" => {
                f.limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| ApiError::field("limit", "must be 1-500"))?
            }
            "cursor" => {
                f.after = Some(
                    Cursor::decode(&value)
                        .ok_or_else(|| ApiError::field("cursor", "not a cursor from this API"))?,
                )
            }
            _ => {
                return Err(ApiError::field(
                    "query",
                    format!("unknown parameter {key:?}"),
                ));
            }
        }
    }
    Ok(f)
}

/// `GET /api/v1/orders/events` (WebSocket): committed order changes as
/// JSON, each `{order_no, kind, unit, detail, at, units}`; a unit handler
/// hears only of orders its unit has a part in.
async fn events(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |mut socket| async move {
        let mut events = shared.order_events.subscribe();
        let unit = (who.role == Role::UnitHandler).then(|| who.unit.clone().unwrap_or_default());
        loop {
            tokio::select! {
                event = events.recv() => {
                    let message = match event {
                        Ok(e) if unit.as_ref().is_none_or(|u| e.units.contains(u)) => {
                            serde_json::to_value(&e).unwrap_or_default()
                        }
                        Ok(_) => continue,
                        Err(RecvError::Lagged(n)) => json!({"kind": "lagged", "missed": n}),
                        Err(RecvError::Closed) => return,
                    };
                    if socket.send(Message::Text(message.to_string().into())).await.is_err() {
                        return;
                    }
                }
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                    Some(Ok(_)) => {}
                },
            }
        }
    })
}

/// `GET /api/v1/orders/{no}` (`?personal=true` for unmasked personal
/// data, where the role allows; the read is audited).
async fn one(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    Path(no): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let personal = personal_flag(query.as_deref())?;
    let (order, version) = desk::get(&shared.store, &who, &no, personal, now_ms())
        .await
        .map_err(desk_error)?;
    Ok(Json(json!({"order": order, "version": version})).into_response())
}

/// `GET /api/v1/orders/{no}/audit`: the hotline's roles only. Personal
/// data in it is masked unless `?personal=true` (that read is audited too).
async fn audit(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    Path(no): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    if !matches!(who.role, Role::Dispatcher | Role::Supervisor | Role::Admin) {
        return Err(ApiError::status(
            StatusCode::FORBIDDEN,
            format!("a {} may not read the audit log", who.role.as_str()),
        ));
    }
    let personal = personal_flag(query.as_deref())?;
    if shared
        .store
        .order(&no)
        .await
        .map_err(|e| desk_error(e.into()))?
        .is_none()
    {
        return Err(ApiError::status(
            StatusCode::NOT_FOUND,
            format!("no order {no}"),
        ));
    }
    let entries = shared
        .store
        .order_audit(&no)
        .await
        .map_err(|e| desk_error(e.into()))?;
    if personal {
        shared
            .store
            .audit_personal_read(&no, &who, now_ms(), &["audit"])
            .await
            .map_err(|e| desk_error(e.into()))?;
    }
    Ok(Json(json!({ "entries": desk::audit_view(&entries, personal) })).into_response())
}

/// `personal=true|false`, the only query the single-order reads take.
fn personal_flag(query: Option<&str>) -> Result<bool, ApiError> {
    match query {
        None | Some("") | Some("personal=false") => Ok(false),
        Some("personal=true") => Ok(true),
        Some(_) => Err(ApiError::field("query", "only personal=true|false")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitBody {
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextBody {
    #[serde(default)]
    unit: Option<String>,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DispatchBody {
    lead: String,
    #[serde(default)]
    co_handlers: Vec<String>,
    #[serde(default)]
    override_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnBody {
    #[serde(default)]
    unit: Option<String>,
    reason: String,
    basis: String,
    #[serde(default)]
    suggested_unit: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtensionBody {
    #[serde(default)]
    unit: Option<String>,
    working_days: u32,
    reason: String,
    #[serde(default)]
    basis: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    unit: String,
    approve: bool,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    accept: bool,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowUpBody {
    reached: bool,
    #[serde(default)]
    resolved: Option<bool>,
    #[serde(default)]
    satisfaction: Option<Satisfaction>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectAnswerBody {
    #[serde(default)]
    kb_entry: Option<String>,
    answer: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutOfScopeBody {
    reason: String,
    channel: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    into: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertBody {
    #[serde(default)]
    unit: Option<String>,
    text: String,
}

/// The unit a unit's step is for: a unit handler's own, else the body's.
fn unit_for(who: &crate::auth::Principal, named: Option<String>) -> Result<String, ApiError> {
    match (&who.unit, named) {
        (Some(own), Some(named)) if *own != named => Err(ApiError::status(
            StatusCode::FORBIDDEN,
            format!("{} acts for unit {own}, not {named}", who.name),
        )),
        (Some(own), _) => Ok(own.clone()),
        (None, Some(named)) => Ok(named),
        (None, None) => Err(ApiError::field("unit", "name the unit this step is for")),
    }
}

/// Turns `POST /orders/{no}/{action}` into a lifecycle command.
fn command(who: &crate::auth::Principal, action: &str, body: &[u8]) -> Result<Command, ApiError> {
    Ok(match action {
        "submit" => {
            let _: Value = parse(body)?;
            Command::Submit
        }
        "direct-answer" => {
            let b: DirectAnswerBody = parse(body)?;
            Command::DirectAnswer {
                kb_entry: b.kb_entry,
                answer: b.answer,
            }
        }
        "out-of-scope" => {
            let b: OutOfScopeBody = parse(body)?;
            Command::OutOfScope {
                reason: b.reason,
                channel: b.channel,
            }
        }
        "dispatch" => {
            let b: DispatchBody = parse(body)?;
            Command::Dispatch {
                plan: Plan {
                    lead: b.lead,
                    co_handlers: b.co_handlers,
                },
                default: None,
                override_reason: b.override_reason,
            }
        }
        "sign" => {
            let b: UnitBody = parse(body)?;
            Command::Sign {
                unit: unit_for(who, b.unit)?,
            }
        }
        "contact" => {
            let b: UnitBody = parse(body)?;
            Command::Contact {
                unit: unit_for(who, b.unit)?,
                note: b.note,
            }
        }
        "report" => {
            let b: TextBody = parse(body)?;
            Command::Report {
                unit: unit_for(who, b.unit)?,
                text: b.text,
            }
        }
        "reply" => {
            let b: TextBody = parse(body)?;
            Command::Reply {
                unit: unit_for(who, b.unit)?,
                text: b.text,
            }
        }
        "return" => {
            let b: ReturnBody = parse(body)?;
            Command::RequestReturn {
                unit: unit_for(who, b.unit)?,
                reason: b.reason,
                basis: b.basis,
                suggested_unit: b.suggested_unit,
            }
        }
        "extension" => {
            let b: ExtensionBody = parse(body)?;
            Command::RequestExtension {
                unit: unit_for(who, b.unit)?,
                working_days: b.working_days,
                reason: b.reason,
                basis: b.basis,
            }
        }
        "review" => {
            let b: ReviewBody = parse(body)?;
            Command::Review {
                accept: b.accept,
                note: b.note,
            }
        }
        "follow-up" => {
            let b: FollowUpBody = parse(body)?;
            Command::FollowUp {
                reached: b.reached,
                resolved: b.resolved,
                satisfaction: b.satisfaction,
                note: b.note,
            }
        }
        "urge" | "supervise" | "notice" => {
            let b: AlertBody = parse(body)?;
            Command::Alert {
                kind: match action {
                    "urge" => AlertKind::Urge,
                    "supervise" => AlertKind::Supervise,
                    _ => AlertKind::Notice,
                },
                unit: b.unit,
                text: b.text,
            }
        }
        _ => {
            return Err(ApiError::status(
                StatusCode::NOT_FOUND,
                format!("no order action {action:?}"),
            ));
        }
    })
}

/// Second-level actions: `return/decision`, `return/cancel`,
/// `extension/decision`, `extension/cancel`.
fn step_command(
    who: &crate::auth::Principal,
    action: &str,
    step: &str,
    body: &[u8],
) -> Result<Command, ApiError> {
    Ok(match (action, step) {
        ("return" | "extension", "decision") => {
            let b: DecisionBody = parse(body)?;
            if action == "return" {
                Command::DecideReturn {
                    unit: b.unit,
                    approve: b.approve,
                    note: b.note,
                }
            } else {
                Command::DecideExtension {
                    unit: b.unit,
                    approve: b.approve,
                    note: b.note,
                }
            }
        }
        ("return" | "extension", "cancel") => {
            let b: UnitBody = parse(body)?;
            let unit = unit_for(who, b.unit)?;
            if action == "return" {
                Command::CancelReturn { unit }
            } else {
                Command::CancelExtension { unit }
            }
        }
        _ => {
            return Err(ApiError::status(
                StatusCode::NOT_FOUND,
                format!("no order action {action}/{step}"),
            ));
        }
    })
}

async fn action(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    Path((no, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if action == "merge" {
        let b: MergeBody = parse(&body)?;
        let rules = shared.order_rules.load();
        let (from, to) = desk::merge(&shared.store, &rules, &who, &no, &b.into, now_ms())
            .await
            .map_err(desk_error)?;
        shared.order_events.publish(&to.order, &to.events, now_ms());
        return Ok(written(&shared, StatusCode::OK, &from, &who));
    }
    let command = command(&who, &action, &body)?;
    run(&shared, &who, &no, command).await
}

async fn action_step(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    Path((no, action, step)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let command = step_command(&who, &action, &step, &body)?;
    run(&shared, &who, &no, command).await
}

async fn run(
    shared: &Shared,
    who: &crate::auth::Principal,
    no: &str,
    command: Command,
) -> Result<Response, ApiError> {
    let rules = shared.order_rules.load();
    let w = desk::act(&shared.store, &rules, who, no, command, now_ms())
        .await
        .map_err(desk_error)?;
    Ok(written(shared, StatusCode::OK, &w, who))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bodies_name_the_field() {
        let field = |body: &str| {
            intake_body(body.as_bytes())
                .err()
                .and_then(|e| e.path.or(e.field.map(str::to_owned)))
        };
        let good = r#"{"channel": "web", "citizen": {"phone": "13800138000"},
            "appeal_type": "help", "category": "010101", "division": "150102",
            "content": "x"}"#;
        assert_eq!(field(good), None);
        assert_eq!(
            field(&good.replace("13800138000", "12")).as_deref(),
            Some("citizen.phone")
        );
        assert_eq!(
            field(&good.replace("\"web\"", "\"fax\"")).as_deref(),
            Some("channel")
        );
        assert_eq!(
            field(&good.replace("\"x\"}", "\"x\", \"colour\": 1}")).as_deref(),
            Some("colour")
        );
        assert_eq!(
            field(&good.replace("\"content\": \"x\"", "\"location\": \"y\"")).as_deref(),
            Some("content")
        );
        assert_eq!(
            field(&good.replace("\"x\"}", "\"x\", \"submit\": 1}")).as_deref(),
            Some("submit")
        );
        assert_eq!(field("[1]").as_deref(), Some("body"));
    }

    #[test]
    fn every_order_route_and_action_is_documented() {
        let doc: Value = serde_json::from_str(super::super::OPENAPI).unwrap();
        let who = crate::auth::Principal::system("t");
        let mut paths = vec![
            "/api/v1/appeals".to_string(),
            "/api/v1/orders".into(),
            "/api/v1/orders/{no}".into(),
            "/api/v1/orders/{no}/audit".into(),
            "/api/v1/orders/events".into(),
            "/api/v1/orders/{no}/merge".into(),
            "/api/v1/calls/{id}/order".into(),
        ];
        for action in [
            "submit",
            "direct-answer",
            "out-of-scope",
            "dispatch",
            "sign",
            "contact",
            "report",
            "reply",
            "return",
            "extension",
            "review",
            "follow-up",
            "urge",
            "supervise",
            "notice",
        ] {
            // Each is an action the router knows (not a 404).
            let known = command(&who, action, b"{}")
                .err()
                .is_none_or(|e| e.status != StatusCode::NOT_FOUND);
            assert!(known, "{action}");
            paths.push(format!("/api/v1/orders/{{no}}/{action}"));
        }
        for step in [
            "return/decision",
            "return/cancel",
            "extension/decision",
            "extension/cancel",
        ] {
            paths.push(format!("/api/v1/orders/{{no}}/{step}"));
        }
        for path in paths {
            assert!(doc["paths"][&path].is_object(), "{path} is not documented");
        }
    }

    #[test]
    fn filters_parse_and_name_bad_parameters() {
        let f = parse_filter("status=handling&unit=hhht-housing&overdue=true&category=01&limit=5")
            .unwrap();
        assert_eq!(f.status, Some(OrderStatus::Handling));
        assert_eq!(f.overdue, Some(true));
        assert_eq!(f.limit, 5);
        for (bad, field) in [
            ("status=lost", "status"),
            ("overdue=1", "overdue"),
            ("category=0a", "category"),
            ("from=yesterday", "from"),
            ("limit=0", "limit"),
            ("cursor=zz", "cursor"),
            ("colour=red", "query"),
        ] {
            assert_eq!(parse_filter(bad).err().unwrap().field, Some(field), "{bad}");
        }
    }
}
