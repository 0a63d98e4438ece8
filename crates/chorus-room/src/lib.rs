//! Rooms. Each room is a sans-I/O [`RoomCore`] (participants, tracks, connections,
//! audio; time passed in, decisions out) run by a thin tokio task, its driver, that
//! everything else talks to through bounded channels. The [`RoomRegistry`] routes room
//! names to those tasks.

pub mod allocation;
mod audio;
mod command;
mod connections;
mod core;
pub mod data;
mod driver;
mod dynacast;
mod echo;
pub mod forward;
mod invitations;
pub mod io;
mod lastn;
mod mixing;
mod negotiation;
mod participants;
mod peer;
mod registry;
pub mod removals;
mod rooms;
mod rtp;
mod selection;
pub mod signal_error;
#[cfg(feature = "sim")]
pub mod sim;
pub mod skips;
mod sticky;
mod timers;
mod totals;
mod tracks;

pub use chorus_room_api::{
    BoxFuture, JoinError, JoinRequest, JoinedSession, RoomError, Rooms, SessionLink,
    valid_room_name,
};

pub use crate::core::{CoreParams, RoomCore};
pub use lastn::DEFAULT_LAST_N;

pub use registry::{DEFAULT_ECHO_ROOM, RoomConfig, RoomRegistry};
pub use rtp::PlainRtpConfig;

pub use command::{Session, SessionHandle};

/// How a publisher's RTP packet is placed on its track and simulcast layer (by SSRC,
/// the MID header extension, the rid extension): public for the fuzz targets
/// (`crates/chorus-fuzz`), which feed it packets from the network as they come.
pub mod rtp_streams {
    pub use crate::peer::link::streams::{UpSection, UpStream, stream_of};
    pub use crate::tracks::LayerIndex;
}
