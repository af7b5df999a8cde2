//! HTTP API (axum): call records, health, metrics, admin, and seats and
//! queues ([`agents`]).
//!
//! JSON under `/api/v1`, with its OpenAPI document at `/api/v1/openapi.json`.
//! A request with a bad field gets a 4xx whose body names the field:
//! `{"error": "...", "field": "limit"}`.

mod agents;
mod auth;
mod callers;
mod desk;
pub(crate) mod events;
mod kb;
mod orders;
mod supervise;
mod transfer;
mod wallboard;
mod webseat;

use crate::report::metrics::TrunkScrape;
use crate::server::Shared;
use crate::sip::trunks::TrunkState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The OpenAPI document, kept beside the code it describes.
const OPENAPI: &str = include_str!("openapi.json");

/// Routes for the service.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/calls", get(list_calls))
        .route("/api/v1/calls/{id}", get(get_call))
        .route("/api/v1/calls/{id}/recording", get(get_recording))
        .route("/api/v1/admin/reload", post(reload))
        .route("/api/v1/flows", get(list_flows))
        .route("/api/v1/flows/{name}/stats", get(flow_stats))
        .merge(agents::routes())
        .merge(supervise::routes())
        .merge(transfer::routes())
        .merge(events::routes())
        .merge(orders::routes())
        .merge(kb::routes())
        .merge(callers::routes())
        .merge(wallboard::routes())
        .merge(webseat::routes())
        .merge(desk::routes())
        .fallback(not_found)
        .with_state(shared)
}

/// An API error: status plus a JSON body naming the field when one is at fault.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<&'static str>,
    /// A field named at run time (a path into a JSON body, `citizen.phone`).
    path: Option<String>,
    /// The `WWW-Authenticate` value of a 401 (RFC 6750 §3).
    challenge: Option<&'static str>,
}

impl ApiError {
    fn field(field: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: Some(field),
            path: None,
            challenge: None,
        }
    }

    /// A 400 naming a field found at run time.
    fn at_path(path: String, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: None,
            path: Some(path),
            challenge: None,
        }
    }

    /// A 401 with its bearer challenge.
    fn unauthorized(challenge: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            challenge: Some(challenge),
            ..ApiError::status(StatusCode::UNAUTHORIZED, message)
        }
    }

    fn status(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: None,
            path: None,
            challenge: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.path.as_deref().or(self.field) {
            Some(f) => json!({"error": self.message, "field": f}),
            None => json!({"error": self.message}),
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750: say which scheme the API wants.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(
                    self.challenge.unwrap_or("Bearer realm=\"hotline\""),
                ),
            );
        }
        response
    }
}

async fn not_found() -> ApiError {
    ApiError::status(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let database =
        shared.metrics.writer.healthy.load(Ordering::Relaxed) && shared.store.ping().await.is_ok();
    let draining = shared.is_draining();
    let trunks = shared.trunks.snapshot(&shared.config.load());
    let trunks_down: Vec<&str> = trunks
        .iter()
        .filter(|t| t.status.state == TrunkState::Down)
        .map(|t| t.name.as_str())
        .collect();
    let body = json!({
        "status": if draining { "draining" } else { "ok" },
        "draining": draining,
        "database": if database { "ok" } else { "down" },
        "active_calls": shared.active_calls(),
        "pending_records": shared.metrics.writer.pending.load(Ordering::Relaxed),
        "spooled_orders": shared.order_spool.len(),
        "shared_state": shared.acd.shared_state().as_str(),
        "trunks": trunks
            .iter()
            .map(|t| (t.name.clone(), t.status.state.as_str().into()))
            .collect::<serde_json::Map<String, serde_json::Value>>(),
        "trunks_down": trunks_down,
    });
    // A draining node tells its load balancer to stop sending calls. A down
    // database does not: calls are still answered and records wait in memory.
    // Nor does a down trunk: only transfers to it fail.
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics.render_with(vec![
            Box::new(shared.acd.scrape()),
            Box::new(TrunkScrape(shared.trunks.snapshot(&shared.config.load()))),
            shared.push.scrape(),
        ]),
    )
        .into_response()
}

async fn openapi() -> Response {
    static DOC: std::sync::LazyLock<String> = std::sync::LazyLock::new(openapi_document);
    ([(header::CONTENT_TYPE, "application/json")], DOC.as_str()).into_response()
}

/// The OpenAPI document: the paths as written in `openapi.json`, with the
/// schemas of the order types generated from the Rust types themselves, so
/// the document cannot drift from what the API parses and returns.
fn openapi_document() -> String {
    use crate::orders::lifecycle::{Event, Intake, WorkOrder};
    use crate::store::orders::AuditEntry;
    let mut doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    generator.subschema_for::<Intake>();
    generator.subschema_for::<WorkOrder>();
    generator.subschema_for::<Event>();
    generator.subschema_for::<AuditEntry>();
    generator.subschema_for::<crate::kb::lifecycle::Content>();
    let generated = generator.take_definitions(true);
    if let (Some(paths), serde_json::Value::Object(kb)) = (
        doc.pointer_mut("/paths").and_then(|p| p.as_object_mut()),
        kb::openapi_paths(),
    ) {
        paths.extend(kb);
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    {
        for (name, schema) in generated {
            schemas.entry(name).or_insert(schema);
        }
    }
    doc.to_string()
}

const MAX_LIMIT: i64 = 1000;

/// Reads `limit` from a query string: absent means 50.
fn parse_limit(query: Option<&str>) -> Result<i64, ApiError> {
    let mut limit = 50;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "limit" => {
                limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::field(
                            "limit",
                            format!("must be a whole number from 1 to {MAX_LIMIT}, got {value:?}"),
                        )
                    })?;
            }
            other => {
                return Err(ApiError::field(
                    "query",
                    format!("unknown parameter {other:?}"),
                ));
            }
        }
    }
    Ok(limit)
}

async fn list_calls(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let limit = parse_limit(query.as_deref())?;
    let calls = shared
        .store
        .recent_calls(limit)
        .await
        .map_err(|e| ApiError::status(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(Json(json!({ "calls": calls })).into_response())
}

async fn get_call(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(find_call(&shared, &id).await?).into_response())
}

/// A call record by the caller's SIP Call-ID: 400 for a bad id, 404 when
/// there is none, 503 when the database is away.
async fn find_call(shared: &Shared, id: &str) -> Result<crate::call::record::CallRecord, ApiError> {
    if id.is_empty() || id.len() > 512 {
        return Err(ApiError::field(
            "id",
            "must be a SIP Call-ID of 1 to 512 characters",
        ));
    }
    match shared.store.call(id).await {
        Ok(Some(call)) => Ok(call),
        Ok(None) => Err(ApiError::status(
            StatusCode::NOT_FOUND,
            format!("no call with Call-ID {id:?}"),
        )),
        Err(e) => Err(ApiError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            e.to_string(),
        )),
    }
}

/// The stereo WAV of a call's conversation with an agent (caller left,
/// agent right).
async fn get_recording(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let call = find_call(&shared, &id).await?;
    let gone = || {
        ApiError::status(
            StatusCode::NOT_FOUND,
            format!("call {id:?} has no recording (not bridged, not recorded, or past retention)"),
        )
    };
    let path = call.call_recording.ok_or_else(gone)?;
    // Only files under the recordings folder are served, whatever the
    // database says.
    let root = shared.config.load().ivr.recordings_dir.clone();
    let (Ok(root), Ok(file)) = (
        tokio::fs::canonicalize(&root).await,
        tokio::fs::canonicalize(&path).await,
    ) else {
        return Err(gone());
    };
    if !file.starts_with(&root) {
        tracing::warn!(%path, "recording path outside the recordings folder refused");
        return Err(gone());
    }
    // Streamed: an hour's recording is over 100 MB.
    let file = tokio::fs::File::open(&file).await.map_err(|_| gone())?;
    let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let name = format!("{}.wav", crate::call::ivr::sanitize(&id));
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response())
}

async fn reload(State(shared): State<Arc<Shared>>) -> Result<Response, ApiError> {
    // Seats the CLI stored count from this reload on; a database that is
    // away keeps the seats last read and does not block the config.
    if let Err(e) = shared.refresh_seats().await {
        tracing::error!(error = %e, "stored seats not re-read; the last read stay");
    }
    let outcome = tokio::task::spawn_blocking(move || shared.reload())
        .await
        .map_err(|e| ApiError::status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match outcome {
        Ok(outcome) => Ok(Json(
            json!({"reloaded": true, "restart_required": outcome.restart_required}),
        )
        .into_response()),
        Err(e) => Err(ApiError::status(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.to_string(),
        )),
    }
}

async fn list_flows(State(shared): State<Arc<Shared>>) -> Response {
    let set = shared.flows.load_full();
    let status = shared.flows_status.lock().expect("flows status").clone();
    let flows: Vec<_> = set
        .flows
        .values()
        .map(|f| {
            json!({
                "name": f.flow.name,
                "description": f.flow.description,
                "file": f.file.display().to_string(),
                "hash": f.hash,
                "nodes": f.flow.nodes.len(),
            })
        })
        .collect();
    Json(json!({
        "flows": flows,
        "default_language": set.default_language,
        "languages": set.prompts.languages(),
        "prompts": set.prompts.len(),
        "loaded_at": crate::call::record::format_ms(status.loaded_at),
        "last_errors": status.last_errors,
        "last_error_at": status.last_error_at.map(crate::call::record::format_ms),
    }))
    .into_response()
}

async fn flow_stats(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let set = shared.flows.load_full();
    let counted = shared.flow_stats.flow(&name);
    let Some(flow) = set.flow(&name) else {
        if counted.is_none() {
            return Err(ApiError::status(
                StatusCode::NOT_FOUND,
                format!("no flow named {name:?}"),
            ));
        }
        return Ok(Json(json!({"flow": name, "nodes": counted})).into_response());
    };
    // Every node of the running version, counted or not, in file order;
    // counts of nodes an edit removed follow them.
    let mut counted = counted.unwrap_or_default();
    let mut nodes = serde_json::Map::new();
    for node in &flow.nodes {
        let c = counted.remove(&node.id).unwrap_or_default();
        nodes.insert(node.id.clone(), serde_json::to_value(c).unwrap_or_default());
    }
    for (id, c) in counted {
        nodes.insert(id, serde_json::to_value(c).unwrap_or_default());
    }
    Ok(Json(json!({"flow": name, "hash": set.hash(&name), "nodes": nodes})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_checked() {
        assert_eq!(parse_limit(None).ok(), Some(50));
        assert_eq!(parse_limit(Some("limit=5")).ok(), Some(5));
        for bad in ["limit=0", "limit=x", "limit=1001", "limit=-1", "limit="] {
            let e = parse_limit(Some(bad)).err().unwrap();
            assert_eq!(e.field, Some("limit"), "{bad}");
        }
        assert_eq!(
            parse_limit(Some("lmit=3")).err().unwrap().field,
            Some("query")
        );
    }

    #[test]
    fn openapi_is_json() {
        let v: serde_json::Value = serde_json::from_str(&openapi_document()).unwrap();
        for name in ["Intake", "WorkOrder", "Clock", "AuditEntry", "Event"] {
            assert!(
                v.pointer(&format!("/components/schemas/{name}")).is_some(),
                "{name} missing"
            );
        }
        // Every $ref points at a schema that is there.
        let text = v.to_string();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(
                v.pointer(&format!("/components/schemas/{name}")).is_some(),
                "dangling $ref {name}"
            );
        }
        assert!(v["paths"]["/api/v1/calls"].is_object());
    }
}
