//! Rooms. Each room is a sans-I/O [`RoomCore`] (participants, tracks, connections,
//! audio; time passed in, decisions out) run by a thin tokio task, its driver, that
//! everything else talks to through bounded channels. The [`RoomRegistry`] routes room
//! names to those tasks.

mod audio;
mod command;
mod connections;
mod core;
mod driver;
pub mod forward;
pub mod io;
mod mixing;
mod negotiation;
mod participants;
mod peer;
mod registry;
mod rooms;
pub mod signal_error;
pub mod skips;
mod timers;
mod tracks;

pub use chorus_room_api::{
    BoxFuture, JoinError, JoinRequest, JoinedSession, RoomError, Rooms, SessionLink,
    valid_room_name,
};

pub use crate::core::{CoreParams, RoomCore};

pub use registry::RoomRegistry;

use chorus_protocol::LeaveReason;
use chorus_protocol::signal::{ClientFrame, ServerMessage};
use tokio::sync::mpsc;

use command::RoomCommand;
use io::ParticipantKey;

/// Settings of rooms.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// Create a room when someone joins one that does not exist.
    pub auto_create_rooms: bool,
    /// Default participant limit of a room (at most 350).
    pub default_max_participants: u32,
    /// Most rooms the server holds at once.
    pub max_rooms: usize,
    /// A room nobody is in for this long is closed.
    pub empty_room_timeout: std::time::Duration,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            auto_create_rooms: true,
            default_max_participants: chorus_protocol::control::MAX_PARTICIPANTS_CEILING,
            max_rooms: 1000,
            empty_room_timeout: std::time::Duration::from_secs(300),
        }
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
    pub async fn send(&self, frame: impl Into<ClientFrame>) -> Result<(), RoomError> {
        self.room
            .send(RoomCommand::Signal {
                participant: self.participant,
                frame: frame.into(),
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
