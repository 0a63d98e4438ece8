//! User access tokens minted for the signaling service (`POST /v1/tokens`), and the
//! checks of what a token may name, shared with the demo's token route.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use chorus_protocol::control::{CreateTokenRequest, TokenResponse};

use super::Caller;
use crate::error::{ApiError, JsonBody};
use crate::token::{DEFAULT_TTL_SECS, MAX_TTL_SECS, MintError, NewToken};
use crate::{ApiState, unix_now};

/// Longest identity accepted in a token request, in characters (as the OpenAPI
/// document's `maxLength` counts them).
pub(crate) const MAX_IDENTITY_CHARS: usize = 256;

pub(super) async fn create_token(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<CreateTokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let grant = new_token(req)?;
    let token = state
        .config()
        .keys
        .mint(&caller.api_key, grant, unix_now())
        .map_err(mint_error)?;
    Ok(Json(TokenResponse {
        token,
        url: state.config().signaling_url(),
    }))
}

/// Checks a token request and fills in its defaults.
pub(super) fn new_token(req: CreateTokenRequest) -> Result<NewToken, ApiError> {
    check_room(&req.room)?;
    check_name("identity", &req.identity)?;
    let ttl_secs = req.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if ttl_secs == 0 || ttl_secs > MAX_TTL_SECS {
        return Err(ApiError::invalid_request(format!(
            "ttl_secs must be between 1 and {MAX_TTL_SECS}"
        )));
    }
    Ok(NewToken {
        room: req.room,
        identity: req.identity,
        name: req.name.unwrap_or_default(),
        grants: req.grants.unwrap_or_default(),
        ttl_secs,
    })
}

/// Rooms follow the registry's naming rule, so a token is never minted for a room no one can join.
pub(crate) fn check_room(value: &str) -> Result<(), ApiError> {
    if !chorus_room_api::valid_room_name(value) {
        return Err(ApiError::invalid_request(format!(
            "room must be 1 to {} bytes of A-Z a-z 0-9 - _ .",
            chorus_room_api::MAX_ROOM_NAME
        )));
    }
    Ok(())
}

pub(crate) fn check_name(what: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty()
        || value.chars().count() > MAX_IDENTITY_CHARS
        || value.chars().any(char::is_control)
    {
        return Err(ApiError::invalid_request(format!(
            "{what} must be 1 to {MAX_IDENTITY_CHARS} characters without control characters"
        )));
    }
    Ok(())
}

pub(crate) fn mint_error(e: MintError) -> ApiError {
    match e {
        MintError::InvalidTtl(_) => ApiError::invalid_request(e.to_string()),
        MintError::UnknownKey(_) | MintError::Encode(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "cannot mint the token",
        ),
    }
}
