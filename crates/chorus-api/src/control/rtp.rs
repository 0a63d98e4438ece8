//! Phone and bot participants over plain RTP: a service creates one in a room and
//! learns the UDP address to send its RTP to (in early media, if its call is not
//! answered yet, until it answers it); deleting it removes it from the room.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chorus_protocol::control::CreateRtpParticipantRequest;

use super::tokens::check_name;
use crate::ApiState;
use crate::error::{ApiError, JsonBody, PathParams};

pub(super) async fn create_rtp_participant(
    State(state): State<ApiState>,
    PathParams(room): PathParams<String>,
    JsonBody(req): JsonBody<CreateRtpParticipantRequest>,
) -> Result<impl IntoResponse, ApiError> {
    check_name("identity", &req.identity)?;
    if let Some(name) = &req.name {
        check_name("name", name)?;
    }
    let info = state.rooms().create_rtp_participant(&room, req).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

pub(super) async fn delete_rtp_participant(
    State(state): State<ApiState>,
    PathParams((room, identity)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .rooms()
        .remove_participant(&room, &identity, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `early_media` → `connected`: the gateway's call was answered.
pub(super) async fn answer_rtp_participant(
    State(state): State<ApiState>,
    PathParams((room, identity)): PathParams<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let info = state
        .rooms()
        .answer_rtp_participant(&room, &identity)
        .await?;
    Ok(Json(info))
}
