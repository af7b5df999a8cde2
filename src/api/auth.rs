//! Bearer tokens on the order API: the [`Caller`] extractor turns
//! `Authorization: Bearer hl_...` into the user's [`Principal`], or answers
//! 401 (no or unknown token) or 503 (the user table cannot be read).

use super::ApiError;
use crate::auth::Principal;
use crate::auth::token::{TokenError, hash_token, parse_authorization};
use crate::server::Shared;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use std::sync::Arc;

/// The authenticated user of a request.
pub struct Caller(pub Principal);

impl FromRequestParts<Arc<Shared>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let token = parse_authorization(header)
            .map_err(|e| ApiError::unauthorized(e.challenge(), format!("authorization: {e}")))?;
        principal(shared, token).await.map(Caller)
    }
}

/// The user a well-formed token belongs to: 401 for an unknown or disabled
/// one, 503 when the user table cannot be read and the token is not one
/// the database vouched for lately.
pub(super) async fn principal(shared: &Shared, token: &str) -> Result<Principal, ApiError> {
    let hash = hash_token(token);
    // A browser desktop's token: good while its socket is open.
    if let Some(who) = shared
        .webseat
        .as_ref()
        .and_then(|g| g.token_principal(&hash))
    {
        return Ok(who);
    }
    let now = crate::call::record::now_ms();
    match shared.store.user_by_token_hash(&hash).await {
        Ok(Some(principal)) => {
            shared.tokens.remember(&hash, &principal, now);
            Ok(principal)
        }
        Ok(None) => {
            shared.tokens.forget(&hash);
            let e = TokenError::Unknown;
            Err(ApiError::unauthorized(
                e.challenge(),
                format!("authorization: {e}"),
            ))
        }
        // The database is away: a token it vouched for lately still
        // works, so an agent can file the order of the call at hand.
        Err(e) => shared.tokens.recall(&hash, now).ok_or_else(|| {
            ApiError::status(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot check the token, the database is unavailable: {e}"),
            )
        }),
    }
}
