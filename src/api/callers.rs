//! Repeat and abusive callers (art. 26) under `/api/v1/callers`, and an
//! agent's harassment report on a call (`POST /api/v1/calls/{id}/flag`).
//!
//! Flags come from the nuisance sweep or an agent's report and wait for a
//! supervisor's review; only a review (or a supervisor's direct block)
//! blocks a number, for a bounded time. Everything but the report is for
//! supervisors and admins (403 otherwise). Numbers are masked unless
//! `?personal=true`, and such a read is audited. Every change is written to
//! the callers' audit log (`GET /api/v1/callers/audit`).

use super::ApiError;
use super::auth::Caller;
use super::orders::parse;
use crate::auth::mask::mask_phone;
use crate::auth::{Principal, Role};
use crate::call::record::{format_ms, now_ms, parse_ms};
use crate::callers::detect::Found;
use crate::callers::{Pattern, Reason};
use crate::server::Shared;
use crate::store::callers::{Block, CallerAudit, CallersError, Decision, Flag};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

const DAY_MS: i64 = 86_400_000;

/// The callers routes.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/calls/{id}/flag", post(report))
        .route("/api/v1/callers/flags", get(list_flags))
        .route("/api/v1/callers/flags/{id}", get(one_flag))
        .route("/api/v1/callers/flags/{id}/review", post(review))
        .route(
            "/api/v1/callers/blocks",
            get(list_blocks).post(create_block),
        )
        .route("/api/v1/callers/blocks/{id}/lift", post(lift))
        .route("/api/v1/callers/audit", get(audit))
}

fn supervisor_only(who: &Principal, what: &str) -> Result<(), ApiError> {
    if matches!(who.role, Role::Supervisor | Role::Admin) {
        return Ok(());
    }
    Err(ApiError::status(
        StatusCode::FORBIDDEN,
        format!(
            "a {} may not {what}; supervisors and admins may",
            who.role.as_str()
        ),
    ))
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::status(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the database is unavailable, nothing was changed; retry later ({e})"),
    )
}

fn callers_error(e: CallersError) -> ApiError {
    match e {
        CallersError::NotFound(what) => {
            ApiError::status(StatusCode::NOT_FOUND, format!("no {what}"))
        }
        CallersError::Conflict(m) => ApiError::status(StatusCode::CONFLICT, m),
        CallersError::Store(e) => unavailable(e),
    }
}

fn id_of(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::field(
            "id",
            format!("must be a positive whole number, got {text:?}"),
        )
    })
}

/// `state`, `personal`, `number` and `limit`, the list queries' parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    personal: Option<String>,
    number: Option<String>,
    limit: Option<String>,
}

struct List {
    state: Option<String>,
    personal: bool,
    number: Option<String>,
    limit: i64,
}

fn list_query(query: Option<&str>, states: &[&str], default_state: &str) -> Result<List, ApiError> {
    let q: ListQuery = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::field("query", e.to_string()))?;
    let state = q.state.unwrap_or_else(|| default_state.to_owned());
    let state = if state == "all" {
        None
    } else if states.contains(&state.as_str()) {
        Some(state)
    } else {
        return Err(ApiError::field(
            "state",
            format!("must be one of {} or all, got {state:?}", states.join(", ")),
        ));
    };
    let personal = match q.personal.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::field(
                "personal",
                format!("must be true or false, got {other:?}"),
            ));
        }
    };
    let limit = match q.limit {
        None => 100,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::field("limit", format!("must be 1 to 1000, got {l:?}")))?,
    };
    if let Some(n) = &q.number
        && !is_number(n)
    {
        return Err(ApiError::field(
            "number",
            format!("not a phone number: {n:?}"),
        ));
    }
    Ok(List {
        state,
        personal,
        number: q.number,
        limit,
    })
}

/// A listing query for `listed` (flags or blocks), which are listed by
/// state and not by number.
fn state_query(
    query: Option<&str>,
    states: &[&str],
    default_state: &str,
    listed: &str,
) -> Result<List, ApiError> {
    let q = list_query(query, states, default_state)?;
    if q.number.is_some() {
        return Err(ApiError::field(
            "number",
            format!("{listed} are listed by state only"),
        ));
    }
    Ok(q)
}

fn is_number(text: &str) -> bool {
    (3..=20).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit() || b == b'+')
}

fn shown(number: &str, personal: bool) -> String {
    if personal {
        number.to_owned()
    } else {
        mask_phone(number)
    }
}

fn flag_json(f: &Flag, personal: bool) -> Value {
    json!({
        "id": f.id,
        "number": shown(&f.number, personal),
        "pattern": f.pattern,
        "state": f.state,
        "detail": f.detail,
        "call_ids": f.call_ids,
        "suggested_reason": Pattern::parse(&f.pattern).map(|p| p.suggested_reason().as_str()),
        "created_at": format_ms(f.created_at),
        "created_by": f.created_by,
        "reviewed_at": f.reviewed_at.map(format_ms),
        "reviewed_by": f.reviewed_by,
        "review_reason": f.review_reason,
        "review_note": f.review_note,
        "block_id": f.block_id,
    })
}

fn block_json(b: &Block, personal: bool, now: i64) -> Value {
    // A block past its time reads as expired even before the sweep marks it.
    let state = if b.state == "active" && b.until <= now {
        "expired"
    } else {
        b.state.as_str()
    };
    json!({
        "id": b.id,
        "number": shown(&b.number, personal),
        "reason": b.reason,
        "flag_id": b.flag_id,
        "state": state,
        "note": b.note,
        "created_at": format_ms(b.created_at),
        "created_by": b.created_by,
        "until": format_ms(b.until),
        "ended_at": b.ended_at.map(format_ms),
        "ended_by": b.ended_by,
        "end_reason": b.end_reason,
    })
}

fn audit_json(a: &CallerAudit, personal: bool) -> Value {
    json!({
        "id": a.id,
        "at": format_ms(a.at),
        "actor": a.actor,
        "role": a.role,
        "action": a.action,
        "number": shown(&a.number, personal),
        "flag_id": a.flag_id,
        "block_id": a.block_id,
        "detail": a.detail,
    })
}

/// Audits an unmasked read; a read that cannot be audited is refused.
async fn audit_read(
    shared: &Shared,
    who: &Principal,
    what: &str,
    numbers: Vec<String>,
) -> Result<(), ApiError> {
    shared
        .store
        .audit_caller_read(who, what, &numbers, now_ms())
        .await
        .map_err(unavailable)
}

/// A listing's items as JSON. One shown unmasked (`personal`) is audited
/// first, and refused when it cannot be; a masked one reads no personal
/// data and is not audited.
async fn listing<T>(
    shared: &Shared,
    who: &Principal,
    personal: bool,
    what: &str,
    items: &[T],
    number: impl Fn(&T) -> &String,
    to_json: impl Fn(&T) -> Value,
) -> Result<Vec<Value>, ApiError> {
    if personal {
        let numbers = items.iter().map(|i| number(i).clone()).collect();
        audit_read(shared, who, what, numbers).await?;
    }
    Ok(items.iter().map(to_json).collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    reason: String,
}

/// `POST /api/v1/calls/{id}/flag`: an agent reports harassment on a call.
/// 201 with the new flag; 200 with the existing one when the call was
/// reported before.
async fn report(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !matches!(who.role, Role::Agent | Role::Supervisor | Role::Admin) {
        return Err(ApiError::status(
            StatusCode::FORBIDDEN,
            format!("a {} may not report a call; agents may", who.role.as_str()),
        ));
    }
    let body: ReportBody = parse(&body)?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::field(
            "reason",
            "must say what happened, 1 to 500 characters",
        ));
    }
    if id.is_empty() || id.len() > 512 {
        return Err(ApiError::field(
            "id",
            "must be a SIP Call-ID of 1 to 512 characters",
        ));
    }
    let call = match shared.store.call(&id).await {
        Ok(Some(call)) => call,
        Ok(None) => {
            return Err(ApiError::status(
                StatusCode::NOT_FOUND,
                format!(
                    "no call with Call-ID {id:?} on record (a call is reported once it has ended)"
                ),
            ));
        }
        Err(e) => return Err(unavailable(e)),
    };
    if !is_number(&call.caller) {
        return Err(ApiError::status(
            StatusCode::CONFLICT,
            "the caller withheld their number; there is nothing to flag",
        ));
    }
    let found = Found {
        number: call.caller.clone(),
        pattern: Pattern::AgentReport,
        call_ids: vec![id.clone()],
        detail: reason.to_owned(),
    };
    let now = now_ms();
    match shared.store.insert_flag(&found, &who, now).await {
        Ok(Some(flag)) => Ok((
            StatusCode::CREATED,
            Json(json!({"flag": flag_json(&flag, false)})),
        )
            .into_response()),
        Ok(None) => match shared.store.flag_of_call(&id, Pattern::AgentReport).await {
            Ok(Some(flag)) => Ok(Json(json!({"flag": flag_json(&flag, false)})).into_response()),
            Ok(None) => Err(ApiError::status(
                StatusCode::CONFLICT,
                "the call was reported just now",
            )),
            Err(e) => Err(unavailable(e)),
        },
        Err(e) => Err(unavailable(e)),
    }
}

/// `GET /api/v1/callers/flags?state=pending|blocked|dismissed|all`.
async fn list_flags(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    supervisor_only(&who, "list flagged callers")?;
    let q = state_query(
        query.as_deref(),
        &["pending", "blocked", "dismissed"],
        "pending",
        "flags",
    )?;
    let flags = shared
        .store
        .flags(q.state.as_deref(), q.limit)
        .await
        .map_err(unavailable)?;
    let list = listing(
        &shared,
        &who,
        q.personal,
        "flags",
        &flags,
        |f| &f.number,
        |f| flag_json(f, q.personal),
    )
    .await?;
    Ok(Json(json!({ "flags": list })).into_response())
}

/// `GET /api/v1/callers/flags/{id}`.
async fn one_flag(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    supervisor_only(&who, "read flagged callers")?;
    let id = id_of(&id)?;
    let q = list_query(
        query.as_deref(),
        &["pending", "blocked", "dismissed"],
        "all",
    )?;
    let flag = shared
        .store
        .flag(id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::status(StatusCode::NOT_FOUND, format!("no flag {id}")))?;
    if q.personal {
        audit_read(&shared, &who, "flag", vec![flag.number.clone()]).await?;
    }
    Ok(Json(json!({ "flag": flag_json(&flag, q.personal) })).into_response())
}

/// How long a block lasts: `duration_days` or an explicit `until`.
#[derive(Debug, Default)]
struct Span {
    duration_days: Option<u32>,
    /// RFC 3339; for a block ending at a given time (hours, not days).
    until: Option<String>,
}

impl Span {
    /// The end time, checked against `max_days`.
    fn until(&self, now: i64, max_days: u32) -> Result<i64, ApiError> {
        let max = now + i64::from(max_days) * DAY_MS;
        match (self.duration_days, &self.until) {
            (Some(_), Some(_)) => Err(ApiError::field(
                "until",
                "give duration_days or until, not both",
            )),
            (None, None) => Err(ApiError::field(
                "duration_days",
                format!("a block needs a duration: duration_days from 1 to {max_days}, or until"),
            )),
            (Some(days), None) => {
                if !(1..=max_days).contains(&days) {
                    return Err(ApiError::field(
                        "duration_days",
                        format!(
                            "must be from 1 to {max_days} (callers.max_block_days), got {days}"
                        ),
                    ));
                }
                Ok(now + i64::from(days) * DAY_MS)
            }
            (None, Some(text)) => {
                let until = parse_ms(text).ok_or_else(|| {
                    ApiError::field("until", format!("not an RFC 3339 time: {text:?}"))
                })?;
                if until <= now {
                    return Err(ApiError::field("until", "must be in the future"));
                }
                if until > max {
                    return Err(ApiError::field(
                        "until",
                        format!("must be within {max_days} days (callers.max_block_days)"),
                    ));
                }
                Ok(until)
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.duration_days.is_none() && self.until.is_none()
    }
}

fn reason_of(text: Option<&str>) -> Result<Reason, ApiError> {
    let names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    match text {
        None => Err(ApiError::field(
            "reason",
            format!("a block needs a reason: one of {}", names.join(", ")),
        )),
        Some(t) => Reason::parse(t).ok_or_else(|| {
            ApiError::field(
                "reason",
                format!("must be one of {}, got {t:?}", names.join(", ")),
            )
        }),
    }
}

fn note_of(note: Option<String>) -> Result<String, ApiError> {
    let note = note.unwrap_or_default().trim().to_owned();
    if note.chars().count() > 1000 {
        return Err(ApiError::field("note", "at most 1000 characters"));
    }
    Ok(note)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    duration_days: Option<u32>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/callers/flags/{id}/review`: `decision` `block` (with a
/// `reason` category and `duration_days` or `until`) or `dismiss`.
async fn review(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    supervisor_only(&who, "review flagged callers")?;
    let id = id_of(&id)?;
    let body: ReviewBody = parse(&body)?;
    let now = now_ms();
    let max_days = shared.config.load().callers.max_block_days;
    let span = Span {
        duration_days: body.duration_days,
        until: body.until.clone(),
    };
    let decision = match body.decision.as_str() {
        "block" => Decision::Block {
            reason: reason_of(body.reason.as_deref())?,
            until: span.until(now, max_days)?,
        },
        "dismiss" => {
            if !span.is_empty() {
                return Err(ApiError::field(
                    "duration_days",
                    "a dismissal blocks nothing and takes no duration",
                ));
            }
            Decision::Dismiss
        }
        other => {
            return Err(ApiError::field(
                "decision",
                format!("must be block or dismiss, got {other:?}"),
            ));
        }
    };
    let note = note_of(body.note)?;
    let (flag, block) = shared
        .store
        .review_flag(id, &who, &decision, &note, now)
        .await
        .map_err(callers_error)?;
    if block.is_some() {
        shared.blocks.touch();
    }
    Ok(Json(json!({
        "flag": flag_json(&flag, false),
        "block": block.as_ref().map(|b| block_json(b, false, now)),
    }))
    .into_response())
}

/// `GET /api/v1/callers/blocks?state=active|expired|lifted|all`.
async fn list_blocks(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    supervisor_only(&who, "list blocked callers")?;
    let q = state_query(
        query.as_deref(),
        &["active", "expired", "lifted"],
        "active",
        "blocks",
    )?;
    let now = now_ms();
    let mut blocks = shared
        .store
        .blocks(q.state.as_deref(), q.limit)
        .await
        .map_err(unavailable)?;
    if q.state.as_deref() == Some("active") {
        // Time-based: one past its end is not active, marked or not.
        blocks.retain(|b| b.until > now);
    }
    let list = listing(
        &shared,
        &who,
        q.personal,
        "blocks",
        &blocks,
        |b| &b.number,
        |b| block_json(b, q.personal, now),
    )
    .await?;
    Ok(Json(json!({ "blocks": list })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockBody {
    number: String,
    reason: String,
    #[serde(default)]
    duration_days: Option<u32>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/callers/blocks`: a supervisor blocks a number directly.
async fn create_block(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    supervisor_only(&who, "block callers")?;
    let body: BlockBody = parse(&body)?;
    let number = body.number.trim();
    if !is_number(number) {
        return Err(ApiError::field(
            "number",
            format!("not a phone number: {number:?}"),
        ));
    }
    if number.len() <= 5 {
        // 110, 119, 120, 12345 and the like are lines, not citizens.
        return Err(ApiError::field(
            "number",
            "a service number cannot be blocked",
        ));
    }
    let reason = reason_of(Some(&body.reason))?;
    let now = now_ms();
    let span = Span {
        duration_days: body.duration_days,
        until: body.until.clone(),
    };
    let until = span.until(now, shared.config.load().callers.max_block_days)?;
    let note = note_of(body.note)?;
    let block = shared
        .store
        .create_block(number, reason, until, &note, &who, now)
        .await
        .map_err(unavailable)?;
    shared.blocks.touch();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "block": block_json(&block, false, now) })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LiftBody {
    reason: String,
}

/// `POST /api/v1/callers/blocks/{id}/lift`: ends a block early, with why.
async fn lift(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    supervisor_only(&who, "lift blocks")?;
    let id = id_of(&id)?;
    let body: LiftBody = parse(&body)?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(ApiError::field(
            "reason",
            "must say why, 1 to 1000 characters",
        ));
    }
    let now = now_ms();
    let block = shared
        .store
        .lift_block(id, &who, reason, now)
        .await
        .map_err(callers_error)?;
    shared.blocks.touch();
    Ok(Json(json!({ "block": block_json(&block, false, now) })).into_response())
}

/// `GET /api/v1/callers/audit?number=...`: who flagged, reviewed, blocked,
/// lifted or read what, newest first.
async fn audit(
    State(shared): State<Arc<Shared>>,
    Caller(who): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    supervisor_only(&who, "read the callers' audit log")?;
    let q = list_query(query.as_deref(), &[], "all")?;
    let entries = shared
        .store
        .caller_audit(q.number.as_deref(), q.limit)
        .await
        .map_err(unavailable)?;
    let list = listing(
        &shared,
        &who,
        q.personal,
        "audit",
        &entries,
        |e| &e.number,
        |e| audit_json(e, q.personal),
    )
    .await?;
    Ok(Json(json!({ "entries": list })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_queries_name_the_bad_field() {
        let q = list_query(
            Some("state=pending&personal=true&limit=5"),
            &["pending"],
            "all",
        )
        .unwrap();
        assert_eq!(q.state.as_deref(), Some("pending"));
        assert!(q.personal);
        assert_eq!(q.limit, 5);
        assert!(
            list_query(Some("state=all"), &["pending"], "pending")
                .unwrap()
                .state
                .is_none()
        );
        for (bad, field) in [
            ("state=open", "state"),
            ("personal=yes", "personal"),
            ("limit=0", "limit"),
            ("number=abc", "number"),
            ("colour=red", "query"),
        ] {
            let e = list_query(Some(bad), &["pending"], "pending")
                .err()
                .unwrap();
            assert_eq!(e.field, Some(field), "{bad}");
        }
    }

    #[test]
    fn flags_and_blocks_are_listed_by_state_only() {
        let q = state_query(Some("state=active"), &["active"], "active", "blocks").unwrap();
        assert_eq!(q.state.as_deref(), Some("active"));
        let e = state_query(Some("number=13800000000"), &["active"], "active", "blocks")
            .err()
            .unwrap();
        assert_eq!(e.field, Some("number"));
        assert_eq!(e.message, "blocks are listed by state only");
    }

    #[test]
    fn spans_are_bounded() {
        let now = 1_000_000;
        let days = |d| Span {
            duration_days: Some(d),
            until: None,
        };
        assert_eq!(days(2).until(now, 90).unwrap(), now + 2 * DAY_MS);
        assert_eq!(
            days(0).until(now, 90).err().unwrap().field,
            Some("duration_days")
        );
        assert_eq!(
            days(91).until(now, 90).err().unwrap().field,
            Some("duration_days")
        );
        assert_eq!(
            Span::default().until(now, 90).err().unwrap().field,
            Some("duration_days")
        );
        let at = |t: &str| Span {
            duration_days: None,
            until: Some(t.into()),
        };
        assert_eq!(
            at("soon").until(now, 90).err().unwrap().field,
            Some("until")
        );
        assert_eq!(
            at("1970-01-01T00:00:00Z")
                .until(now, 90)
                .err()
                .unwrap()
                .field,
            Some("until")
        );
        assert_eq!(
            at("1970-01-01T00:20:00Z").until(now, 90).unwrap(),
            1_200_000
        );
        let both = Span {
            duration_days: Some(1),
            until: Some("1970-01-01T00:20:00Z".into()),
        };
        assert_eq!(both.until(now, 90).err().unwrap().field, Some("until"));
    }
}
