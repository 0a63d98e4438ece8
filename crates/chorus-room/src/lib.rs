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
#[cfg(feature = "sim")]
pub mod sim;
pub mod skips;
mod timers;
mod tracks;

pub use chorus_room_api::{
    BoxFuture, JoinError, JoinRequest, JoinedSession, RoomError, Rooms, SessionLink,
    valid_room_name,
};

pub use crate::core::{CoreParams, RoomCore};

pub use registry::RoomRegistry;

pub use command::{Session, SessionHandle};

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
