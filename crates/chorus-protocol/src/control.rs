//! Bodies of the control API (`/v1/...`, HTTP/JSON).

use serde::{Deserialize, Serialize};

use crate::{Grants, ParticipantInfo};

/// Hard ceiling on participants in one room.
pub const MAX_PARTICIPANTS_CEILING: u32 = 350;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateRoomRequest {
    pub name: String,
    /// At most [`MAX_PARTICIPANTS_CEILING`]; defaults to it.
    #[serde(default)]
    pub max_participants: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub name: String,
    pub max_participants: u32,
    pub num_participants: u32,
    pub num_tracks: u32,
    /// Unix time of creation, in milliseconds.
    pub created_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomList {
    pub rooms: Vec<RoomInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantList {
    pub participants: Vec<ParticipantInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoveParticipantRequest {
    /// Free text shown to the removed client in its `left` frame's log; optional.
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MuteTrackRequest {
    pub muted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdatePermissionsRequest {
    pub grants: Grants,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateTokenRequest {
    pub room: String,
    pub identity: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Lifetime in seconds; default 3600, at most 86400.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    #[serde(default)]
    pub grants: Option<Grants>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token: String,
    /// WebSocket URL to open with the token.
    pub url: String,
}

/// Every error of the control API: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}
