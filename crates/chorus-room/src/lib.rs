//! Rooms as actors. One tokio task owns each room (participants, tracks, their
//! peer connections); everything else talks to it through bounded channels.
//! The [`RoomRegistry`] routes room names to those tasks.

mod audio;
mod command;
mod peer;
mod registry;
mod room;
mod rooms;

use std::net::SocketAddr;

pub use chorus_room_api::{
    BoxFuture, JoinError, JoinRequest, JoinedSession, RoomError, Rooms, SessionLink,
    valid_room_name,
};

pub use registry::RoomRegistry;

use chorus_protocol::LeaveReason;
use chorus_protocol::signal::{ClientFrame, ServerMessage};
use tokio::sync::mpsc;

use command::{ParticipantKey, RoomCommand};

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
    /// A room nobody is in for this long is closed.
    pub empty_room_timeout: std::time::Duration,
    /// Silence on a media connection before its participant shows as disconnected.
    pub ice_disconnected_timeout: std::time::Duration,
    /// Further silence before the participant is removed (reason `connection_lost`).
    pub ice_failed_timeout: std::time::Duration,
    /// A media connection not up this long after its offer/answer (or ICE restart) is
    /// reported to the client (`media_unreachable`).
    pub ice_connect_timeout: std::time::Duration,
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
            // RFC 3550 lets a client that only receives report as rarely as every 7.5 s.
            ice_disconnected_timeout: std::time::Duration::from_secs(10),
            // 30 s of silence in all: RFC 7675's consent expiry.
            ice_failed_timeout: std::time::Duration::from_secs(20),
            ice_connect_timeout: std::time::Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "media bind address {0} is a wildcard: set the address to announce to clients (media.announce)"
    )]
    NoAnnounceAddress(SocketAddr),
    #[error(transparent)]
    Media(#[from] chorus_transport::MediaPlaneError),
    #[error(transparent)]
    Peer(#[from] chorus_transport::PeerError),
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
pub struct SessionHandle {
    participant: ParticipantKey,
    participant_id: String,
    room: mpsc::Sender<RoomCommand>,
}

impl SessionHandle {
    pub fn participant_id(&self) -> &str {
        &self.participant_id
    }

    /// Errors when the room is gone.
    pub async fn send(&self, frame: ClientFrame) -> Result<(), RoomError> {
        self.room
            .send(RoomCommand::Signal {
                participant: self.participant,
                msg: frame.msg,
            })
            .await
            .map_err(|_| RoomError::RoomClosed)
    }

    /// The signaling connection ended; `reason` is usually `signaling_closed`.
    pub async fn close(&self, reason: LeaveReason) {
        let _ = self
            .room
            .send(RoomCommand::Close {
                participant: self.participant,
                reason,
            })
            .await;
    }
}
