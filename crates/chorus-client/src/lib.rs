//! Rust WebRTC client for Chorus, for integration tests and load tests.
//!
//! A [`Client`] joins a room over the signaling WebSocket (`/v1/rtc`) and speaks real
//! WebRTC (ICE, DTLS-SRTP) on two peer connections driven by the sans-I/O `rtc` core:
//! the **publisher** connection (we offer) carries synthetic Opus and VP8 media, the
//! **subscriber** connection (the server offers) receives the tracks of others, each in
//! a media stream named by the server's track id.
//!
//! One tokio task per client owns both connections, their UDP sockets and the
//! WebSocket. The media half is usable on its own as an [`Engine`], which is how the
//! loopback test connects two clients without a server.

mod client;
mod engine;
mod error;
pub mod media;
mod peer;
mod stats;

pub use chorus_protocol::signal::{ClientMessage, PeerTarget, ServerMessage};
pub use chorus_protocol::{LeaveReason, MediaKind, TrackInfo, TrackSource};
pub use client::{Client, ClientConfig, connect};
pub use engine::{Engine, NegotiationOutcome};
pub use error::ClientError;
pub use media::MediaProfile;
pub use stats::{
    ClientStats, InboundTrackStats, OutboundTrackStats, PeerConnectionState, PeerStats,
};
