//! Rust WebRTC client for Chorus, for integration tests and load tests.
//!
//! A [`Client`] joins a room over the signaling WebSocket (`/v1/rtc`) and speaks real
//! WebRTC (ICE, DTLS-SRTP) on two peer connections driven by the sans-I/O `rtc` core:
//! the **publisher** connection (we offer) carries real Opus talk ([`talk`]) and
//! synthetic VP8, H.264 or VP9 video with send-time stamps ([`media`], [`latency`]; a
//! camera in three simulcast layers with [`MediaProfile::simulcast`], or in VP9 spatial
//! and temporal layers in one stream with [`MediaProfile::svc`]), the
//! **subscriber** connection (the server offers) receives the tracks of others, each in
//! a media stream named by the server's track id.
//!
//! One tokio task per client owns both connections, their UDP sockets and the
//! WebSocket. The media half is usable on its own as an [`Engine`], which is how the
//! loopback test connects two clients without a server.

mod client;
mod decode;
mod engine;
mod error;
mod frames;
pub mod h264;
mod keyframe;
pub mod latency;
pub mod media;
mod pauses;
mod peer;
mod profile;
mod raw;
mod seq_set;
mod session;
pub mod shaper;
mod signaling;
mod stats;
pub mod talk;
mod vp8;
mod vp9;

pub use chorus_protocol::data::{
    BinaryDelivery, BinarySend, DataDelivery, DataMode, DataSend, DataSender,
};
pub use chorus_protocol::signal::{ClientMessage, PeerTarget, ServerMessage, VideoQuality};
pub use chorus_protocol::{LeaveReason, MediaKind, TrackInfo, TrackSource};
pub use client::{Client, ClientConfig, connect};
pub use engine::{DataReceived, Engine, NegotiationOutcome};
pub use error::ClientError;
pub use frames::VideoFrames;
pub use keyframe::KeyframeRequestForm;
pub use pauses::ToldPauses;
pub use profile::{Keepalive, MediaProfile, SyntheticData, VideoCodec};
pub use raw::StatsHandle;
pub use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
pub use seq_set::SeqSet;
pub use session::PathChange;
pub use shaper::DownlinkCap;
pub use stats::{
    ClientStats, DecodedAudio, InboundTrackStats, OutboundLayerStats, OutboundTrackStats,
    PeerConnectionState, PeerStats,
};
pub use talk::{AudioContent, TalkPattern, tone_energy};
