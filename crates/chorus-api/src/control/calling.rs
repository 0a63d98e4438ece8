//! Invitations and the lobby: ring an identity in a room, cancel or decline the
//! invitation, admit or reject a participant waiting in the lobby.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chorus_protocol::control::{CreateInvitationRequest, InvitationEnd};

use crate::ApiState;
use crate::error::{ApiError, JsonBody, PathParams};

pub(super) async fn invite(
    State(state): State<ApiState>,
    PathParams(room): PathParams<String>,
    JsonBody(req): JsonBody<CreateInvitationRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let invitation = state.rooms().invite(&room, req).await?;
    Ok((StatusCode::CREATED, Json(invitation)))
}

pub(super) async fn cancel_invitation(
    State(state): State<ApiState>,
    PathParams((room, id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let reason = InvitationEnd::Cancelled;
    state.rooms().end_invitation(&room, &id, reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn decline_invitation(
    State(state): State<ApiState>,
    PathParams((room, id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let reason = InvitationEnd::Declined;
    state.rooms().end_invitation(&room, &id, reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn admit(
    State(state): State<ApiState>,
    PathParams((room, participant)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .rooms()
        .decide_lobby(&room, &participant, true)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn reject(
    State(state): State<ApiState>,
    PathParams((room, participant)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .rooms()
        .decide_lobby(&room, &participant, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
