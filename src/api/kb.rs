//! The knowledge-base API under `/api/v1/kb`: units write entries, the
//! hotline reviews and publishes them, everyone searches the published
//! ones, and hot topics count the direct answers given with each entry.
//! The rules are in [`crate::kb::lifecycle`]; this only parses and maps.
//!
//! Status codes as the order API's: 201 created, 200 done, 400 naming the
//! field, 401 without a valid token, 403 for a role or unit that may not,
//! 404 for an entry the caller may not read, 409 for an action the state
//! does not allow or an edit of a version that is no longer the newest,
//! 503 while the database is away or the search index is being built.

use super::ApiError;
use super::auth::Caller;
use super::orders::parse;
use crate::auth::{Principal, Role};
use crate::call::record::now_ms;
use crate::kb::desk::{self, KbError};
use crate::kb::lifecycle::{Command, Content, Entry, Refusal, Source};
use crate::kb::search::{SearchError, SearchQuery};
use crate::server::Shared;
use crate::store::kb::KbWritten;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The knowledge-base routes.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/kb", post(create).get(list))
        .route("/api/v1/kb/search", get(search))
        .route("/api/v1/kb/hot", get(hot))
        .route("/api/v1/kb/{id}", get(one).put(edit))
        .route("/api/v1/kb/{id}/versions", get(versions))
        .route("/api/v1/kb/{id}/{action}", post(action))
}

fn kb_error(e: KbError) -> ApiError {
    match e {
        KbError::NotFound(id) => ApiError::status(
            StatusCode::NOT_FOUND,
            format!("no knowledge-base entry {id}"),
        ),
        KbError::Refused(Refusal::Forbidden(m)) => ApiError::status(StatusCode::FORBIDDEN, m),
        KbError::Refused(Refusal::Conflict(m)) => ApiError::status(StatusCode::CONFLICT, m),
        KbError::Refused(Refusal::Invalid { field, message }) => ApiError::field(field, message),
        KbError::Unavailable(e) => ApiError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the knowledge base is unavailable, nothing was changed; retry later ({e})"),
        ),
        KbError::Search(e @ SearchError::NotReady) => {
            ApiError::status(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        KbError::Search(e) => ApiError::status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// An entry's fields as posted; `unit` defaults to a unit handler's own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryBody {
    title: String,
    question: String,
    answer: String,
    source: Source,
    #[serde(default)]
    unit: Option<String>,
    category: String,
    division: String,
    /// The version an edit starts from (or `If-Match`).
    #[serde(default)]
    version: Option<u32>,
}

impl EntryBody {
    fn content(self, who: &Principal) -> Result<(Content, Option<u32>), ApiError> {
        let unit = match (self.unit, &who.unit) {
            (Some(unit), _) => unit,
            (None, Some(own)) => own.clone(),
            // Agents have no unit and may not write at all: the desk says
            // so (403) before it asks for one.
            (None, None) if !matches!(who.role, Role::Supervisor | Role::Admin) => String::new(),
            (None, None) => return Err(ApiError::field("unit", "name the owning unit")),
        };
        Ok((
            Content {
                title: self.title,
                question: self.question,
                answer: self.answer,
                source: self.source,
                unit,
                category: self.category,
                division: self.division,
            },
            self.version,
        ))
    }
}

fn written(status: StatusCode, w: &KbWritten, who: &Principal) -> Response {
    (
        status,
        Json(json!({
            "entry": desk::view(&w.entry, who),
            "events": w.events,
        })),
    )
        .into_response()
}

/// `POST /api/v1/kb`: a new draft.
async fn create(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: EntryBody = parse(&body)?;
    if b.version.is_some() {
        return Err(ApiError::field("version", "a new entry has no version yet"));
    }
    let (content, _) = b.content(&who)?;
    let rules = shared.order_rules.load();
    let w = desk::create(&shared.store, &shared.kb, &rules, &who, content, now_ms())
        .await
        .map_err(kb_error)?;
    Ok(written(StatusCode::CREATED, &w, &who))
}

/// `GET /api/v1/kb?limit=`: entries a maintainer looks after (a unit
/// handler's unit's; all for supervisors and admins), newest change first.
async fn list(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let limit = super::parse_limit(query.as_deref())?;
    let unit = match who.role {
        Role::UnitHandler => Some(who.unit.clone().unwrap_or_default()),
        Role::Supervisor | Role::Admin => None,
        role => {
            return Err(ApiError::status(
                StatusCode::FORBIDDEN,
                format!("a {} finds entries by search", role.as_str()),
            ));
        }
    };
    let entries = shared
        .store
        .kb_entries(unit.as_deref(), limit)
        .await
        .map_err(|e| kb_error(KbError::Unavailable(e)))?;
    let views: Vec<Value> = entries.iter().filter_map(|e| desk::view(e, &who)).collect();
    Ok(Json(json!({ "entries": views })).into_response())
}

/// `GET /api/v1/kb/{id}`.
async fn one(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    entry_view(&shared, &who, id, desk::view).await
}

/// `GET /api/v1/kb/{id}/versions`: the history.
async fn versions(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    entry_view(&shared, &who, id, desk::versions_view).await
}

/// Entry `id` shown through `view`; one `who` may not see is not found.
async fn entry_view(
    shared: &Shared,
    who: &Principal,
    id: String,
    view: fn(&Entry, &Principal) -> Option<Value>,
) -> Result<Response, ApiError> {
    let entry = desk::get(&shared.store, who, &id).await.map_err(kb_error)?;
    let view = view(&entry, who).ok_or_else(|| kb_error(KbError::NotFound(id)))?;
    Ok(Json(view).into_response())
}

/// The version an edit starts from: `If-Match` or the body's `version`.
fn base_version(headers: &HeaderMap, body: Option<u32>) -> Result<u32, ApiError> {
    let header =
        match headers.get(header::IF_MATCH) {
            None => None,
            Some(v) => {
                let text = v.to_str().unwrap_or("").trim();
                let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
                Some(text.parse::<u32>().map_err(|_| {
                    ApiError::field("If-Match", "must be the entry's version number")
                })?)
            }
        };
    match (header, body) {
        (Some(h), Some(b)) if h != b => Err(ApiError::field(
            "version",
            format!("the body says version {b} but If-Match says {h}"),
        )),
        (Some(v), _) | (None, Some(v)) => Ok(v),
        (None, None) => Err(ApiError::field(
            "version",
            "say which version the edit starts from (body `version` or If-Match)",
        )),
    }
}

/// `PUT /api/v1/kb/{id}`: an edit, which makes a new draft version.
async fn edit(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: EntryBody = parse(&body)?;
    let (content, version) = b.content(&who)?;
    let base = base_version(&headers, version)?;
    let rules = shared.order_rules.load();
    let w = desk::act(
        &shared.store,
        &shared.kb,
        &rules,
        &who,
        &id,
        Command::Edit {
            base,
            content: Box::new(content),
        },
        now_ms(),
    )
    .await
    .map_err(kb_error)?;
    Ok(written(StatusCode::OK, &w, &who))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionalNote {
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/kb/{id}/{action}`: submit, approve, send_back, publish,
/// expire.
async fn action(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let command = match action.as_str() {
        "submit" | "approve" | "publish" => {
            let _: Empty = parse(&body)?;
            match action.as_str() {
                "submit" => Command::Submit,
                "approve" => Command::Approve,
                _ => Command::Publish,
            }
        }
        "send_back" => {
            let b: NoteBody = parse(&body)?;
            Command::SendBack { note: b.note }
        }
        "expire" => {
            let b: OptionalNote = parse(&body)?;
            Command::Expire { note: b.note }
        }
        _ => {
            return Err(ApiError::status(
                StatusCode::NOT_FOUND,
                format!(
                    "no knowledge-base action {action:?} (submit, approve, send_back, publish, expire)"
                ),
            ));
        }
    };
    let rules = shared.order_rules.load();
    let w = desk::act(
        &shared.store,
        &shared.kb,
        &rules,
        &who,
        &id,
        command,
        now_ms(),
    )
    .await
    .map_err(kb_error)?;
    Ok(written(StatusCode::OK, &w, &who))
}

fn pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::field("query", format!("not a query string: {e}")))
}

const MAX_QUERY_CHARS: usize = 200;
const MAX_RESULTS: usize = 50;

fn parse_search(query: Option<&str>) -> Result<SearchQuery, ApiError> {
    let mut q = SearchQuery {
        limit: 10,
        ..SearchQuery::default()
    };
    let mut text = None;
    for (key, value) in pairs(query)? {
        match key.as_str() {
            "q" => text = Some(value),
            "category" => {
                if !matches!(value.len(), 2 | 4 | 6) || !value.chars().all(|c| c.is_ascii_digit()) {
                    return Err(ApiError::field(
                        "category",
                        "a catalogue code of 2, 4 or 6 digits",
                    ));
                }
                q.category = Some(value);
            }
            "division" => {
                if value.len() != 6 || !value.chars().all(|c| c.is_ascii_digit()) {
                    return Err(ApiError::field("division", "a 6-digit division code"));
                }
                q.division = Some(value);
            }
            "unit" => {
                if value.is_empty() {
                    return Err(ApiError::field("unit", "a unit id"));
                }
                q.unit = Some(value);
            }
            "limit" => {
                q.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_RESULTS).contains(n))
                    .ok_or_else(|| ApiError::field("limit", format!("must be 1-{MAX_RESULTS}")))?;
            }
            _ => {
                return Err(ApiError::field(
                    "query",
                    format!("unknown parameter {key:?}"),
                ));
            }
        }
    }
    let text = text.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ApiError::field("q", "say what to look for"));
    }
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::field(
            "q",
            format!("at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    q.text = text;
    Ok(q)
}

/// `GET /api/v1/kb/search?q=&category=&division=&unit=&limit=`: published
/// entries, best first.
async fn search(
    State(shared): State<Arc<Shared>>,
    Caller(_who): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut q = parse_search(query.as_deref())?;
    q.today = Some(desk::local_day(&shared.order_rules.load(), now_ms()));
    let words = shared.kb.topic_words(&q.text);
    let hits = desk::search(&shared.kb, q).await.map_err(kb_error)?;
    Ok(Json(json!({"results": hits, "words": words})).into_response())
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// `GET /api/v1/kb/hot?from=&to=&limit=`: the most-hit entries with hits
/// in `[from, to)` (Unix ms; default the last 30 days), most hits first.
async fn hot(
    State(shared): State<Arc<Shared>>,
    Caller(_who): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (from, to, limit) = parse_hot(query.as_deref(), now_ms())?;
    let topics = shared
        .store
        .kb_hot_topics(from, to, limit)
        .await
        .map_err(|e| kb_error(KbError::Unavailable(e)))?;
    Ok(Json(json!({"from": from, "to": to, "topics": topics})).into_response())
}

fn parse_hot(query: Option<&str>, now: i64) -> Result<(i64, i64, i64), ApiError> {
    let (mut from, mut to, mut limit) = (None, None, 10);
    let ms = |field: &'static str, v: &str| {
        v.parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::field(field, "must be Unix milliseconds"))
    };
    for (key, value) in pairs(query)? {
        match key.as_str() {
            "from" => from = Some(ms("from", &value)?),
            "to" => to = Some(ms("to", &value)?),
            "limit" => {
                limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| ApiError::field("limit", "must be 1-100"))?
            }
            _ => {
                return Err(ApiError::field(
                    "query",
                    format!("unknown parameter {key:?}"),
                ));
            }
        }
    }
    let to = to.unwrap_or(now + 1);
    let from = from.unwrap_or(to - 30 * DAY_MS);
    if from >= to {
        return Err(ApiError::field("from", "must be before `to`"));
    }
    Ok((from, to, limit))
}

/// The OpenAPI paths of this room, merged into the document.
pub(super) fn openapi_paths() -> Value {
    let bearer = json!([{"bearer": []}]);
    let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
    let errors = json!({
        "400": {"description": "a field is wrong; `field` names it"},
        "401": {"description": "no valid bearer token"},
        "403": {"description": "the role or unit may not"},
        "404": {"description": "no such entry the caller may read"},
        "409": {"description": "the entry's state does not allow it, or the version is not the newest"},
        "503": {"description": "the database is away or the index is being built"}
    });
    let entry_body = json!({"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Content"}}}});
    json!({
        "/api/v1/kb": {
            "post": {"summary": "Write a new draft entry", "security": bearer, "requestBody": entry_body, "responses": {"201": {"description": "the draft"}}},
            "get": {"summary": "Entries a unit handler or supervisor maintains", "security": bearer, "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}], "responses": {"200": {"description": "entries"}}}
        },
        "/api/v1/kb/search": {
            "get": {
                "summary": "Chinese full-text search over published entries (BM25, jieba)",
                "security": bearer,
                "parameters": [
                    {"name": "q", "in": "query", "required": true, "schema": {"type": "string"}},
                    {"name": "category", "in": "query", "schema": {"type": "string"}, "description": "catalogue code prefix"},
                    {"name": "division", "in": "query", "schema": {"type": "string"}},
                    {"name": "unit", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50}}
                ],
                "responses": {"200": {"description": "`results`: entry_id, version, title, snippet, source, category, division, unit, score"}, "400": errors["400"], "503": errors["503"]}
            }
        },
        "/api/v1/kb/hot": {
            "get": {
                "summary": "Most-hit entries (direct answers) in [from, to)",
                "security": bearer,
                "parameters": [
                    {"name": "from", "in": "query", "schema": {"type": "integer"}, "description": "Unix ms, inclusive"},
                    {"name": "to", "in": "query", "schema": {"type": "integer"}, "description": "Unix ms, exclusive"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}}
                ],
                "responses": {"200": {"description": "`topics`: entry_id, title, category, hits"}}
            }
        },
        "/api/v1/kb/{id}": {
            "get": {"summary": "One entry", "security": bearer, "parameters": [id], "responses": {"200": {"description": "the entry"}, "404": errors["404"]}},
            "put": {"summary": "Edit: a new draft version (`version` or If-Match must be the newest)", "security": bearer, "parameters": [id], "requestBody": entry_body, "responses": {"200": {"description": "the entry"}, "409": errors["409"]}}
        },
        "/api/v1/kb/{id}/versions": {
            "get": {"summary": "Every version and the review log", "security": bearer, "parameters": [id], "responses": {"200": {"description": "versions"}}}
        },
        "/api/v1/kb/{id}/{action}": {
            "post": {
                "summary": "submit, approve, send_back (with `note`), publish, expire",
                "security": bearer,
                "parameters": [id, {"name": "action", "in": "path", "required": true, "schema": {"type": "string", "enum": ["submit", "approve", "send_back", "publish", "expire"]}}],
                "responses": {"200": {"description": "the entry"}, "403": errors["403"], "409": errors["409"]}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_query_is_checked() {
        let q = parse_search(Some("q=%E6%88%B7%E5%8F%A3&category=13&limit=5")).unwrap();
        assert_eq!(q.text, "户口");
        assert_eq!(q.category.as_deref(), Some("13"));
        for (bad, field) in [
            ("", "q"),
            ("q=", "q"),
            ("q=a&category=1", "category"),
            ("q=a&division=15", "division"),
            ("q=a&limit=0", "limit"),
            ("q=a&limit=51", "limit"),
            ("q=a&x=1", "query"),
        ] {
            assert_eq!(
                parse_search(Some(bad)).err().unwrap().field,
                Some(field),
                "{bad}"
            );
        }
    }

    #[test]
    fn hot_range_is_checked() {
        assert_eq!(
            parse_hot(Some("from=1&to=5&limit=3"), 0).unwrap(),
            (1, 5, 3)
        );
        for (bad, field) in [
            ("from=x", "from"),
            ("from=5&to=5", "from"),
            ("to=-1", "to"),
            ("limit=101", "limit"),
        ] {
            assert_eq!(
                parse_hot(Some(bad), 10).err().unwrap().field,
                Some(field),
                "{bad}"
            );
        }
    }
}
