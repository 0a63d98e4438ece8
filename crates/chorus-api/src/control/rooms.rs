//! Rooms and their participants: create, list, describe, delete; remove a participant,
//! mute one of its tracks, replace its grants. Each handler asks the rooms and returns
//! their answer.

use axum::Json;
use axum::extract::Query;
use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chorus_protocol::control::{
    CreateRoomRequest, HoldRequest, MAX_REMOVAL_MESSAGE, MuteTrackRequest, ParticipantList,
    RemoveParticipantQuery, RoomList, UpdatePermissionsRequest,
};

use crate::ApiState;
use crate::error::{ApiError, JsonBody, PathParams};

pub(super) async fn create_room(
    State(state): State<ApiState>,
    JsonBody(req): JsonBody<CreateRoomRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let info = state.rooms().create_room(req).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

pub(super) async fn list_rooms(State(state): State<ApiState>) -> Json<RoomList> {
    Json(RoomList {
        rooms: state.rooms().list_rooms().await,
    })
}

pub(super) async fn room_info(
    State(state): State<ApiState>,
    PathParams(room): PathParams<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.rooms().room_info(&room).await?))
}

pub(super) async fn delete_room(
    State(state): State<ApiState>,
    PathParams(room): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.rooms().delete_room(&room).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn list_participants(
    State(state): State<ApiState>,
    PathParams(room): PathParams<String>,
) -> Result<Json<ParticipantList>, ApiError> {
    let participants = state.rooms().list_participants(&room).await?;
    Ok(Json(ParticipantList { participants }))
}

pub(super) async fn participant(
    State(state): State<ApiState>,
    PathParams((room, identity)): PathParams<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(state.rooms().participant(&room, &identity).await?))
}

pub(super) async fn remove_participant(
    State(state): State<ApiState>,
    PathParams((room, identity)): PathParams<(String, String)>,
    query: Result<Query<RemoveParticipantQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    if let Some(m) = &query.message
        && m.len() > MAX_REMOVAL_MESSAGE
    {
        return Err(ApiError::invalid_request(format!(
            "message must be at most {MAX_REMOVAL_MESSAGE} bytes"
        )));
    }
    state
        .rooms()
        .remove_participant(&room, &identity, query.message)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn hold_participant(
    State(state): State<ApiState>,
    PathParams((room, identity)): PathParams<(String, String)>,
    JsonBody(req): JsonBody<HoldRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let info = state
        .rooms()
        .hold_participant(&room, &identity, req.held)
        .await?;
    Ok(Json(info))
}

pub(super) async fn mute_track(
    State(state): State<ApiState>,
    PathParams((room, identity, track_id)): PathParams<(String, String, String)>,
    JsonBody(req): JsonBody<MuteTrackRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let track = state
        .rooms()
        .mute_track(&room, &identity, &track_id, req.muted)
        .await?;
    Ok(Json(track))
}

pub(super) async fn update_permissions(
    State(state): State<ApiState>,
    PathParams((room, identity)): PathParams<(String, String)>,
    JsonBody(req): JsonBody<UpdatePermissionsRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let info = state
        .rooms()
        .update_permissions(&room, &identity, req.grants)
        .await?;
    Ok(Json(info))
}
