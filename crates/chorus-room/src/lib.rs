//! Rooms as actors. One tokio task owns each room (participants, tracks, their
//! peer connections); everything else talks to it through bounded channels.
//! The [`RoomRegistry`] routes room names to those tasks.

mod error;

use std::net::SocketAddr;

pub use error::{JoinError, RoomError};

use chorus_protocol::control::{CreateRoomRequest, RoomInfo};
use chorus_protocol::signal::{ClientMessage, ServerMessage};
use chorus_protocol::{Grants, LeaveReason, ParticipantInfo, TrackInfo};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Settings of the media plane and of rooms.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// UDP address every participant's media uses (one port for all).
    pub media_bind: SocketAddr,
    /// Address announced in ICE candidates (defaults to the bind address).
    pub media_announce: Option<std::net::IpAddr>,
    /// Media I/O worker threads; 0 means one per core.
    pub media_workers: usize,
    /// Create a room when someone joins one that does not exist.
    pub auto_create_rooms: bool,
    /// Default participant limit of a room (at most 350).
    pub default_max_participants: u32,
    /// Most rooms the server holds at once.
    pub max_rooms: usize,
    /// A room nobody is in for this long is closed (auto-created rooms only).
    pub empty_room_timeout: std::time::Duration,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            media_bind: "127.0.0.1:7882".parse().unwrap(),
            media_announce: None,
            media_workers: 0,
            auto_create_rooms: true,
            default_max_participants: chorus_protocol::control::MAX_PARTICIPANTS_CEILING,
            max_rooms: 1000,
            empty_room_timeout: std::time::Duration::from_secs(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind media socket {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Who joins, as the verified token says.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub identity: String,
    pub name: String,
    pub grants: Grants,
}

/// Routes room names to room actors. Cheap to clone.
#[derive(Clone)]
pub struct RoomRegistry {}

impl RoomRegistry {
    /// Binds the media socket, starts the media workers. Rooms stop when `shutdown` fires.
    pub fn start(config: RoomConfig, shutdown: CancellationToken) -> Result<Self, StartError> {
        let _ = (config, shutdown);
        todo!()
    }

    /// The UDP address media flows through.
    pub fn media_addr(&self) -> SocketAddr {
        todo!()
    }

    pub async fn create_room(&self, req: CreateRoomRequest) -> Result<RoomInfo, RoomError> {
        let _ = req;
        todo!()
    }
    pub async fn list_rooms(&self) -> Vec<RoomInfo> {
        todo!()
    }
    pub async fn room_info(&self, room: &str) -> Result<RoomInfo, RoomError> {
        let _ = room;
        todo!()
    }
    /// Removes everyone (reason `room_deleted`) and closes the room.
    pub async fn delete_room(&self, room: &str) -> Result<(), RoomError> {
        let _ = room;
        todo!()
    }
    pub async fn list_participants(&self, room: &str) -> Result<Vec<ParticipantInfo>, RoomError> {
        let _ = room;
        todo!()
    }
    pub async fn participant(&self, room: &str, identity: &str) -> Result<ParticipantInfo, RoomError> {
        let _ = (room, identity);
        todo!()
    }
    /// The participant receives `left` with reason `removed_by_server`.
    pub async fn remove_participant(&self, room: &str, identity: &str) -> Result<(), RoomError> {
        let _ = (room, identity);
        todo!()
    }
    pub async fn mute_track(
        &self,
        room: &str,
        identity: &str,
        track_id: &str,
        muted: bool,
    ) -> Result<TrackInfo, RoomError> {
        let _ = (room, identity, track_id, muted);
        todo!()
    }
    pub async fn update_permissions(
        &self,
        room: &str,
        identity: &str,
        grants: Grants,
    ) -> Result<ParticipantInfo, RoomError> {
        let _ = (room, identity, grants);
        todo!()
    }
    /// Admits a participant. The first event of the session is `joined`.
    pub async fn join(&self, room: &str, who: JoinRequest) -> Result<Session, JoinError> {
        let _ = (room, who);
        todo!()
    }
    /// Tells every participant `left{server_shutdown}` and waits for the rooms to end.
    pub async fn shutdown(&self) {
        todo!()
    }
}

/// One participant's link to its room actor.
pub struct Session {
    /// Frames for the client. `None` means the room is gone: if no `left` frame
    /// came before, the room failed and the client should get a `room_closed` error.
    pub events: mpsc::Receiver<ServerMessage>,
    pub handle: SessionHandle,
}

/// Sends the client's messages to the room. Cheap to clone.
#[derive(Clone)]
pub struct SessionHandle {}

impl SessionHandle {
    pub fn participant_id(&self) -> &str {
        todo!()
    }
    /// Errors when the room is gone.
    pub async fn send(&self, msg: ClientMessage) -> Result<(), RoomError> {
        let _ = msg;
        todo!()
    }
    /// The signaling connection ended; `reason` is usually `signaling_closed`.
    pub async fn close(&self, reason: LeaveReason) {
        let _ = reason;
        todo!()
    }
}
