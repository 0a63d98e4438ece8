//! Client signaling: JSON text frames on the WebSocket `/v1/rtc`.
//!
//! Every frame is one object with a `type` field. A participant uses two peer
//! connections: on the **publisher** connection the client offers and the server
//! answers; on the **subscriber** connection the server offers and the client
//! answers. Each connection has exactly one offerer, so offers never collide.

//!
//! [`client`] holds what the client sends, [`server`] what the server sends, and
//! [`roster`] how the roster is paged into the first frames.

mod client;
mod roster;
mod server;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use client::*;
pub use roster::*;
pub use server::*;

/// Which of the participant's two peer connections a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerTarget {
    Publisher,
    Subscriber,
}

/// An ICE candidate as `RTCIceCandidateInit` spells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(rename = "sdpMid", default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(
        rename = "sdpMLineIndex",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_mline_index: Option<u16>,
    #[serde(
        rename = "usernameFragment",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub username_fragment: Option<String>,
}

/// A STUN or TURN server as `RTCIceServer` spells it. Chorus hands out TURN servers with
/// time-limited credentials (coturn's TURN REST API): pass them to `RTCPeerConnection`
/// as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `turn:`, `turns:` or `stun:` URLs of one server.
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The id (and media stream id) of the one audio track every subscriber connection
/// carries: the room's audio, mixed by the server (or relayed in a 1:1 call).
pub const ROOM_AUDIO_TRACK: &str = "mix";
