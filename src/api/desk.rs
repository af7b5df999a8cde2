//! The browser desktops: `GET /agent` (the agent desktop) and
//! `GET /supervisor` (the supervisor view), their scripts and style under
//! `/desk/...`, and the two lookups only they need:
//!
//! - `GET /api/v1/catalogue`: the matter catalogue as a tree, the
//!   divisions, and the appeal types and urgencies an order takes, for the
//!   order form's pickers;
//! - `GET /api/v1/desk/directory`: where a call can be transferred or
//!   conferenced: the trunks (the emergency services 110/119/120/122
//!   flagged) and the handling units reachable through a trunk.
//!
//! The pages are static files compiled into the binary (no build step, and
//! nothing fetched from elsewhere: a hotline floor may be on a closed
//! network). They talk to the seat's WebSocket (`/api/v1/webseat`, see
//! docs/browser-seat.md) and to the REST API with the bearer token it hands
//! out.

use super::ApiError;
use super::auth::Caller;
use crate::orders::catalogue::Catalogue;
use crate::orders::model::{AppealType, Urgency};
use crate::server::Shared;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

/// One file of the desktops: its URL path, content type and text.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    text: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file the desktops are made of, kept beside the code that serves
/// them.
const ASSETS: &[Asset] = &[
    Asset {
        path: "/agent",
        content_type: HTML,
        text: include_str!("desk/agent.html"),
    },
    Asset {
        path: "/supervisor",
        content_type: HTML,
        text: include_str!("desk/supervisor.html"),
    },
    Asset {
        path: "/desk/desk.css",
        content_type: CSS,
        text: include_str!("desk/desk.css"),
    },
    Asset {
        path: "/desk/desk-common.js",
        content_type: JS,
        text: include_str!("desk/desk-common.js"),
    },
    Asset {
        path: "/desk/agent.js",
        content_type: JS,
        text: include_str!("desk/agent.js"),
    },
    Asset {
        path: "/desk/supervisor.js",
        content_type: JS,
        text: include_str!("desk/supervisor.js"),
    },
];

/// What the pages may load and connect to: their own origin only (the
/// seat socket and the event stream are same-origin WebSockets), and the
/// call audio, which arrives as a media stream, not a URL.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self'; \
    img-src 'self' data:; media-src 'self' blob: mediastream:; object-src 'none'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The trunks of the emergency services, which the desktop offers as
/// one-click three-way calls.
pub const EMERGENCY_TRUNKS: [&str; 4] = ["110", "119", "120", "122"];

/// Routes for the pages, their files and their lookups.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/agent", get(|| async { asset("/agent") }))
        .route("/supervisor", get(|| async { asset("/supervisor") }))
        .route(
            "/desk/{file}",
            get(|Path(file): Path<String>| async move { asset(&format!("/desk/{file}")) }),
        )
        .route("/api/v1/catalogue", get(catalogue))
        .route("/api/v1/desk/directory", get(directory))
}

/// A file of the desktops, or the API's 404.
fn asset(path: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return ApiError::status(StatusCode::NOT_FOUND, format!("no desktop file {path}"))
            .into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            // The files change with the binary; a browser asks each time
            // (and gets a cheap answer), so an upgrade is never half-loaded.
            (header::CACHE_CONTROL, "no-cache"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        ],
        asset.text,
    )
        .into_response()
}

/// Neither lookup takes parameters; a stray one is a mistake worth saying.
fn no_query(query: Option<&str>) -> Result<(), ApiError> {
    match query.filter(|q| !q.is_empty()) {
        None => Ok(()),
        Some(q) => Err(ApiError::field(
            "query",
            format!("this endpoint takes no parameters, got {q:?}"),
        )),
    }
}

/// The Chinese name agents know an appeal type by (art. 8). A new type
/// fails to compile here until it has a name; list it in [`APPEAL_TYPES`].
fn appeal_type_name(t: AppealType) -> &'static str {
    match t {
        AppealType::Consultation => "咨询",
        AppealType::Help => "求助",
        AppealType::Complaint => "投诉",
        AppealType::Report => "举报",
        AppealType::Suggestion => "意见建议",
        AppealType::Praise => "表扬",
        AppealType::Other => "其他",
    }
}

/// The appeal types in the order the form offers them.
const APPEAL_TYPES: [AppealType; 7] = [
    AppealType::Consultation,
    AppealType::Help,
    AppealType::Complaint,
    AppealType::Report,
    AppealType::Suggestion,
    AppealType::Praise,
    AppealType::Other,
];

fn urgency_name(u: Urgency) -> &'static str {
    match u {
        Urgency::Normal => "一般",
        Urgency::Urgent => "紧急",
        Urgency::Emergency => "突发事件",
    }
}

const URGENCIES: [Urgency; 3] = [Urgency::Normal, Urgency::Urgent, Urgency::Emergency];

/// `{"value": <as the order API spells it>, "name": <Chinese>}`.
fn choice<T: serde::Serialize>(value: T, name: &str) -> Value {
    json!({"value": value, "name": name})
}

/// A category and everything under it.
fn category_tree(catalogue: &Catalogue, code: &str) -> Value {
    let Some(c) = catalogue.get(code) else {
        return Value::Null;
    };
    let children: Vec<Value> = catalogue
        .children(code)
        .map(|child| category_tree(catalogue, &child.code))
        .collect();
    json!({
        "code": c.code,
        "name": c.name,
        "level": c.level,
        "emergency": c.emergency,
        "children": children,
    })
}

/// `GET /api/v1/catalogue`: what the order form picks from.
async fn catalogue(
    State(shared): State<Arc<Shared>>,
    Caller(_who): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_query(query.as_deref())?;
    let rules = shared.order_rules.load();
    let categories: Vec<Value> = rules
        .catalogue
        .categories()
        .filter(|c| c.parent.is_none())
        .map(|c| category_tree(&rules.catalogue, &c.code))
        .collect();
    let divisions: Vec<Value> = rules
        .units
        .divisions()
        .map(|d| json!({"code": d.code, "name": d.name, "parent": d.parent}))
        .collect();
    Ok(Json(json!({
        "categories": categories,
        "divisions": divisions,
        "appeal_types": APPEAL_TYPES.map(|t| choice(t, appeal_type_name(t))),
        "urgencies": URGENCIES.map(|u| choice(u, urgency_name(u))),
    }))
    .into_response())
}

/// `GET /api/v1/desk/directory`: transfer and three-way targets. Trunks
/// that dial numbers (`{number}` in the URI, the call-back line) are left
/// out: they are not a target by name. A unit is reachable when a trunk
/// bears the unit's id as its name; its `target` is that trunk.
async fn directory(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    no_query(query.as_deref())?;
    if !who.role.is_hotline() {
        return Err(ApiError::status(
            StatusCode::FORBIDDEN,
            format!(
                "a {} does not transfer calls; the directory is for the hotline's own staff",
                who.role.as_str()
            ),
        ));
    }
    let config = shared.config.load();
    let health = shared.trunks.snapshot(&config);
    let state = |name: &str| {
        health
            .iter()
            .find(|t| t.name == name)
            .map_or("unknown", |t| t.status.state.as_str())
    };
    let trunks: Vec<_> = config
        .trunks
        .iter()
        .filter(|t| !t.uri.contains("{number}"))
        .collect();
    let trunk_list: Vec<Value> = trunks
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "description": t.description,
                "emergency": EMERGENCY_TRUNKS.contains(&t.name.as_str()),
                "state": state(&t.name),
            })
        })
        .collect();
    let rules = shared.order_rules.load();
    let units: Vec<Value> = rules
        .units
        .units()
        .filter(|u| trunks.iter().any(|t| t.name == u.id))
        .map(|u| {
            json!({
                "id": u.id,
                "name": u.name,
                "kind": u.kind.as_str(),
                "division": u.division,
                "target": u.id,
                "state": state(&u.id),
            })
        })
        .collect();
    Ok(Json(json!({"trunks": trunk_list, "units": units})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_fetch_nothing_from_elsewhere() {
        // A hotline floor may be on a closed network.
        for a in ASSETS {
            for outside in ["http://", "https://", "//cdn", "@import", "url(http"] {
                assert!(!a.text.contains(outside), "{} refers to {outside}", a.path);
            }
        }
        let page = |p: &str| ASSETS.iter().find(|a| a.path == p).unwrap().text;
        for p in ["/agent", "/supervisor"] {
            assert!(page(p).contains("/desk/desk-common.js"), "{p}");
            assert!(page(p).contains("/desk/desk.css"), "{p}");
        }
        assert!(page("/desk/desk-common.js").contains("/api/v1/webseat"));
    }

    #[test]
    fn every_page_script_is_served() {
        // A `<script src>` or stylesheet the table lacks would be a 404.
        for a in ASSETS.iter().filter(|a| a.content_type == HTML) {
            for part in a.text.split("\"/desk/").skip(1) {
                let file = &part[..part.find('"').unwrap()];
                let path = format!("/desk/{file}");
                assert!(
                    ASSETS.iter().any(|x| x.path == path),
                    "{} refers to {path}, which is not served",
                    a.path
                );
            }
        }
    }

    #[test]
    fn choices_are_spelled_as_the_order_api_parses_them() {
        for t in APPEAL_TYPES {
            let v = choice(t, appeal_type_name(t));
            let back: AppealType = serde_json::from_value(v["value"].clone()).unwrap();
            assert_eq!(back, t);
        }
        assert_eq!(
            choice(AppealType::Consultation, "咨询")["value"],
            "consultation"
        );
        for u in URGENCIES {
            let v = choice(u, urgency_name(u));
            let back: Urgency = serde_json::from_value(v["value"].clone()).unwrap();
            assert_eq!(back, u);
        }
    }

    #[test]
    fn the_lookups_are_documented() {
        let doc: Value = serde_json::from_str(super::super::OPENAPI).unwrap();
        for path in ["/api/v1/catalogue", "/api/v1/desk/directory"] {
            assert!(doc["paths"][path]["get"].is_object(), "{path}");
        }
    }
}
